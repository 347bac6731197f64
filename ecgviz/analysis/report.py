"""An analysis written as files: beats.csv, flagged.atr (WFDB, for PhysioNet's viewers) and summary.json.

Everything is written into a temporary folder beside the target and renamed into place at the end, so a failure
leaves no half-written folder and an existing one is only replaced with --force.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import numpy as np

from ecgviz.analysis.analyze import Analysis
from ecgviz.errors import UserError

__all__ = ["ANNOTATION_SYMBOL", "FILES", "check_out_dir", "report_files", "write_report"]

FILES = ("beats.csv", "flagged.atr", "summary.json")
# WFDB's "unclassifiable beat": a flag says the beat is unusual, not which class it is; the reason and score
# go into each annotation's note
ANNOTATION_SYMBOL = "Q"


def check_out_dir(out_dir: str | os.PathLike[str], force: bool = False) -> Path:
    """The output folder, refused before any work when it exists (without force) or cannot be created."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out-dir {out} is a file; give a folder name")
    if out.exists() and not force:
        raise UserError(f"{out} already exists; choose another --out-dir or add --force to replace it")
    if not out.absolute().parent.is_dir():
        raise UserError(f"--out-dir {out}: the folder {out.absolute().parent} does not exist")
    return out


def _write_annotations(analysis: Analysis, folder: Path) -> None:
    import wfdb

    idx = np.flatnonzero(analysis.flagged)
    samples = analysis.samples[idx]
    notes = [f"{analysis.reason[i]} {analysis.score[i]:.2f}" for i in idx]
    if not len(idx):  # wfdb writes no empty annotation file; a file with no beats still says "none flagged"
        samples, notes, symbols = np.zeros(1, dtype=np.int64), ["no beats flagged"], ['"']
    else:
        symbols = [ANNOTATION_SYMBOL] * len(idx)
    wfdb.wrann("flagged", "atr", np.asarray(samples, dtype=np.int64), symbol=symbols, aux_note=notes,
               fs=analysis.recording.fs, write_dir=str(folder))


def _write_all(analysis: Analysis, folder: Path) -> None:
    analysis.table().to_csv(folder / "beats.csv", index=False)
    _write_annotations(analysis, folder)
    summary = {**analysis.summary, "files": list(FILES)}
    (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


def report_files(analysis: Analysis) -> dict[str, bytes]:
    """The report's files as {name: bytes}, for a download (nothing is left on disk)."""
    with tempfile.TemporaryDirectory(prefix="ecgviz-report-") as tmp:
        _write_all(analysis, Path(tmp))
        return {name: (Path(tmp) / name).read_bytes() for name in FILES}


def write_report(analysis: Analysis, out_dir: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Write FILES into out_dir, all or nothing; an existing out_dir is replaced only with force."""
    out = check_out_dir(out_dir, force)
    tmp = out.absolute().parent / f".{out.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()  # mkdir, not mkdtemp: the folder gets the user's usual permissions
    try:
        _write_all(analysis, tmp)
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
