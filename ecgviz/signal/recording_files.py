"""Recordings where beat files are accepted: telling them apart, loading one as beats, writing beats as ARFF."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ecgviz.io.parse import DataError
from ecgviz.io.recording import EDF_SUFFIXES, WFDB_SUFFIXES, read_recording
from ecgviz.signal.beats import DEFAULT_LENGTH, Beats, cut_beats

__all__ = ["DEFAULT_LENGTH", "is_recording", "load_recording", "write_arff"]


def _is_record_path(path: Path) -> bool:
    suffix = path.suffix.lower()
    return suffix in WFDB_SUFFIXES + EDF_SUFFIXES or (suffix == "" and Path(str(path) + ".hea").is_file())


def is_recording(paths: Sequence[str | os.PathLike[str]], fs: float | None = None) -> bool:
    """True when the paths name a recording: WFDB or EDF files, or text files with a sampling rate given."""
    paths = [Path(p) for p in paths]
    return any(_is_record_path(p) for p in paths) or (fs is not None and len(paths) > 0)


def load_recording(paths: Sequence[str | os.PathLike[str]], *, lead: str | None = None, fs: float | None = None,
                   length: int = DEFAULT_LENGTH) -> Beats:
    """Beats of one recording given as its file(s): a WFDB record's .hea/.dat/.atr, an EDF, or a CSV with fs."""
    paths = [Path(p) for p in paths]
    records = {p.with_suffix("") if p.suffix.lower() in WFDB_SUFFIXES else p for p in paths}
    if len(records) != 1:
        names = ", ".join(sorted(p.name for p in paths))
        raise DataError(f"{names}: give one recording at a time (a record's .hea/.dat/.atr count as one)")
    path = paths[0]
    if path.suffix.lower() in WFDB_SUFFIXES:
        path = path.with_suffix(".hea")
    return cut_beats(read_recording(path, lead=lead, fs=fs), length)


def _arff_name(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def write_arff(beats: Beats, path: str | os.PathLike[str]) -> None:
    """Dense ARFF of the beats (att1..attT, then a nominal `target` when labelled) that ecgviz and Weka read back.

    The provenance goes into comments (the R-peak sample of each beat, in order) so other tools see plain beats.
    """
    data, rec = beats.data, beats.recording
    labels = data.labels
    lines = [f"% beats cut by ecgviz from record {rec.record}, lead {rec.lead}, {rec.fs:g} Hz;",
             f"% R-peaks from {beats.peak_source}; {beats.summary()}",
             f"@relation {_arff_name(rec.record + '_beats')}", ""]
    lines += [f"@attribute att{i + 1} numeric" for i in range(data.length)]
    if labels is not None:
        classes = sorted(data.label_names)
        lines.append("@attribute target {" + ",".join(classes) + "}")
    lines += ["", "@data"]
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("\n".join(lines) + "\n")
        step = 4096
        for start in range(0, data.n_beats, step):
            block = data.X[start:start + step]
            # repr-exact float32 text: the values read back bit for bit
            rows = [",".join(np.format_float_positional(v, unique=True, trim="-") for v in row) for row in block]
            if labels is not None:
                rows = [f"{r},{lab}" for r, lab in zip(rows, labels[start:start + step], strict=True)]
            fh.write("\n".join(rows) + "\n")
