"""Recordings where beat files are accepted: telling them apart, loading one as beats, reading one again (another
lead, an analysis) from where it came, writing beats as ARFF."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgviz.io.parse import DataError
from ecgviz.io.recording import EDF_SUFFIXES, TEXT_SUFFIXES, WFDB_SUFFIXES, Recording, read_recording, read_uploads
from ecgviz.signal.beats import DEFAULT_LENGTH, Beats, cut_beats

__all__ = ["DEFAULT_LENGTH", "RecordingSource", "is_recording", "load_recording", "write_arff"]


def _record_of(path: Path) -> Path | None:
    """The WFDB record (path without suffix) a file belongs to, or None: a header names its signal files whatever
    their extension (.dat, .mat, .xyz), so any file beside a .hea of its name is part of that record."""
    suffix = path.suffix.lower()
    if suffix in WFDB_SUFFIXES:
        return path.with_suffix("")
    if suffix == "":
        return path if Path(str(path) + ".hea").is_file() else None
    if suffix not in EDF_SUFFIXES + TEXT_SUFFIXES and path.with_suffix(".hea").is_file():
        return path.with_suffix("")
    return None


def _is_record_path(path: Path) -> bool:
    return path.suffix.lower() in EDF_SUFFIXES or _record_of(path) is not None


def is_recording(paths: Sequence[str | os.PathLike[str]], fs: float | None = None) -> bool:
    """True when the paths name a recording: WFDB or EDF files, or text files with a sampling rate given."""
    paths = [Path(p) for p in paths]
    return any(_is_record_path(p) for p in paths) or (fs is not None and len(paths) > 0)


def load_recording(paths: Sequence[str | os.PathLike[str]], *, lead: str | None = None, fs: float | None = None,
                   length: int = DEFAULT_LENGTH) -> Beats:
    """Beats of one recording given as its file(s): a WFDB record's .hea/.dat/.atr, an EDF, or a CSV with fs."""
    paths = [Path(p) for p in paths]
    records = {_record_of(p) or p for p in paths}
    if len(records) != 1:
        names = ", ".join(sorted(p.name for p in paths))
        raise DataError(f"{names}: give one recording at a time (a record's header, signal and annotation files "
                        "count as one)")
    record = _record_of(paths[0])
    path = Path(str(record) + ".hea") if record is not None else paths[0]
    return cut_beats(read_recording(path, lead=lead, fs=fs), length)


@dataclass(frozen=True, eq=False)
class RecordingSource:
    """Where a loaded recording came from (a file on the server, or uploaded files kept in memory), so another of
    its leads can be cut, or the recording analysed, without asking for it again."""

    name: str
    path: Path | None = None
    files: tuple[tuple[str, bytes], ...] = ()
    fs: float | None = None  # CSV/TSV only: a WFDB header or an EDF file gives its own

    def read(self, lead: str | None = None) -> Recording:
        """The recording with `lead` (None: the first ECG lead); DataError naming the file when it cannot be read."""
        if self.path is not None:
            return read_recording(self.path, lead=lead, fs=self.fs)
        return read_uploads(list(self.files), lead=lead, fs=self.fs, column=lead)

    def nbytes(self) -> int:
        """Memory the kept uploads hold (a path holds none)."""
        return sum(len(raw) for _, raw in self.files)


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
