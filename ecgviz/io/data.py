"""Load ECG beats from ARFF or UCR-style TSV/CSV files into one immutable, validated data set.

Input rules (each bad case raises DataError naming the file, row, line and attribute):

* ARFF: numeric/real/integer attributes are the samples, in declared order. The class
  label is the attribute named target/class/label (any case; nominal, numeric or string),
  else a final nominal attribute, else there are no labels. String, date and other
  nominal attributes are ignored with a warning; relational attributes, sparse rows and
  duplicate attribute names are rejected.
* TSV/CSV/whitespace text (UCR layout): class label in the first column, then the
  samples. A first line whose first field is target/class/label, or that has no number
  after the first field, is skipped as a header (with a warning).
* The format is sniffed from the content; a headerless numeric table named .arff is read
  as UCR text with a warning. Text is UTF-8 (a BOM is fine), UTF-16 with a BOM, or else
  read as Latin-1 with a warning. Binary data is rejected.
* Every data row must be complete: '?' (missing), non-numbers, NaN, inf and values that
  overflow float32 are rejected with their location, so X is always finite and every
  row of the input is accounted for. Beats need at least MIN_LENGTH samples.
* Several files are concatenated in the order given; they must agree on the beat length
  and on having labels, and their file names must differ (so file + row names a beat).
* Numeric labels become text (1.0 -> "1"). ECG5000 class names are used when beats have
  140 samples and every label is one of 1..5; other labels show as "Class <label>".
* Constant beats (all samples equal) are kept, with a warning.
* A class label has at most 100 characters and a file name at most 255 (longer ones are refused by name). Labels
  and file names are stored once per distinct value, with int32 codes per beat.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from types import MappingProxyType

import numpy as np

from ecgviz.errors import UserError
from ecgviz.io.codes import decode, encode, tidy
from ecgviz.io.origin import BeatOrigin
from ecgviz.io.pack import is_pack, read_pack
from ecgviz.io.parse import MAX_NAME_CHARS, MIN_LENGTH, DataError, Parsed, _show, parse
from ecgviz.io.shipped import shipped_folder

__all__ = [
    "ECG5000_CLASS_NAMES",
    "MIN_LENGTH",
    "BeatData",
    "DataError",
    "bundled_paths",
    "fingerprint",
    "load_ecg5000",
    "load_files",
    "load_uploads",
]

ECG5000_CLASS_NAMES: dict[str, str] = {
    "1": "Normal",
    "2": "R-on-T PVC",
    "3": "PVC",
    "4": "Supraventricular ectopic",
    "5": "Unclassified",
}
ECG5000_LENGTH = 140
_DATA_DIR = shipped_folder("data")
_FINGERPRINT_BLOCK = 65_536  # beats hashed at a time: bounds the temporary text


def label_key(label: str) -> tuple[int, float, str]:
    """Sort key putting numeric labels first, in numeric order ("2" < "10"), then text."""
    try:
        value = float(label)
    except ValueError:
        return (1, 0.0, label)
    return (0, value, label) if math.isfinite(value) else (1, 0.0, label)


def label_order(labels: np.ndarray | None) -> list[str]:
    """Distinct labels in display order (see :func:`label_key`); empty for None."""
    return [] if labels is None else sorted(encode(labels)[1], key=label_key)


def _frozen(values: np.ndarray) -> np.ndarray:
    view = values.view()
    view.flags.writeable = False
    return view


@dataclass(frozen=True, eq=False, init=False)
class BeatData:
    """Equal-length beats (n, T) float32 with optional text labels and their file/row origin.

    Labels and source files are stored as (n,) int32 codes into tables of distinct names (label_names in display
    order, source_names in file order), so memory is paid per distinct value; `labels` and `sources` build the
    per-beat text on demand.
    """

    X: np.ndarray
    label_codes: np.ndarray | None
    label_names: tuple[str, ...]
    class_names: Mapping[str, str]
    source_codes: np.ndarray
    source_names: tuple[str, ...]
    rows: np.ndarray
    warnings: tuple[str, ...]
    origin: BeatOrigin | None  # beats cut from a recording: record, lead, R-peak sample per beat

    def __init__(self, X: np.ndarray, labels: Sequence[object] | np.ndarray | None, class_names: Mapping[str, str],
                 sources: Sequence[object] | np.ndarray, rows: np.ndarray, warnings: Sequence[str] = (),
                 origin: BeatOrigin | None = None) -> None:
        """Beats with per-beat labels (or None) and source names, encoded here as codes."""
        label_codes, label_names = (None, ()) if labels is None else encode(labels)
        self._fill(X, label_codes, label_names, class_names, *encode(sources), rows, warnings, origin)

    @classmethod
    def from_codes(cls, X: np.ndarray, label_codes: np.ndarray | None, label_names: Sequence[str],
                   class_names: Mapping[str, str], source_codes: np.ndarray, source_names: Sequence[str],
                   rows: np.ndarray, warnings: Sequence[str] = (), origin: BeatOrigin | None = None) -> BeatData:
        """Beats whose labels and sources are already codes into tables of names (no per-beat text is built)."""
        data = cls.__new__(cls)
        data._fill(X, label_codes, label_names, class_names, source_codes, source_names, rows, warnings, origin)
        return data

    def _fill(self, X, label_codes, label_names, class_names, source_codes, source_names, rows, warnings,
              origin) -> None:
        X = np.asarray(X, dtype=np.float32)
        n = len(X) if X.ndim == 2 else -1
        rows = np.asarray(rows, dtype=np.int64)
        arrays = [np.asarray(c) for c in (label_codes, source_codes) if c is not None]
        if n < 0 or any(a.shape != (n,) for a in (*arrays, rows)):
            raise ValueError("BeatData needs X of shape (n, T) and labels/sources/rows of shape (n,)")
        if origin is not None and len(origin) != n:
            raise ValueError("BeatData.origin must describe every beat")
        if label_codes is not None:
            label_codes, label_names = tidy(label_codes, label_names, key=label_key)
        source_codes, source_names = tidy(source_codes, source_names)
        names = {str(k): str(v) for k, v in class_names.items()}
        for attr, value in (("X", X), ("label_codes", label_codes), ("source_codes", source_codes), ("rows", rows)):
            object.__setattr__(self, attr, None if value is None else _frozen(value))
        object.__setattr__(self, "label_names", () if label_codes is None else label_names)
        object.__setattr__(self, "source_names", source_names)
        object.__setattr__(self, "class_names", MappingProxyType(names))
        object.__setattr__(self, "warnings", tuple(warnings))
        object.__setattr__(self, "origin", origin)

    @property
    def labels(self) -> np.ndarray | None:
        """(n,) read-only object array of each beat's label (built on demand; the stored form is codes)."""
        return None if self.label_codes is None else decode(self.label_codes, self.label_names)

    @property
    def sources(self) -> np.ndarray:
        """(n,) read-only object array of each beat's source file name (built on demand)."""
        return decode(self.source_codes, self.source_names)

    @property
    def n_beats(self) -> int:
        """Number of beats."""
        return int(self.X.shape[0])

    @property
    def length(self) -> int:
        """Samples per beat (T)."""
        return int(self.X.shape[1])

    @property
    def has_labels(self) -> bool:
        """Whether the beats carry class labels."""
        return self.label_codes is not None

    def label_counts(self) -> dict[str, int]:
        """Beats per label, in numeric-aware label order; empty when unlabelled."""
        if self.label_codes is None:
            return {}
        counts = np.bincount(self.label_codes, minlength=len(self.label_names)).tolist()
        return dict(zip(self.label_names, counts, strict=True))

    def label_mask(self, wanted: Sequence[str]) -> np.ndarray:
        """(n,) bool: which beats carry one of the `wanted` labels (compared on codes)."""
        if self.label_codes is None:
            raise UserError("the beats have no labels")
        wanted = {str(w) for w in wanted}
        return np.isin(self.label_codes, [i for i, name in enumerate(self.label_names) if name in wanted])

    def nbytes(self) -> int:
        """Memory held by the per-beat arrays (the name tables are a few bytes per distinct value)."""
        arrays = (self.X, self.label_codes, self.source_codes, self.rows)
        held = sum(a.nbytes for a in arrays if a is not None)
        return held + (0 if self.origin is None else self.origin.nbytes())


def _class_names(present: Sequence[str], length: int) -> dict[str, str]:
    ecg = length == ECG5000_LENGTH and set(present) <= set(ECG5000_CLASS_NAMES)
    return {lab: ECG5000_CLASS_NAMES[lab] if ecg else f"Class {lab}" for lab in present}


def _constant_warning(name: str, part: Parsed) -> str | None:
    flat = np.flatnonzero((part.X == part.X[:, :1]).all(axis=1))
    if not len(flat):
        return None
    first = ", ".join(str(r) for r in part.rows[flat[:3]])
    return f"{name}: {len(flat)} constant beat(s) (all samples equal), e.g. row {first}"


def _combine(files: Sequence[tuple[str, bytes | Path]]) -> BeatData:
    if not files:
        raise DataError("no files given")
    names = [name for name, _ in files]
    for name in names:
        if len(name) > MAX_NAME_CHARS:
            raise DataError(f"file name {_show(name)} is {len(name):,} characters long; rename the file to at "
                            f"most {MAX_NAME_CHARS} characters")
        if names.count(name) > 1:
            raise DataError(f"{name}: given more than once (file names must differ so file + row names a beat)")
    parts: list[tuple[str, Parsed]] = []
    for name, raw in files:
        # a beat pack on disk is read from its path: its bytes never sit in memory beside its beats
        part = read_pack(name, raw) if isinstance(raw, Path) or is_pack(name, raw[:4]) else parse(name, raw)
        if parts:
            first, ref = parts[0]
            if part.X.shape[1] != ref.X.shape[1]:
                raise DataError(f"{name}: beats have {part.X.shape[1]} samples but {first} has {ref.X.shape[1]}")
            if (part.label_codes is None) != (ref.label_codes is None):
                has, lacks = (first, name) if part.label_codes is None else (name, first)
                raise DataError(f"{lacks}: no class labels, but {has} has them; load them separately")
        if (note := _constant_warning(name, part)) is not None:
            part.warnings.append(note)
        parts.append((name, part))
    X = parts[0][1].X if len(parts) == 1 else np.concatenate([p.X for _, p in parts])
    label_codes, label_names = None, ()
    if parts[0][1].label_codes is not None:
        # one table for all files: each file's codes shifted past the names of the files before it
        offsets = np.cumsum([0] + [len(p.label_names) for _, p in parts[:-1]]).astype(np.int32)
        label_codes, label_names = tidy(np.concatenate([p.label_codes + o for (_, p), o in zip(parts, offsets,
                                                                                                strict=True)]),
                                        [lab for _, p in parts for lab in p.label_names], key=label_key)
    return BeatData.from_codes(
        X=X,
        label_codes=label_codes,
        label_names=label_names,
        class_names=_class_names(label_names, X.shape[1]) if label_codes is not None else {},
        source_codes=np.repeat(np.arange(len(parts), dtype=np.int32), [len(p.X) for _, p in parts]),
        source_names=[n for n, _ in parts],
        rows=np.concatenate([p.rows for _, p in parts]),
        warnings=tuple(w for _, p in parts for w in p.warnings),
    )


def load_files(paths: Sequence[str | os.PathLike[str]]) -> BeatData:
    """Load ARFF/TSV/CSV files (format sniffed from the content) or beat packs (.npz) as one data set, in order."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files = []
    for path in paths:
        name = Path(path).name
        try:
            with open(path, "rb") as fh:
                head = fh.read(4)
            files.append((name, Path(path) if is_pack(name, head) else Path(path).read_bytes()))
        except OSError as exc:
            raise DataError(f"{name}: cannot read the file ({exc.strerror or exc})") from None
    return _combine(files)


def load_uploads(files: Sequence[tuple[str, bytes]]) -> BeatData:
    """Load (file name, raw bytes) pairs, e.g. browser uploads, exactly like load_files."""
    items = []
    for name, raw in files:
        base = PurePath(str(name).replace("\\", "/")).name or "unnamed upload"
        if not isinstance(raw, (bytes, bytearray, memoryview)):
            raise DataError(f"{base}: expected the file's bytes, got {type(raw).__name__}")
        items.append((base, bytes(raw)))
    return _combine(items)


def bundled_paths() -> tuple[Path, Path]:
    """Paths of the bundled ECG5000 TRAIN and TEST ARFF files."""
    return _DATA_DIR / "ECG5000_TRAIN.arff", _DATA_DIR / "ECG5000_TEST.arff"


@functools.lru_cache(maxsize=1)
def load_ecg5000() -> BeatData:
    """The bundled ECG5000 beats (TRAIN then TEST, 5000 x 140) with ECG5000 class names."""
    data = load_files(bundled_paths())
    names = {lab: ECG5000_CLASS_NAMES[lab] for lab in data.class_names}
    return BeatData.from_codes(data.X, data.label_codes, data.label_names, names, data.source_codes,
                               data.source_names, data.rows, data.warnings)


def fingerprint(data: BeatData) -> str:
    """Stable sha256 hex digest of the beat values (little-endian float32), shape and labels."""
    digest = hashlib.sha256(b"ecgviz-beats-v1\0")
    digest.update(np.asarray(data.X.shape, dtype="<i8").tobytes())
    digest.update(memoryview(np.ascontiguousarray(data.X, dtype="<f4")).cast("B"))
    if data.label_codes is None:
        digest.update(b"null")
        return digest.hexdigest()
    # the bytes of json.dumps(labels.tolist()), written a block of beats at a time from one text per label
    texts = np.empty(len(data.label_names), dtype=object)
    texts[:] = [json.dumps(lab, ensure_ascii=True).encode() for lab in data.label_names]
    codes = data.label_codes
    digest.update(b"[")
    for start in range(0, len(codes), _FINGERPRINT_BLOCK):
        digest.update((b", " if start else b"") + b", ".join(texts[codes[start:start + _FINGERPRINT_BLOCK]].tolist()))
    digest.update(b"]")
    return digest.hexdigest()
