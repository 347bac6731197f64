"""The data a command works on: beat files, a recording cut into beats, or the bundled ECG5000."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ecgviz.io.data import BeatData, load_ecg5000, load_files
from ecgviz.signal import recording_files


def load_data(paths: Sequence[str] | None, args: argparse.Namespace | None = None,
              length: int | None = None) -> BeatData:
    """The data, with its load warnings on stderr: a file that loads oddly must say so, as in the dashboard."""
    if paths and recording_files.is_recording(paths, getattr(args, "fs", None)):
        data = recording_files.load_recording(paths, lead=args.lead, fs=args.fs, length=length or args.length).data
    else:
        data = load_files(paths) if paths else load_ecg5000()
    for w in data.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return data


