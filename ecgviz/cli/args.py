"""Argument types and options the commands share: every bad value is refused as one line, before any work."""

from __future__ import annotations

import argparse
import functools
import math
from pathlib import Path

from ecgviz.detectors.threads import usable_cores as cores  # noqa: F401 (the bounds' "cores here")
from ecgviz.errors import UserError
from ecgviz.signal import DEFAULT_LENGTH


class Parser(argparse.ArgumentParser):
    """Argument errors as one line and exit status 2, like every other user error."""

    def error(self, message: str):
        self.exit(2, f"ecgviz: error: {self.prog.removeprefix('python -m ecgviz ')}: {message}\n")


def number(kind: type, lo: float, hi: float = math.inf, what: str = ""):
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


POSITIVE = number(int, 1)
NON_NEGATIVE = number(int, 0)
FINITE = number(float, -math.inf, math.inf, "a finite number")


@functools.cache
def bounded(kind: type, lo: float, hi: float, why: str = ""):
    """number(kind, lo, hi), whose message gives the bounds and why there is an upper one."""
    def show(x: float) -> str:
        return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"

    return number(kind, lo, hi, f"in [{show(lo)}, {show(hi)}]{f' ({why})' if why else ''}")


PORT = bounded(int, 1, 65535, "a TCP port")


def out_file(path: str) -> str:
    """--out must name a file (checked before any work, so nothing is half-written)."""
    if Path(path).is_dir():
        raise UserError(f"--out {path} is a directory; give a file name")
    return path


def recording_options(p: argparse.ArgumentParser, length: bool) -> None:
    p.add_argument("--lead", metavar="NAME", help="recording lead/channel/column (default: the first ECG-like one)")
    p.add_argument("--fs", type=float, metavar="HZ", help="sampling rate of a CSV/TSV recording")
    if length:
        p.add_argument("--length", type=int, default=DEFAULT_LENGTH, metavar="N",
                       help="samples per beat cut from a recording")


def split_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--split", choices=("seed", "files"), default="seed",
                   help="seed: seeded 85/7.5/7.5 split of the pooled normals; files: keep the files as given")
    p.add_argument("--train-file", metavar="NAME", help="--split files: train on this file's normal beats")
    p.add_argument("--test-file", metavar="NAME", help="--split files: evaluate on every beat of this file")




def train_files(args: argparse.Namespace) -> tuple[str, str] | None:
    """--split files: the (train, test) file names; None for a seeded split."""
    if args.split != "files":
        return None
    if not (args.train_file and args.test_file):
        raise UserError("--split files needs --train-file and --test-file (file names as loaded, e.g. X_TRAIN.arff)")
    return args.train_file, args.test_file
