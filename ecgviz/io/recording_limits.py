"""Bounds on a recording, checked from its header and file sizes before the readers read or allocate anything.

Every limit the recording readers enforce is one constant here; docs/limits.md says why each is what it is and
what the attacks it stops cost before and after. A file over a limit is refused with a DataError naming the file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ecgviz.errors import DataError

__all__ = ["ANNOTATION_BYTES_PER_BEAT", "MAX_BEATS", "MAX_BEATS_PER_S", "MAX_HEADER_BYTES", "MAX_SIGNALS",
           "MAX_UPLOAD_MB", "check_annotation_file", "check_header_file", "check_signal_layout",
           "check_text_columns", "check_upload_size", "text_separator", "tidy_beat_annotations"]

# The largest montages in use (high-density EEG beside the ECG) have 256 channels; an ECG has 1 to 16 leads.
# Applies to a WFDB header's signal lines and a CSV/TSV recording's columns.
MAX_SIGNALS = 256
# A WFDB header (or a CSV/TSV's first line): 256 signal lines of ~80 bytes plus comments fit in 64 KiB.
MAX_HEADER_BYTES = 64 * 1024
# No heart beats faster than 300 a minute for long; averaged over a whole recording this is far above any real one.
MAX_BEATS_PER_S = 5.0
# Beats per recording: a 24-hour Holter record holds ~110,000, so two days of a normal heart fit.
MAX_BEATS = 250_000
# Annotation file bytes allowed per beat the recording may hold: a beat is 2 bytes, 8 with the skip that
# precedes it when beats are more than 1,023 samples apart; rhythm and comment annotations are rare beside them.
ANNOTATION_BYTES_PER_BEAT = 8
# All files of one recording upload together, in MB (10^6 bytes, as the browser's uploader counts): the
# dashboard's per-file limit (server.maxUploadSize in .streamlit/config.toml), so a record's .hea + .dat + .atr
# cost no more than one file may. Longer recordings are loaded from the server's data folder.
MAX_UPLOAD_MB = 50

_SIGNAL_FILE_SIZE_FORMATS = {"8", "16", "24", "32", "61", "80", "160", "212", "310", "311"}  # >= 1 byte a sample


def check_upload_size(names: Sequence[str], sizes: Sequence[int]) -> None:
    """Refuse an upload whose files hold more than MAX_UPLOAD_MB together, before any is written or parsed."""
    total = sum(sizes)
    if total > MAX_UPLOAD_MB * 1e6:
        what = names[0] if len(names) == 1 else " + ".join(names)
        raise DataError(f"{what}: {total / 1e6:,.1f} MB together, but a recording upload may hold at most "
                        f"{MAX_UPLOAD_MB} MB; put longer recordings in the server's data folder")


def check_header_file(path: Path) -> None:
    """Refuse a WFDB header over MAX_HEADER_BYTES or with more than MAX_SIGNALS signal (or segment) lines.

    Runs before wfdb parses it: wfdb's header parser takes seconds per thousand signal lines.
    """
    with open(path, "rb") as fh:
        raw = fh.read(MAX_HEADER_BYTES + 1)
    if len(raw) > MAX_HEADER_BYTES:
        raise DataError(f"{path.name}: the header is over {MAX_HEADER_BYTES // 1024} KiB; a WFDB header of "
                        f"{MAX_SIGNALS} signals needs far less")
    # wfdb's own reading of the text: comment lines start with '#', empty lines are skipped
    lines = [s for s in (x.strip() for x in raw.decode("latin-1").splitlines()) if s and not s.startswith("#")]
    declared = lines[0].split()[1] if lines and len(lines[0].split()) > 1 else "0"
    n = max(len(lines) - 1, int(declared) if declared.isdigit() else 0)
    if n > MAX_SIGNALS:
        raise DataError(f"{path.name}: the header describes {n:,} signals; a recording may have at most "
                        f"{MAX_SIGNALS}")


def _frames_bound(header, index: int, folder: Path) -> int:
    """The record's length in frames: the header's, else the signal file's size in bytes (>= 1 byte a sample)."""
    if header.sig_len:
        return int(header.sig_len)
    path = folder / header.file_name[index]
    return path.stat().st_size if path.is_file() else 0


def check_signal_layout(name: str, header, folder: Path) -> None:
    """Refuse a skew longer than the record or a byte offset past the end of its signal file.

    wfdb allocates the record's length plus the largest skew for every signal of a file before it reads a byte.
    """
    for i, file_name in enumerate(header.file_name or ()):
        skew = (header.skew or [None] * header.n_sig)[i] or 0
        length = _frames_bound(header, i, folder)
        if not 0 <= skew <= length:
            raise DataError(f"{name}: signal {i + 1} ({header.sig_name[i]!r}) has a skew of {skew:,} samples; "
                            f"it must be between 0 and the record's length ({length:,} samples)")
        offset = (header.byte_offset or [None] * header.n_sig)[i] or 0
        path = folder / file_name
        size = path.stat().st_size if path.is_file() else 0
        if str(header.fmt[i]) in _SIGNAL_FILE_SIZE_FORMATS and not 0 <= offset <= size:
            raise DataError(f"{file_name}: the header puts signal {i + 1} at byte {offset:,}, past the end of "
                            f"the {size:,}-byte file")


def _beats_allowed(n_samples: int, fs: float) -> int:
    return min(MAX_BEATS, math.ceil(n_samples / fs * MAX_BEATS_PER_S))


def check_annotation_file(path: Path, n_samples: int, fs: float) -> None:
    """Refuse an annotation file larger than the beats its record's length allows could need, before parsing it."""
    allowed = ANNOTATION_BYTES_PER_BEAT * _beats_allowed(n_samples, fs) + 1024  # + definitions and comments
    size = path.stat().st_size
    if size > allowed:
        raise DataError(f"{path.name}: {size:,} bytes of annotations for {n_samples / fs:,.0f} s of signal; at most "
                        f"{allowed:,} bytes fit the {_beats_allowed(n_samples, fs):,} beats it may hold "
                        f"({MAX_BEATS_PER_S:g} a second, {MAX_BEATS:,} in all)")


def tidy_beat_annotations(name: str, samples: np.ndarray, symbols: Sequence[str], n_samples: int,
                          fs: float) -> tuple[np.ndarray, tuple[str, ...], tuple[str, ...]]:
    """(samples, symbols, notes): beats outside the signal dropped, several at one sample merged into the first.

    Refuses more beats than MAX_BEATS_PER_S over the record or MAX_BEATS in all; the notes say what was changed.
    """
    samples = np.asarray(samples, dtype=np.int64)
    notes = []
    inside = (samples >= 0) & (samples < n_samples)
    if not inside.all():
        notes.append(f"{name}: {int((~inside).sum()):,} beat annotation(s) outside the signal's {n_samples:,} "
                     "samples ignored")
    order = np.flatnonzero(inside)
    order = order[np.argsort(samples[order], kind="stable")]
    first = np.ones(len(order), dtype=bool)
    first[1:] = samples[order[1:]] != samples[order[:-1]]
    if not first.all():
        notes.append(f"{name}: {int((~first).sum()):,} beat annotation(s) at a sample already annotated merged "
                     "into the first there")
    keep = np.sort(order[first])
    allowed = _beats_allowed(n_samples, fs)
    if len(keep) > allowed:
        raise DataError(f"{name}: {len(keep):,} beats in {n_samples / fs:,.0f} s of signal; a recording may hold "
                        f"at most {allowed:,} ({MAX_BEATS_PER_S:g} a second, {MAX_BEATS:,} in all)")
    return samples[keep], tuple(symbols[i] for i in keep), tuple(notes)


def _line(name: str, raw: bytes, start: int = 0) -> tuple[str, int]:
    """The line that begins at byte `start` and where the next begins; refused when over MAX_HEADER_BYTES."""
    end = raw.find(b"\n", start, start + MAX_HEADER_BYTES + 1)
    if end < 0 and len(raw) - start > MAX_HEADER_BYTES:
        which = "first" if start == 0 else "second"
        raise DataError(f"{name}: the {which} line is over {MAX_HEADER_BYTES // 1024} KiB; a recording of "
                        f"{MAX_SIGNALS} columns needs far less")
    end = end if end >= 0 else len(raw)
    return raw[start:end].decode("utf-8", "replace").strip("\r\ufeff"), end + 1


def text_separator(name: str, raw: bytes) -> str:
    """The column separator of a CSV/TSV recording from its first lines: tab for .tsv, else the commonest of
    comma, semicolon, tab and bar in the first line, else runs of spaces when the first row of numbers has
    them (a lone column's name may hold a space); a single column needs none (comma)."""
    line, after = _line(name, raw)
    if name.lower().endswith(".tsv"):
        return "\t"
    counts = {sep: line.count(sep) for sep in (",", ";", "\t", "|")}
    sep = max(counts, key=counts.get)
    if counts[sep]:
        return sep
    row = _line(name, raw, after)[0] if after < len(raw) else line
    return r"\s+" if re.search(r"\S\s+\S", row) else ","


def check_text_columns(name: str, raw: bytes, sep: str) -> None:
    """Refuse a CSV/TSV recording with more than MAX_SIGNALS columns, or a row wider than its first line.

    Runs before pandas reads it: pandas tokenises a whole row (about 20 bytes of memory a field) before it can
    say the row is too long. Counting separators is a pass over the bytes without copies.
    """
    line = _line(name, raw)[0]
    n = len(line.split()) if sep == r"\s+" else line.count(sep) + 1
    if n > MAX_SIGNALS:
        raise DataError(f"{name}: the first line has {n:,} columns; a recording may have at most {MAX_SIGNALS}")
    if len(sep) == 1 and raw.count(sep.encode()) > (n - 1) * (raw.count(b"\n") + 1):
        raise DataError(f"{name}: a row has more columns than the first line's {n:,}; every row of a recording "
                        "has the same columns")
