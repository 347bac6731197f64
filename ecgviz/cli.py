"""Command line: ``python -m ecgviz train | evaluate | score | beats``; errors are one line and a non-zero exit."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

from ecgviz import export, recording_io
from ecgviz.checkpoint import SHIPPED_CHECKPOINT, CheckpointError, load_checkpoint, save_checkpoint
from ecgviz.data import DataError, load_ecg5000, load_files
from ecgviz.model import ModelConfig
from ecgviz.pipeline import DEFAULT_PERCENTILE, errors_for, evaluate, fit
from ecgviz.split import SplitError
from ecgviz.train import EpochInfo, TrainConfig

# Every error a user can cause (the CLI and the dashboard share it); anything else is a bug.
USER_ERRORS = (DataError, CheckpointError, SplitError, ValueError, OSError)


def _load(paths: Sequence[str] | None, args: argparse.Namespace | None = None, length: int | None = None):
    """The data, with its load warnings on stderr: a file that loads oddly must say so, as in the dashboard."""
    if paths and recording_io.is_recording(paths, getattr(args, "fs", None)):
        data = recording_io.load_recording(paths, lead=args.lead, fs=args.fs, length=length or args.length).data
    else:
        data = load_files(paths) if paths else load_ecg5000()
    for w in data.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return data


class ProgressBar:
    """Epoch progress on stderr: a bar, both losses, elapsed time and an estimate of what is left."""

    def __init__(self, stream=None, width: int = 24):
        self.stream, self.width = stream or sys.stderr, width

    def __call__(self, info: EpochInfo) -> None:
        done = info.epoch / info.epochs
        bar = "#" * round(done * self.width) + "." * (self.width - round(done * self.width))
        left = info.elapsed_s / info.epoch * (info.epochs - info.epoch)
        line = (f"\r[{bar}] epoch {info.epoch}/{info.epochs}  train {info.train_loss:.3f}  "
                f"val {info.val_loss:.3f}  best@{info.best_epoch}  {info.elapsed_s:.0f}s  <= {left:.0f}s left")
        self.stream.write(line)
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def cmd_train(args: argparse.Namespace) -> int:
    data = _load(args.data, args)
    tc = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, patience=args.patience,
                     loss=args.loss, seed=args.seed, device=args.device, precision=args.precision)
    bar = ProgressBar()
    try:  # the bar's line ends even when training fails
        model_config = ModelConfig(embedding_dim=args.embedding_dim, chunk=args.chunk)
        ckpt = fit(data, args.normal_label or ["1"], model_config, tc, percentile=args.percentile,
                   name=args.name or "", on_epoch=None if args.quiet else bar)
    finally:
        if not args.quiet:
            bar.close()
    path = save_checkpoint(ckpt, args.out)
    m = ckpt.metrics
    tc = ckpt.train_config
    print(f"saved {path}  (best epoch {tc['best_epoch']}, {tc['elapsed_s']:.1f}s on {tc['device_used']})")
    print(f"threshold {ckpt.threshold:.4f} ({ckpt.threshold_rule})")
    if m:
        print(f"held-out: AUROC {m['auroc']:.4f}  balanced accuracy {m['balanced_accuracy']:.4f}  "
              f"normal recall {m['normal_recall']:.4f}  anomaly recall {m['anomaly_recall']:.4f}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    ckpt = load_checkpoint(args.checkpoint)
    data = _load(args.data, args, ckpt.seq_len)
    ev = evaluate(ckpt, data, threshold=args.threshold, normal_labels=args.normal_label or None)
    summary = ev.summary()
    if args.json:
        print(json.dumps(summary))
        return 0
    m = ev.metrics
    where = "held-out split" if ev.held_out else "all labelled beats (not the checkpoint's training data)"
    print(f"evaluated on {where}: {m.n_normal} normal, {m.n_anomaly} anomalous beats")
    print(f"threshold          {m.threshold:.4f}")
    for key in ("auroc", "average_precision", "balanced_accuracy", "normal_recall", "anomaly_recall",
                "precision", "f1", "accuracy"):
        value = summary[key]
        print(f"{key:<18} {'n/a' if value is None else f'{value:.4f}'}")
    for label, (flagged, total) in m.class_counts.items():
        print(f"class {label:<12} flagged {flagged}/{total}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    ckpt = load_checkpoint(args.checkpoint)
    data = _load(args.data, args, ckpt.seq_len)
    t0 = time.perf_counter()
    errors = errors_for(ckpt, data.X)
    threshold = ckpt.threshold if args.threshold is None else args.threshold
    table = export.beat_table(data, errors, threshold, flagged_only=args.flagged_only,
                              include_samples=args.include_samples)
    export.write_csv(table, args.out)
    flagged = int((errors > threshold).sum())
    print(f"scored {data.n_beats} beats in {time.perf_counter() - t0:.2f}s; {flagged} flagged at threshold "
          f"{threshold:.4f}; wrote {len(table)} rows to {args.out}")
    return 0


def cmd_beats(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    beats = recording_io.load_recording([args.record], lead=args.lead, fs=args.fs, length=args.length)
    recording_io.write_arff(beats, args.out)
    for w in beats.data.warnings:
        print(f"warning: {w}", file=sys.stderr)
    rec = beats.recording
    counts = ", ".join(f"{k} {v}" for k, v in beats.data.label_counts().items()) or "unlabelled"
    print(f"{rec.record} lead {rec.lead} ({rec.fs:g} Hz, {rec.duration_s:.0f} s): {beats.summary()}; "
          f"classes: {counts}; wrote {args.out} in {time.perf_counter() - t0:.2f}s")
    return 0


def _recording_options(p: argparse.ArgumentParser, length: bool) -> None:
    p.add_argument("--lead", metavar="NAME", help="recording lead/channel/column (default: the first ECG-like one)")
    p.add_argument("--fs", type=float, metavar="HZ", help="sampling rate of a CSV/TSV recording")
    if length:
        p.add_argument("--length", type=int, default=recording_io.DEFAULT_LENGTH, metavar="N",
                       help="samples per beat cut from a recording")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and --help)."""
    p = argparse.ArgumentParser(prog="python -m ecgviz", description=__doc__.split(";")[0])
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train an autoencoder on normal beats and save a checkpoint")
    t.add_argument("--data", nargs="+", metavar="FILE",
                   help="ARFF/TSV/CSV beat files or one recording (default: bundled ECG5000)")
    t.add_argument("--out", required=True, metavar="PATH", help="checkpoint to write (.pt)")
    t.add_argument("--normal-label", action="append", metavar="L", help="label of normal beats (repeatable; default 1)")
    d = TrainConfig()
    t.add_argument("--epochs", type=int, default=d.epochs)
    t.add_argument("--embedding-dim", type=int, default=ModelConfig().embedding_dim)
    t.add_argument("--chunk", type=int, default=ModelConfig().chunk, help="samples per LSTM step (1: classic shape)")
    t.add_argument("--batch-size", type=int, default=d.batch_size)
    t.add_argument("--lr", type=float, default=d.lr)
    t.add_argument("--patience", type=int, default=d.patience)
    t.add_argument("--loss", choices=("l1", "mse"), default=d.loss)
    t.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    t.add_argument("--precision", choices=("fp32", "bf16"), default=d.precision,
                   help="bf16: autocast on a CUDA GPU (ignored on other devices)")
    t.add_argument("--seed", type=int, default=d.seed)
    t.add_argument("--percentile", type=float, default=DEFAULT_PERCENTILE,
                   help="stored threshold: this percentile of the training normals' errors")
    t.add_argument("--name", help="a name stored in the checkpoint")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    _recording_options(t, length=True)
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="metrics on the checkpoint's held-out split")
    e.add_argument("--checkpoint", default=str(SHIPPED_CHECKPOINT), metavar="PATH")
    e.add_argument("--data", nargs="+", metavar="FILE", help="labelled files (default: bundled ECG5000)")
    e.add_argument("--threshold", type=float, help="default: the checkpoint's")
    e.add_argument("--normal-label", action="append", metavar="L", help="default: the checkpoint's")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    _recording_options(e, length=False)
    e.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("score", help="score beats and write a CSV of errors and verdicts")
    s.add_argument("--checkpoint", default=str(SHIPPED_CHECKPOINT), metavar="PATH")
    s.add_argument("--data", nargs="+", required=True, metavar="FILE")
    s.add_argument("--threshold", type=float, help="default: the checkpoint's")
    s.add_argument("--flagged-only", action="store_true")
    s.add_argument("--include-samples", action="store_true", help="append the raw samples s1..sT")
    s.add_argument("--out", required=True, metavar="CSV")
    _recording_options(s, length=False)
    s.set_defaults(func=cmd_score)

    b = sub.add_parser("beats", help="cut a recording (WFDB, EDF, CSV) into beats and write them as ARFF")
    b.add_argument("--record", required=True, metavar="PATH", help="a .hea/.dat (or record name), .edf or .csv")
    b.add_argument("--out", required=True, metavar="ARFF")
    _recording_options(b, length=True)
    b.set_defaults(func=cmd_beats)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; user errors print one line to stderr and return 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except USER_ERRORS as exc:
        print(f"ecgviz: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ecgviz: interrupted", file=sys.stderr)
        return 130
