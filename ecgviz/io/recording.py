"""Read one ECG lead of a recording (WFDB, EDF/EDF+/BDF, CSV/TSV) and its beat annotations, with clear errors.

Libraries, not hand parsing: `wfdb` for PhysioNet records and annotation files, `edfio` for EDF/EDF+ (and BDF),
pandas for delimited text. edfio rather than pyedflib or wfdb.io.read_edf: it is pure Python on numpy (no C
extension to build), keeps EDF+ annotations and reads straight from bytes, so an upload needs no temporary file.
"""

from __future__ import annotations

import io
import math
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

import numpy as np

from ecgviz.io import recording_limits as limits
from ecgviz.io.parse import DataError

__all__ = ["AAMI_CLASSES", "RECORDING_SUFFIXES", "Recording", "aami_class", "read_recording", "read_uploads"]

# MIT-BIH beat symbols -> AAMI EC57 classes; every other annotation (rhythm, noise, comments) is not a beat.
_AAMI = {"N": "NLRBej", "S": "AaJS", "V": "VE", "F": "F", "Q": "/fQ?r"}
AAMI_CLASSES = {"N": "Normal or bundle branch block", "S": "Supraventricular ectopic", "V": "Ventricular ectopic",
                "F": "Fusion", "Q": "Paced or unclassifiable"}
_SYMBOL_CLASS = {sym: cls for cls, syms in _AAMI.items() for sym in syms}
WFDB_SUFFIXES = (".hea", ".dat", ".atr")
EDF_SUFFIXES = (".edf", ".bdf", ".rec")
TEXT_SUFFIXES = (".csv", ".tsv", ".txt")
RECORDING_SUFFIXES = WFDB_SUFFIXES + EDF_SUFFIXES + TEXT_SUFFIXES
MIN_FS, MAX_FS = 50.0, 20_000.0  # below ~50 Hz a QRS complex is a few samples; above, no ECG recorder samples
_ECG_LEAD = re.compile(r"^(ecg|ekg|mlii|ml[i]+|i{1,3}|avr|avl|avf|v[1-6]|d[1-3]|lead\b)", re.IGNORECASE)
_TIME_COLUMN = re.compile(r"^(time|t|sec|seconds|time_s|elapsed)\b", re.IGNORECASE)


def aami_class(symbol: str) -> str | None:
    """AAMI class (N, S, V, F, Q) of a MIT-BIH beat symbol; None for non-beat annotations."""
    return _SYMBOL_CLASS.get(symbol)


@dataclass(frozen=True, eq=False)
class Recording:
    """One lead of a recording: float32 samples in physical units, the sampling rate and beat annotations."""

    signal: np.ndarray  # (n,) float32; NaN marks samples the recorder flagged invalid
    fs: float
    record: str
    lead: str
    leads: tuple[str, ...]  # every lead in the file, for a lead picker
    units: str = ""
    ann_samples: np.ndarray | None = None  # (k,) int64 sample of each beat annotation
    ann_symbols: tuple[str, ...] | None = None  # (k,) its original symbol
    notes: tuple[str, ...] = ()  # what reading changed (annotations merged or ignored), one line each

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return len(self.signal) / self.fs


def _check_fs(name: str, fs: float) -> float:
    if fs is None or not math.isfinite(fs) or not MIN_FS <= fs <= MAX_FS:
        raise DataError(f"{name}: sampling rate {fs!r} Hz is not usable (expected {MIN_FS:g} to {MAX_FS:g} Hz)")
    return float(fs)


def _pick(name: str, leads: Sequence[str], lead: str | None, what: str = "lead") -> int:
    if lead is not None:
        if lead in leads:
            return list(leads).index(lead)
        raise DataError(f"{name}: no {what} {lead!r}; it has {', '.join(map(repr, leads)) or 'none'}")
    for i, candidate in enumerate(leads):
        if _ECG_LEAD.match(candidate.strip()):
            return i
    return -1


# bytes per sample frame of each WFDB storage format (212: two 12-bit samples in three bytes)
_FORMAT_BYTES = {"8": 1, "16": 2, "24": 3, "32": 4, "61": 2, "80": 1, "160": 2, "212": 1.5, "310": 4 / 3,
                 "311": 4 / 3}


def _expected_bytes(header) -> dict[str, int]:
    """Smallest size each signal file must have for the header's length (compressed formats: unknown, skipped)."""
    sizes: dict[str, float] = {}
    offsets = header.byte_offset or [0] * header.n_sig
    for i, file_name in enumerate(header.file_name):
        per = _FORMAT_BYTES.get(str(header.fmt[i]))
        spf = (header.samps_per_frame or [1] * header.n_sig)[i] or 1
        if per is None or not header.sig_len:
            return {}
        sizes[file_name] = sizes.get(file_name, (offsets[i] or 0)) + per * spf * header.sig_len
    return {k: int(v) for k, v in sizes.items()}


def _to_lead_samples(samples: np.ndarray, ann_fs: float, fs: float) -> np.ndarray:
    """Annotation sample numbers counted at the annotation file's own rate, as samples of the lead read at fs."""
    if not ann_fs or float(ann_fs) == fs:
        return samples
    return np.rint(samples * (fs / float(ann_fs))).astype(np.int64)


def _read_wfdb(path: Path, lead: str | None, annotator: str) -> Recording:
    import wfdb

    base, name = str(path.with_suffix("")), path.stem
    if not Path(base + ".hea").is_file():
        raise DataError(f"{name}: no header file {name}.hea (a WFDB record needs its .hea with the .dat)")
    limits.check_header_file(Path(base + ".hea"))
    try:
        header = wfdb.rdheader(base)
    except Exception as exc:  # wfdb raises bare ValueError/IndexError on a broken header
        raise DataError(f"{name}.hea: not a readable WFDB header ({exc})") from None
    leads = tuple(header.sig_name or ())
    if not leads:
        raise DataError(f"{name}.hea: the record has no signals")
    index = _pick(f"{name}.hea", leads, lead)
    index = 0 if index < 0 else index  # MIT-BIH style names (MLII, V5) match; anything else: the first lead
    for file_name in set(header.file_name or ()):
        if not (path.parent / file_name).is_file():
            raise DataError(f"{name}.hea: names the signal file {file_name!r}, which is missing")
    fs = _check_fs(f"{name}.hea", float(header.fs or 0))
    expected = _expected_bytes(header)
    for file_name, size in expected.items():
        have = (path.parent / file_name).stat().st_size
        if have < size:
            raise DataError(f"{file_name}: the signal file is truncated ({have:,} of {size:,} bytes the header "
                            "implies)")
    limits.check_signal_layout(f"{name}.hea", header, path.parent)
    # a lead with several samples per frame is read at its own rate, not averaged down to the frame rate
    spf = int((header.samps_per_frame or [1] * len(leads))[index] or 1)
    fs = _check_fs(f"{name}.hea", fs * spf)
    try:
        rec = wfdb.rdrecord(base, channels=[index], return_res=32, smooth_frames=spf == 1)
    except Exception as exc:
        raise DataError(f"{name}: cannot read the signal ({type(exc).__name__}: {exc})") from None
    signal = np.asarray(rec.p_signal[:, 0] if spf == 1 else rec.e_p_signal[0], dtype=np.float32)
    if header.sig_len and len(signal) < header.sig_len * spf:
        raise DataError(f"{name}: the signal file is truncated ({len(signal):,} of {header.sig_len * spf:,} "
                        "samples)")
    samples = symbols = None
    notes: tuple[str, ...] = ()
    if Path(f"{base}.{annotator}").is_file():
        limits.check_annotation_file(Path(f"{base}.{annotator}"), len(signal), fs)
        try:
            ann = wfdb.rdann(base, annotator)
        except Exception as exc:
            raise DataError(f"{name}.{annotator}: not a readable annotation file ({exc})") from None
        keep = [i for i, s in enumerate(ann.symbol) if s in _SYMBOL_CLASS]
        samples = _to_lead_samples(np.asarray(ann.sample, dtype=np.int64)[keep], ann.fs or header.fs, fs)
        symbols = tuple(ann.symbol[i] for i in keep)
        samples, symbols, notes = limits.tidy_beat_annotations(f"{name}.{annotator}", samples, symbols,
                                                               len(signal), fs)
    return Recording(signal, fs, name, leads[index], leads, (rec.units or [""])[0], samples, symbols, notes)


def _read_edf(name: str, source: Path | bytes, lead: str | None) -> Recording:
    import edfio

    reader = edfio.read_bdf if name.lower().endswith(".bdf") else edfio.read_edf
    try:
        edf = reader(source)
        signals = [s for s in edf.signals]
    except Exception as exc:  # edfio raises ValueError/struct errors on a damaged file
        raise DataError(f"{name}: not a readable EDF file ({exc})") from None
    leads = tuple(s.label for s in signals)
    index = _pick(name, leads, lead, "channel")
    if index < 0:
        raise DataError(f"{name}: no ECG channel (labels: {', '.join(map(repr, leads)) or 'none'}); "
                        "name one with --lead")
    sig = signals[index]
    fs = _check_fs(name, float(sig.sampling_frequency))
    data = np.asarray(sig.data, dtype=np.float32)
    return Recording(data, fs, PurePath(name).stem, leads[index], leads, sig.physical_dimension)


def _read_text(name: str, raw: bytes, fs: float | None, column: str | None, time_column: str | None) -> Recording:
    import pandas as pd

    sep = limits.text_separator(name, raw)
    limits.check_text_columns(name, raw, sep)
    try:
        frame = pd.read_csv(io.BytesIO(raw), sep=sep, engine="c")
    except Exception as exc:
        raise DataError(f"{name}: not a readable CSV/TSV table ({' '.join(str(exc).split())})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    tcol = time_column if time_column is not None else next((c for c in numeric if _TIME_COLUMN.match(c)), None)
    if tcol is not None and tcol not in frame.columns:
        raise DataError(f"{name}: no time column {tcol!r}; columns: {', '.join(map(repr, frame.columns))}")
    leads = tuple(c for c in numeric if c != tcol)
    if not leads:
        raise DataError(f"{name}: no numeric signal column (columns: {', '.join(map(repr, frame.columns))})")
    index = _pick(name, leads, column, "column")
    index = 0 if index < 0 else index
    if fs is None:
        if tcol is None:
            raise DataError(f"{name}: give the sampling rate (Hz) or a time column in seconds")
        steps = np.diff(frame[tcol].to_numpy(dtype=np.float64))
        if len(steps) == 0 or not np.all(np.isfinite(steps)) or np.median(steps) <= 0:
            raise DataError(f"{name}: time column {tcol!r} does not increase steadily")
        fs = 1.0 / float(np.median(steps))
    fs = _check_fs(name, fs)
    signal = frame[leads[index]].to_numpy(dtype=np.float32)
    return Recording(signal, fs, PurePath(name).stem, leads[index], leads)


def read_recording(path: str | os.PathLike[str], *, lead: str | None = None, fs: float | None = None,
                   column: str | None = None, time_column: str | None = None, annotator: str = "atr") -> Recording:
    """One lead of a WFDB record (any of its files, or the name without suffix), an EDF/BDF file or a CSV/TSV."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in EDF_SUFFIXES:
        if not path.is_file():
            raise DataError(f"{path.name}: no such file")
        return _read_edf(path.name, path, lead or column)
    if suffix in TEXT_SUFFIXES:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise DataError(f"{path.name}: cannot read the file ({exc.strerror or exc})") from None
        return _read_text(path.name, raw, fs, column or lead, time_column)
    if suffix not in ("", *WFDB_SUFFIXES) and not Path(str(path) + ".hea").is_file() \
            and path.with_suffix(".hea").is_file():
        path, suffix = path.with_suffix(".hea"), ".hea"  # a signal file its header names: .mat, .xyz, ...
    if suffix in ("", *WFDB_SUFFIXES) or Path(str(path) + ".hea").is_file():
        wfdb_path = path if suffix in WFDB_SUFFIXES else Path(str(path) + ".hea")
        if fs is not None:
            raise DataError(f"{path.name}: a WFDB header gives the sampling rate; --fs is for CSV/TSV files")
        return _read_wfdb(wfdb_path, lead, annotator)
    raise DataError(f"{path.name}: not a recording (expected .hea/.dat/.atr, .edf/.bdf, or .csv/.tsv)")


def read_uploads(files: Sequence[tuple[str, bytes]], *, lead: str | None = None, fs: float | None = None,
                 column: str | None = None) -> Recording:
    """A recording from uploaded (name, bytes): a WFDB record's files together, one EDF, or one CSV/TSV."""
    names = [PurePath(str(n).replace("\\", "/")).name for n, _ in files]
    if not names:
        raise DataError("no files given")
    limits.check_upload_size(names, [len(raw) for _, raw in files])
    suffixes = {PurePath(n).suffix.lower() for n in names}
    if suffixes & set(WFDB_SUFFIXES):
        stems = {PurePath(n).stem for n in names}
        # the header names the signal files, whatever their extension: .dat, .mat (PhysioNet challenges), .xyz (PTB)
        if len(stems) > 1 or suffixes & set(EDF_SUFFIXES + TEXT_SUFFIXES):
            raise DataError(f"{' + '.join(names)}: upload one record's files together (.hea + the signal files "
                            "it names [+ .atr])")
        if ".hea" not in suffixes:
            raise DataError(f"{names[0]}: a WFDB record needs its header; add {PurePath(names[0]).stem}.hea")
        # wfdb reads records from a folder: the files live there only while they are read
        with tempfile.TemporaryDirectory(prefix="ecgviz-") as tmp:
            for name, (_, raw) in zip(names, files, strict=True):
                Path(tmp, name).write_bytes(bytes(raw))
            return read_recording(Path(tmp, stems.pop() + ".hea"), lead=lead)
    if len(names) != 1:
        raise DataError(f"{' + '.join(names)}: upload one EDF or CSV recording at a time")
    name, raw = names[0], bytes(files[0][1])
    if PurePath(name).suffix.lower() in EDF_SUFFIXES:
        return _read_edf(name, raw, lead or column)
    if PurePath(name).suffix.lower() in TEXT_SUFFIXES:
        return _read_text(name, raw, fs, column or lead, None)
    raise DataError(f"{name}: not a recording (expected a .hea with the signal files it names, .edf/.bdf, or "
                    ".csv/.tsv)")
