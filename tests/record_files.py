"""WFDB records whose header names signal files other than .dat, made from the first minute of MIT-BIH record 100:
a PhysioNet-challenge style .mat record (MATLAB v4 file, as wfdb's own wfdb_to_mat writes it) and a PTB style
record with one lead in a .dat and another in a .xyz file."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

MITDB = Path(__file__).resolve().parent.parent / "data" / "mitdb"


def _minute(seconds: float, physical: bool = False):
    import wfdb

    n = round(seconds * 360)
    return (wfdb.rdrecord(str(MITDB / "100"), sampto=n, physical=physical),
            wfdb.rdann(str(MITDB / "100"), "atr", sampto=n))


def write_mat_record(folder: Path, seconds: float = 60.0) -> dict[str, bytes]:
    """`100m.hea` naming `100m.mat` (format 16 after the MATLAB header) with leads MLII and V5, and `100m.atr`."""
    import wfdb
    from wfdb.io.convert.matlab import wfdb_to_mat

    rec, ann = _minute(seconds)
    wfdb.wrsamp("100", fs=360, units=rec.units, sig_name=rec.sig_name, d_signal=rec.d_signal, fmt=rec.fmt,
                adc_gain=rec.adc_gain, baseline=rec.baseline, write_dir=str(folder))
    with contextlib.chdir(folder):  # wfdb_to_mat reads and writes in the working directory
        wfdb_to_mat("100")
    wfdb.wrann("100m", "atr", ann.sample, symbol=ann.symbol, fs=360, write_dir=str(folder))
    return {name: (folder / name).read_bytes() for name in ("100m.hea", "100m.mat", "100m.atr")}


def write_xyz_record(folder: Path, seconds: float = 60.0) -> dict[str, bytes]:
    """`ptb.hea` naming `ptb.dat` (lead MLII) and `ptb.xyz` (lead V5), as PTB's headers name their Frank leads."""
    import wfdb

    rec, _ = _minute(seconds)
    lines = []
    for i, (lead, ext) in enumerate((("MLII", "dat"), ("V5", "xyz"))):
        part = f"part{i}"
        wfdb.wrsamp(part, fs=360, units=[rec.units[i]], sig_name=[lead], d_signal=rec.d_signal[:, [i]],
                    fmt=["16"], adc_gain=[rec.adc_gain[i]], baseline=[rec.baseline[i]], write_dir=str(folder))
        (folder / f"{part}.dat").rename(folder / f"ptb.{ext}")
        lines.append((folder / f"{part}.hea").read_text().splitlines()[1].replace(f"{part}.dat", f"ptb.{ext}"))
        (folder / f"{part}.hea").unlink()
    (folder / "ptb.hea").write_text(f"ptb 2 360 {len(rec.d_signal)}\n" + "\n".join(lines) + "\n")
    return {name: (folder / name).read_bytes() for name in ("ptb.hea", "ptb.dat", "ptb.xyz")}


def lead_of_100(lead: str, seconds: float = 60.0) -> np.ndarray:
    """The physical signal of one lead of record 100's first `seconds`, as read from the original."""
    rec, _ = _minute(seconds, physical=True)
    return rec.p_signal[:, rec.sig_name.index(lead)].astype(np.float32)
