"""Command line: ``python -m ecgviz train | baseline | evaluate | score | pack | beats | analyze | serve``; one-line
errors."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ecgviz.checkpoint.files import SHIPPED_CHECKPOINT
from ecgviz.cli.args import (
    FINITE,
    NON_NEGATIVE,
    PORT,
    POSITIVE,
    Parser,
    bounded,
    cores,
    number,
    recording_options,
    split_options,
)
from ecgviz.detectors.config import DEFAULT_PERCENTILE, ERRORS, ModelConfig, TrainConfig
from ecgviz.errors import USER_ERRORS

# serve's upper bounds: a request of a million beats of 140 samples is 560 MB as float32, a 1 GiB body ~20x that
MAX_BEATS_ARG, MAX_BODY_MB_ARG = 1_000_000, 1024


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and --help)."""
    p = Parser(prog="python -m ecgviz", description=__doc__.split(";")[0])
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
    t.add_argument("--max-minutes", type=number(float, 1e-3), help="time budget: stop after the epoch that passes it")
    t.add_argument("--embedding-dim", type=POSITIVE, default=ModelConfig().embedding_dim)
    t.add_argument("--chunk", type=POSITIVE, default=ModelConfig().chunk,
                   help="samples per LSTM step (1: classic shape)")
    t.add_argument("--batch-size", type=POSITIVE, default=d.batch_size)
    t.add_argument("--lr", type=number(float, 1e-12, 10.0), default=d.lr)
    t.add_argument("--patience", type=NON_NEGATIVE, default=d.patience,
                   help="epochs without a better validation loss before stopping (default: cap / 10, at least 10)")
    t.add_argument("--loss", choices=("l1", "mse"), default=d.loss)
    t.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    t.add_argument("--precision", choices=("fp32", "bf16"), default=d.precision,
                   help="bf16: autocast on a CUDA GPU (ignored on other devices)")
    t.add_argument("--seed", type=NON_NEGATIVE, default=d.seed)
    t.add_argument("--percentile", type=number(float, 0.0, 100.0), default=DEFAULT_PERCENTILE,
                   help="stored threshold: this percentile of the training normals' errors")
    t.add_argument("--error", choices=ERRORS, help="error the threshold is expressed in (default: l1_trim for the "
                   "l1 loss, else the loss)")
    t.add_argument("--name", help="a name stored in the checkpoint")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--mlflow", metavar="URI", help="log the run to this MLflow tracking URI, e.g. sqlite:///mlflow.db "
                                                   "(default: $MLFLOW_TRACKING_URI; neither: no tracking)")
    split_options(t)
    recording_options(t, length=True)
    t.set_defaults(func="train:cmd_train")

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
    split_options(b)
    recording_options(b, length=True)
    b.set_defaults(func="train:cmd_baseline")

    e = sub.add_parser("evaluate", help="metrics on the checkpoint's held-out split")
    e.add_argument("--checkpoint", default=str(SHIPPED_CHECKPOINT), metavar="PATH")
    e.add_argument("--data", nargs="+", metavar="FILE", help="labelled files (default: bundled ECG5000)")
    e.add_argument("--threshold", type=FINITE, help="default: the checkpoint's")
    e.add_argument("--normal-label", action="append", metavar="L", help="default: the checkpoint's")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    recording_options(e, length=False)
    e.add_argument("--mlflow", metavar="URI", help="log the metrics to this MLflow tracking URI "
                                                   "(default: $MLFLOW_TRACKING_URI)")
    e.set_defaults(func="evaluate:cmd_evaluate")

    s = sub.add_parser("score", help="score beats and write a CSV of errors and verdicts")
    s.add_argument("--checkpoint", default=str(SHIPPED_CHECKPOINT), metavar="PATH")
    s.add_argument("--data", nargs="+", required=True, metavar="FILE_OR_GLOB",
                   help="files or quoted glob patterns")
    s.add_argument("--threshold", type=FINITE, help="default: the checkpoint's")
    s.add_argument("--flagged-only", action="store_true")
    s.add_argument("--include-samples", action="store_true", help="append the raw samples s1..sT")
    s.add_argument("--out", required=True, metavar="CSV")
    where = s.add_mutually_exclusive_group()
    where.add_argument("--workers", type=bounded(int, 1, 2 * cores(), f"twice the {cores()} cores here"), metavar="N",
                       help="score file by file on a local Dask cluster of N processes (at most twice the cores)")
    where.add_argument("--scheduler", metavar="ADDRESS", help="score file by file on the Dask cluster at ADDRESS")
    recording_options(s, length=False)
    s.set_defaults(func="score:cmd_score")

    v = sub.add_parser("serve", help="score beats over HTTP (REST API; OpenAPI docs at /docs)")
    v.add_argument("--checkpoint", default=str(SHIPPED_CHECKPOINT), metavar="PATH")
    v.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to listen on every interface")
    v.add_argument("--port", type=PORT, default=8000)
    v.add_argument("--threads", type=bounded(int, 1, cores(), "the cores here"),
                   help="torch threads per request (default: chosen per request from the model's size, the free "
                   "cores and the requests running; see docs/benchmarks.md)")
    v.add_argument("--max-beats", type=bounded(int, 1, MAX_BEATS_ARG), help="beats per request (default 10,000)")
    v.add_argument("--max-body-mb", type=bounded(float, 0.001, MAX_BODY_MB_ARG),
                   help="request body limit in MiB (default 32)")
    v.set_defaults(func="score:cmd_serve")

    k = sub.add_parser("pack", help="write beats as one binary beat pack (.npz) that loads in seconds")
    k.add_argument("--data", nargs="+", required=True, metavar="FILE", help="ARFF/TSV/CSV files or packs")
    k.add_argument("--out", required=True, metavar="NPZ")
    k.set_defaults(func="convert:cmd_pack")

    b = sub.add_parser("beats", help="cut a recording (WFDB, EDF, CSV) into beats and write them as ARFF")
    b.add_argument("--record", required=True, metavar="PATH", help="a .hea/.dat (or record name), .edf or .csv")
    b.add_argument("--out", required=True, metavar="ARFF")
    recording_options(b, length=True)
    b.set_defaults(func="convert:cmd_beats")

    a = sub.add_parser("analyze", help="find a recording's abnormal beats without labels (shape and timing); write "
                       "beats.csv, flagged.atr and summary.json")
    a.add_argument("--record", required=True, metavar="PATH", help="a WFDB record (.hea or any file its header "
                   "names, e.g. .dat, .mat, .xyz), .edf or .csv")
    a.add_argument("--out-dir", required=True, metavar="DIR", help="folder to write; never replaced unless --force")
    a.add_argument("--force", action="store_true", help="replace --out-dir if it exists")
    recording_options(a, length=False)
    a.set_defaults(func="analyze:cmd_analyze")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; user errors print one line to stderr and return 2."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or an argument error already printed as one line
        return exc.code if isinstance(exc.code, int) else 2
    try:
        module, _, name = args.func.partition(":")
        # each command imports what it uses: --help and argument errors never pay for torch
        return getattr(importlib.import_module(f"ecgviz.cli.{module}"), name)(args)
    except USER_ERRORS as exc:
        print(f"ecgviz: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ecgviz: interrupted", file=sys.stderr)
        return 130
