"""``pack`` and ``beats``: beat files into one binary pack, a recording into beats written as ARFF."""

from __future__ import annotations

import argparse
import sys
import time

from ecgviz.cli.loading import load_data
from ecgviz.errors import UserError
from ecgviz.signal import recording_files


def cmd_pack(args: argparse.Namespace) -> int:
    """Write the beats of --data as one .npz pack."""
    from ecgviz.io.pack import SUFFIX, write_pack

    if not str(args.out).lower().endswith(SUFFIX):
        raise UserError(f"--out must name a {SUFFIX} file")
    data = load_data(args.data)
    path = write_pack(args.out, data.X, data.labels)
    print(f"packed {data.n_beats:,} beats of {data.length} samples into {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    return 0


def cmd_beats(args: argparse.Namespace) -> int:
    """Cut --record into beats and write them as ARFF."""
    t0 = time.perf_counter()
    beats = recording_files.load_recording([args.record], lead=args.lead, fs=args.fs, length=args.length)
    recording_files.write_arff(beats, args.out)
    for w in beats.data.warnings:
        print(f"warning: {w}", file=sys.stderr)
    rec = beats.recording
    counts = ", ".join(f"{k} {v}" for k, v in beats.data.label_counts().items()) or "unlabelled"
    print(f"{rec.record} lead {rec.lead} ({rec.fs:g} Hz, {rec.duration_s:.0f} s): {beats.summary()}; "
          f"classes: {counts}; wrote {args.out} in {time.perf_counter() - t0:.2f}s")
    return 0


