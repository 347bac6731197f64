"""Command line: ``python -m ecgviz train | baseline | evaluate | score | pack | beats | analyze | serve``; one-line
errors."""

from __future__ import annotations

import argparse
import json
import math
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ecgviz import batch, export, quality, recording_io, tracking
from ecgviz.checkpoint import SHIPPED_CHECKPOINT, CheckpointError, load_checkpoint, save_checkpoint, to_bytes
from ecgviz.checkpoint_files import Reservation, reserve
from ecgviz.data import DataError, load_ecg5000, load_files
from ecgviz.model import ModelConfig
from ecgviz.pipeline import (
    DEFAULT_PERCENTILE,
    TrainingCancelled,
    errors_for,
    evaluate,
    fit,
    fit_detector,
    protocol_split,
    resume_fit,
    scores_for,
)
from ecgviz.score import ERRORS
from ecgviz.split import SplitError
from ecgviz.train import BY_CAP, EpochInfo, TrainConfig

# Every error a user can cause (the CLI and the dashboard share it); anything else is a bug.
USER_ERRORS = (DataError, CheckpointError, SplitError, ValueError, OSError)


class _Parser(argparse.ArgumentParser):
    """Argument errors as one line and exit status 2, like every other user error."""

    def error(self, message: str):
        self.exit(2, f"ecgviz: error: {self.prog.removeprefix('python -m ecgviz ')}: {message}\n")


def _number(kind: type, lo: float, hi: float = math.inf, what: str = ""):
    """An argparse type: a finite `kind` in [lo, hi]."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'a whole number' if kind is int else 'a number'}") \
                from None
        if not (math.isfinite(value) and lo <= value <= hi):
            bound = what or (f"at least {lo:g}" if hi == math.inf else f"in [{lo:g}, {hi:g}]")
            raise argparse.ArgumentTypeError(f"{text} must be {bound}")
        return value
    return parse


POSITIVE = _number(int, 1)
NON_NEGATIVE = _number(int, 0)
FINITE = _number(float, -math.inf, math.inf, "a finite number")


def _out_file(path: str) -> str:
    """--out must name a file (checked before any work, so nothing is half-written)."""
    if Path(path).is_dir():
        raise ValueError(f"--out {path} is a directory; give a file name")
    return path


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
    out = Path(_out_file(args.out))
    if out.exists() and not args.force:
        raise ValueError(f"{out} already exists; choose another --out or add --force to overwrite it")
    if args.force:
        return _train(args, out, None)
    # held while training, so a dashboard training or another run saving to the same name is refused at once
    with reserve(out) as held:
        return _train(args, out, held)


def _train(args: argparse.Namespace, out: Path, held: Reservation | None) -> int:
    data = _load(args.data, args)
    max_seconds = None if args.max_minutes is None else args.max_minutes * 60
    bar = ProgressBar()
    on_epoch = None if args.quiet else bar
    if args.resume:
        resumed = load_checkpoint(args.resume)

        def run(stop):
            return resume_fit(resumed, data, args.epochs, max_seconds=max_seconds, device=args.device,
                              name=args.name, on_epoch=on_epoch, stop=stop)
    else:
        tc = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, patience=args.patience,
                         loss=args.loss, seed=args.seed, device=args.device, precision=args.precision,
                         max_seconds=max_seconds)
        model_config = ModelConfig(embedding_dim=args.embedding_dim, chunk=args.chunk)
        files = _files(args)
        fit_fn = tracking.track_training(fit, args.mlflow, checkpoint_name=Path(args.out).name,
                                         on_run=lambda run_id: print(f"MLflow run {run_id}", file=sys.stderr))

        def run(stop):
            return fit_fn(data, args.normal_label or ["1"], model_config, tc, percentile=args.percentile,
                          name=args.name or "", on_epoch=on_epoch, stop=stop, split_mode=args.split,
                          files=files, error=args.error)
    try:  # the bar's line ends even when training fails
        ckpt = run_interruptible(run)
    finally:
        if not args.quiet:
            bar.close()
    path = save_checkpoint(ckpt, out) if held is None else held.save(lambda _stem: to_bytes(ckpt))[0]
    if path != out:
        print(f"{out} was written by something else while this trained; saved as {path} instead", file=sys.stderr)
    m = ckpt.metrics
    tc = ckpt.train_config
    print(f"saved {path}  (best epoch {tc['best_epoch']} of {len(ckpt.history)}, ended by {tc['ended_by']}, "
          f"{tc['elapsed_s']:.1f}s on {tc['device_used']}, {tc['torch_threads']} torch thread(s))")
    print(f"threshold {ckpt.threshold:.4f} ({ckpt.threshold_rule})")
    if m.get("auroc") is not None:
        print(f"held-out: AUROC {m['auroc']:.4f}  balanced accuracy {m['balanced_accuracy']:.4f}  "
              f"normal recall {m['normal_recall']:.4f}  anomaly recall {m['anomaly_recall']:.4f}")
    q = quality.from_metrics(m)
    if q is not None and q.degenerate:
        print(f"warning: {q.message()}")
    for line in continue_advice(ckpt, str(path), degenerate=q is not None and q.degenerate):
        print(line)
    return 0


class _Stop(threading.Event):
    keep = False  # read by ecgviz.pipeline.fit: finish the best model so far instead of discarding it


def run_interruptible(run):
    """run(stop) in a worker thread. Ctrl-C stops and keeps the best model so far; a second Ctrl-C discards it."""
    stop, box, done = _Stop(), {}, threading.Event()

    def work():
        try:
            box["result"] = run(stop)
        except BaseException as exc:  # handed to the main thread, which raises it
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=work, name="ecgviz-train", daemon=True).start()
    # an Event, not Thread.join: a join interrupted by Ctrl-C can leave the thread looking finished
    while not done.is_set():
        try:
            done.wait(0.2)
        except KeyboardInterrupt:
            if stop.is_set():
                stop.keep = False
                print("\nstopping; nothing will be saved", file=sys.stderr)
            else:
                stop.keep = True
                stop.set()
                print("\nstopping; the best model so far will be saved (Ctrl-C again to discard it)",
                      file=sys.stderr)
    if "error" in box:
        if isinstance(box["error"], TrainingCancelled):
            raise KeyboardInterrupt
        raise box["error"]
    return box["result"]


def continue_advice(ckpt, path: str, degenerate: bool = False) -> list[str]:
    """What to say about how a run ended, with the command that continues it when more training may help."""
    tc = ckpt.train_config
    lines = []
    if tc.get("ended_by") == "user":
        lines.append(f"stopped early by the user: saved the best model up to epoch {len(ckpt.history)} "
                     f"(best epoch {tc.get('best_epoch')})")
    if tc.get("still_improving"):
        why = "its epoch cap" if tc.get("ended_by") == BY_CAP else "its time budget"
        lines.append(f"validation loss was still falling when the run reached {why} ({len(ckpt.history)} epochs)")
    if tc.get("still_improving") or degenerate or tc.get("ended_by") == "user":
        lines += ["to continue from where it stopped:",
                  f"  python -m ecgviz train --resume {path} --out {path} --force [--epochs N]"]
    return lines


def _files(args: argparse.Namespace) -> tuple[str, str] | None:
    if args.split != "files":
        return None
    if not (args.train_file and args.test_file):
        raise ValueError("--split files needs --train-file and --test-file (file names as loaded, e.g. X_TRAIN.arff)")
    return args.train_file, args.test_file


def cmd_baseline(args: argparse.Namespace) -> int:
    out = Path(_out_file(args.out))
    if out.exists() and not args.force:
        raise ValueError(f"{out} already exists; choose another --out or add --force to overwrite it")
    if args.force:
        return _baseline(args, out, None)
    with reserve(out) as held:  # as for train: another run or a dashboard save of this name is refused meanwhile
        return _baseline(args, out, held)


def _baseline(args: argparse.Namespace, out: Path, held: Reservation | None) -> int:
    from ecgviz import detectors

    data = _load(args.data, args)
    params = {"k": args.k, "metric": args.metric} if args.kind == "knn" else {"n_components": args.components}
    detector = detectors.make(args.kind, **params)
    normal = args.normal_label or ["1"]
    split = protocol_split(data, normal, mode=args.split, seed=args.seed, files=_files(args))
    ckpt = fit_detector(data, detector, normal, split=split, percentile=args.percentile, name=args.name or "")
    path = save_checkpoint(ckpt, out) if held is None else held.save(lambda _stem: to_bytes(ckpt))[0]
    if path != out:
        print(f"{out} was written by something else while this fitted; saved as {path} instead", file=sys.stderr)
    print(f"saved {path}  ({ckpt.description}, fitted in {ckpt.train_config['elapsed_s']:.2f}s; {split.describe()})")
    print(f"threshold {ckpt.threshold:.4f} ({ckpt.threshold_rule})")
    m = ckpt.metrics
    if m:
        print(f"held-out: AUROC {m['auroc']:.4f}  balanced accuracy {m['balanced_accuracy']:.4f}  "
              f"normal recall {m['normal_recall']:.4f}  anomaly recall {m['anomaly_recall']:.4f}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    ckpt = load_checkpoint(args.checkpoint)
    data = _load(args.data, args, ckpt.seq_len)
    missing = [x for x in args.normal_label or () if x not in data.label_counts()]
    if missing:
        present = ", ".join(list(data.label_counts())[:20])
        raise ValueError(f"--normal-label {missing[0]} is not a label of the data (labels: {present or 'none'})")
    ev = evaluate(ckpt, data, threshold=args.threshold, normal_labels=args.normal_label or None)
    summary = {"detector": ckpt.description, "split_mode": ckpt.split.mode, "split": ckpt.split.describe(),
               **ev.summary()}
    if (uri := tracking.tracking_uri(args.mlflow)) is not None:
        run_id = tracking.log_evaluation(uri, summary, checkpoint=str(args.checkpoint), data=data,
                                         normal_labels=args.normal_label or ckpt.split.normal_labels,
                                         threshold_given=args.threshold is not None)
        print(f"MLflow run {run_id}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary))
        return 0
    m = ev.metrics
    ci = summary["intervals_95"]
    where = "held-out split" if ev.held_out else "all labelled beats (not the checkpoint's training data)"
    print(f"{summary['detector']}; {summary['split']}")
    print(f"evaluated on {where}: {m.n_normal} normal, {m.n_anomaly} anomalous beats")
    if not ev.held_out:
        files = ", ".join(ckpt.data_sources) or "file names not recorded"
        print(f"note: the model was trained on other data: {files}; beats of {ckpt.seq_len} samples, "
              f"fingerprint {ckpt.data_fingerprint[:12]}")
    print(f"threshold          {m.threshold:.4f}")
    for key in ("auroc", "average_precision", "balanced_accuracy", "normal_recall", "anomaly_recall",
                "precision", "f1", "accuracy"):
        value = summary[key]
        band = ci.get(key)
        text = "undefined" if value is None else f"{value:.4f}"
        print(f"{key:<18} {text}" + (f"  95% CI [{band[0]:.4f}, {band[1]:.4f}]" if band else ""))
    for label, (flagged, total) in m.class_counts.items():
        band = ci["class_recall"].get(label)
        print(f"class {label:<12} flagged {flagged}/{total}"
              + (f"  recall 95% CI [{band[0]:.3f}, {band[1]:.3f}]" if band else ""))
    for note in summary["caveats"]:
        print(f"note: {note}")
    normals = ev.indices[~ev.is_anomaly]
    if len(normals):
        recon = scores_for(ckpt, data.X[normals])[1] if ckpt.kind == "lstm_ae" else None
        q = quality.assess(data.X[normals], recon, ev.auroc)
        if q.degenerate:
            print(f"warning: {q.message()}")
    return 0


def _file_warnings(result: batch.FileResult) -> None:
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)


def _score_recording(args: argparse.Namespace) -> int:
    """One recording cut into beats of the checkpoint's length, scored in this process."""
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


def cmd_score(args: argparse.Namespace) -> int:
    _out_file(args.out)
    if args.data and recording_io.is_recording(args.data, args.fs):
        return _score_recording(args)
    files, problems = batch.expand(args.data)
    ckpt = load_checkpoint(args.checkpoint)  # a bad checkpoint is one error, not one per file
    options = batch.ScoreOptions(str(args.checkpoint), args.threshold, args.flagged_only, args.include_samples)
    if args.scheduler or args.workers:
        with batch.cluster_client(args.scheduler, args.workers or 1) as client:
            summary = batch.write_results(batch.score_on_cluster(client, files, options), args.out,
                                          on_file=_file_warnings)
    else:
        # files that load as one data set are scored as one (split roles span them); otherwise file by file
        results = (batch.score_together(files, options) if files and not problems else None) or \
            batch.score_serial(files, options)
        summary = batch.write_results(results, args.out, on_file=_file_warnings)
    for message in (*problems, *summary.errors):
        print(f"ecgviz: error: {message}", file=sys.stderr)
    threshold = ckpt.threshold if args.threshold is None else args.threshold
    failed = len(problems) + summary.n_failed
    print(f"scored {summary.n_beats} beats in {summary.seconds:.2f}s; {summary.n_flagged} flagged at threshold "
          f"{threshold:.4f}; wrote {summary.n_rows} rows to {args.out}"
          + (f"; {failed} of {len(files) + len(problems)} inputs failed" if failed else ""))
    return 2 if failed else 0


def cmd_pack(args: argparse.Namespace) -> int:
    from ecgviz.pack import SUFFIX, write_pack

    if not str(args.out).lower().endswith(SUFFIX):
        raise ValueError(f"--out must name a {SUFFIX} file")
    data = _load(args.data)
    path = write_pack(args.out, data.X, data.labels)
    print(f"packed {data.n_beats:,} beats of {data.length} samples into {path} ({path.stat().st_size / 2**20:.1f} MiB)")
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


def cmd_analyze(args: argparse.Namespace) -> int:
    from ecgviz.analysis.analyze import analyze  # the analysis stack loads only for this command
    from ecgviz.analysis.report import check_out_dir, write_report

    check_out_dir(args.out_dir, args.force)  # refused before any work, so nothing is half-written
    result = analyze(args.record, lead=args.lead, fs=args.fs)
    out = write_report(result, args.out_dir, force=args.force)
    s = result.summary
    reasons = ", ".join(f"{n} {r}" for r, n in s["flagged_by_reason"].items() if n) or "none"
    print(f"{s['record']} lead {s['lead']} ({s['fs']:g} Hz, {s['duration_s']:.0f} s): {s['beats']:,} beats, "
          f"{s['flagged']:,} flagged ({reasons}); {s['detection']['possible_missed_beats']} possible missed beat(s), "
          f"{len(s['irregular_stretches'])} irregular stretch(es); wrote {out}/ in {s['seconds']:.2f}s")
    ev = s["evaluation"]
    if ev and ev.get("balanced_accuracy") is not None:
        print(f"against the reference annotations: R-peak sensitivity {ev['r_peak_sensitivity']:.4f}, "
              f"balanced accuracy {ev['balanced_accuracy']:.4f}, AUROC {ev['auroc']}")
    return 0


def _recording_options(p: argparse.ArgumentParser, length: bool) -> None:
    p.add_argument("--lead", metavar="NAME", help="recording lead/channel/column (default: the first ECG-like one)")
    p.add_argument("--fs", type=float, metavar="HZ", help="sampling rate of a CSV/TSV recording")
    if length:
        p.add_argument("--length", type=int, default=recording_io.DEFAULT_LENGTH, metavar="N",
                       help="samples per beat cut from a recording")


def cmd_serve(args: argparse.Namespace) -> int:
    import torch

    from ecgviz import service  # FastAPI is imported only by the command that needs it

    ckpt = load_checkpoint(args.checkpoint)
    limits = service.Limits()
    if args.max_beats is not None:
        limits = replace(limits, max_beats=args.max_beats)
    if args.max_body_mb is not None:
        limits = replace(limits, max_body_bytes=int(args.max_body_mb * 2**20))
    if args.threads < 1 or limits.max_beats < 1 or limits.max_body_bytes < 1:
        raise ValueError("--threads and --max-beats must be at least 1, --max-body-mb above 0")
    torch.set_num_threads(args.threads)
    print(f"serving model '{ckpt.name}' (beats of {ckpt.seq_len} samples) on http://{args.host}:{args.port} "
          f"(docs at /docs)", file=sys.stderr)
    service.serve(ckpt, args.host, args.port, limits)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and --help)."""
    p = _Parser(prog="python -m ecgviz", description=__doc__.split(";")[0])
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train an autoencoder on normal beats and save a checkpoint")
    t.add_argument("--data", nargs="+", metavar="FILE",
                   help="ARFF/TSV/CSV beat files or one recording (default: bundled ECG5000)")
    t.add_argument("--out", required=True, metavar="PATH", help="checkpoint to write (.pt); never overwritten "
                   "unless --force")
    t.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    t.add_argument("--resume", metavar="CKPT", help="continue this checkpoint's training on its own data and "
                   "settings: the rest of a schedule cut short by the time budget or Ctrl-C, else --epochs more "
                   "(default: as many as the last cycle) at half the learning rate")
    t.add_argument("--normal-label", action="append", metavar="L", help="label of normal beats (repeatable; default 1)")
    d = TrainConfig()
    t.add_argument("--epochs", type=POSITIVE, default=d.epochs,
                   help="epoch cap (default: scaled to the data; early stopping usually ends the run first)")
    t.add_argument("--max-minutes", type=_number(float, 1e-3), help="time budget: stop after the epoch that passes it")
    t.add_argument("--embedding-dim", type=POSITIVE, default=ModelConfig().embedding_dim)
    t.add_argument("--chunk", type=POSITIVE, default=ModelConfig().chunk,
                   help="samples per LSTM step (1: classic shape)")
    t.add_argument("--batch-size", type=POSITIVE, default=d.batch_size)
    t.add_argument("--lr", type=_number(float, 1e-12, 10.0), default=d.lr)
    t.add_argument("--patience", type=NON_NEGATIVE, default=d.patience,
                   help="epochs without a better validation loss before stopping (default: cap / 4, at least 10)")
    t.add_argument("--loss", choices=("l1", "mse"), default=d.loss)
    t.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    t.add_argument("--precision", choices=("fp32", "bf16"), default=d.precision,
                   help="bf16: autocast on a CUDA GPU (ignored on other devices)")
    t.add_argument("--seed", type=NON_NEGATIVE, default=d.seed)
    t.add_argument("--percentile", type=_number(float, 0.0, 100.0), default=DEFAULT_PERCENTILE,
                   help="stored threshold: this percentile of the training normals' errors")
    t.add_argument("--error", choices=ERRORS, help="error the threshold is expressed in (default: l1_trim for the "
                   "l1 loss, else the loss)")
    t.add_argument("--name", help="a name stored in the checkpoint")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--mlflow", metavar="URI", help="log the run to this MLflow tracking URI, e.g. sqlite:///mlflow.db "
                                                   "(default: $MLFLOW_TRACKING_URI; neither: no tracking)")
    _split_args(t)
    _recording_options(t, length=True)
    t.set_defaults(func=cmd_train)

    b = sub.add_parser("baseline", help="fit a kNN-distance or PCA detector on normal beats and save a checkpoint")
    b.add_argument("--kind", choices=("knn", "pca"), required=True)
    b.add_argument("--k", type=int, default=5, help="kNN: neighbours averaged")
    b.add_argument("--metric", choices=("l1", "l2"), default="l2", help="kNN: distance")
    b.add_argument("--components", type=int, default=8, help="PCA: principal components kept")
    b.add_argument("--data", nargs="+", metavar="FILE", help="ARFF/TSV/CSV files (default: bundled ECG5000)")
    b.add_argument("--out", required=True, metavar="PATH", help="checkpoint to write (.pt)")
    b.add_argument("--normal-label", action="append", metavar="L", help="label of normal beats (repeatable; default 1)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--percentile", type=float, default=DEFAULT_PERCENTILE)
    b.add_argument("--name", help="a name stored in the checkpoint")
    b.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    _split_args(b)
    _recording_options(b, length=True)
    b.set_defaults(func=cmd_baseline)

    e = sub.add_parser("evaluate", help="metrics on the checkpoint's held-out split")
    e.add_argument("--checkpoint", default=str(SHIPPED_CHECKPOINT), metavar="PATH")
    e.add_argument("--data", nargs="+", metavar="FILE", help="labelled files (default: bundled ECG5000)")
    e.add_argument("--threshold", type=FINITE, help="default: the checkpoint's")
    e.add_argument("--normal-label", action="append", metavar="L", help="default: the checkpoint's")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    _recording_options(e, length=False)
    e.add_argument("--mlflow", metavar="URI", help="log the metrics to this MLflow tracking URI "
                                                   "(default: $MLFLOW_TRACKING_URI)")
    e.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("score", help="score beats and write a CSV of errors and verdicts")
    s.add_argument("--checkpoint", default=str(SHIPPED_CHECKPOINT), metavar="PATH")
    s.add_argument("--data", nargs="+", required=True, metavar="FILE_OR_GLOB",
                   help="files or quoted glob patterns")
    s.add_argument("--threshold", type=FINITE, help="default: the checkpoint's")
    s.add_argument("--flagged-only", action="store_true")
    s.add_argument("--include-samples", action="store_true", help="append the raw samples s1..sT")
    s.add_argument("--out", required=True, metavar="CSV")
    where = s.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, metavar="N",
                       help="score file by file on a local Dask cluster of N processes")
    where.add_argument("--scheduler", metavar="ADDRESS", help="score file by file on the Dask cluster at ADDRESS")
    _recording_options(s, length=False)
    s.set_defaults(func=cmd_score)

    v = sub.add_parser("serve", help="score beats over HTTP (REST API; OpenAPI docs at /docs)")
    v.add_argument("--checkpoint", default=str(SHIPPED_CHECKPOINT), metavar="PATH")
    v.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to listen on every interface")
    v.add_argument("--port", type=int, default=8000)
    v.add_argument("--threads", type=int, default=1, help="torch threads; concurrent requests use the other cores")
    v.add_argument("--max-beats", type=int, help="beats per request (default 10,000)")
    v.add_argument("--max-body-mb", type=float, help="request body limit in MiB (default 32)")
    v.set_defaults(func=cmd_serve)

    k = sub.add_parser("pack", help="write beats as one binary beat pack (.npz) that loads in seconds")
    k.add_argument("--data", nargs="+", required=True, metavar="FILE", help="ARFF/TSV/CSV files or packs")
    k.add_argument("--out", required=True, metavar="NPZ")
    k.set_defaults(func=cmd_pack)

    b = sub.add_parser("beats", help="cut a recording (WFDB, EDF, CSV) into beats and write them as ARFF")
    b.add_argument("--record", required=True, metavar="PATH", help="a .hea/.dat (or record name), .edf or .csv")
    b.add_argument("--out", required=True, metavar="ARFF")
    _recording_options(b, length=True)
    b.set_defaults(func=cmd_beats)

    a = sub.add_parser("analyze", help="find a recording's abnormal beats without labels (shape and timing); write "
                       "beats.csv, flagged.atr and summary.json")
    a.add_argument("--record", required=True, metavar="PATH", help="a WFDB record (.hea or any file its header "
                   "names, e.g. .dat, .mat, .xyz), .edf or .csv")
    a.add_argument("--out-dir", required=True, metavar="DIR", help="folder to write; never replaced unless --force")
    a.add_argument("--force", action="store_true", help="replace --out-dir if it exists")
    _recording_options(a, length=False)
    a.set_defaults(func=cmd_analyze)
    return p


def _split_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--split", choices=("seed", "files"), default="seed",
                   help="seed: seeded 85/7.5/7.5 split of the pooled normals; files: keep the files as given")
    p.add_argument("--train-file", metavar="NAME", help="--split files: train on this file's normal beats")
    p.add_argument("--test-file", metavar="NAME", help="--split files: evaluate on every beat of this file")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; user errors print one line to stderr and return 2."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or an argument error already printed as one line
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return args.func(args)
    except USER_ERRORS as exc:
        print(f"ecgviz: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ecgviz: interrupted", file=sys.stderr)
        return 130
