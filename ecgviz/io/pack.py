"""Beat packs: many beats in one binary file (.npz) that loads in seconds, for data too big for text.

A million 140-sample beats are about 1 GB as ARFF or CSV and take minutes to parse; as a pack they are 560 MB of
float32 read straight into memory. `python -m ecgviz pack --data FILES... --out beats.npz` writes one. A pack holds
`X` (n, T) float32, optionally `label_codes` (n,) int32 into `label_names` (k,) text (memory per distinct label,
not per beat), and a format marker. It is read with allow_pickle=False (no code can run), every member must be
stored uncompressed (so the file's size bounds what loading allocates), and values are checked as in text files.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np

from ecgviz.io.codes import encode, tidy
from ecgviz.io.parse import MAX_LABEL_CHARS, MIN_LENGTH, DataError, Parsed

FORMAT = "ecgviz-beat-pack-v1"
SUFFIX = ".npz"
_CHUNK = 65_536  # beats checked for finiteness at a time: bounds the temporary boolean array


def is_pack(name: str, head: bytes) -> bool:
    """True for a file named *.npz that starts like a zip archive."""
    return name.lower().endswith(SUFFIX) and head[:4] == b"PK\x03\x04"


def write_pack(path: str | os.PathLike, X: np.ndarray, labels: np.ndarray | None = None) -> Path:
    """Write beats (and text labels) as a pack, atomically."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    members: dict[str, np.ndarray] = {"format": np.array(FORMAT), "X": X}
    if labels is not None:
        codes, names = tidy(*encode(labels), key=str)
        members["label_names"], members["label_codes"] = np.array(names, dtype=str), codes
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **members)
    os.replace(tmp, path)
    return path


def read_pack(name: str, source: str | os.PathLike | bytes) -> Parsed:
    """Read a pack from a path or bytes; DataError naming the member or beat when anything is off."""
    handle = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
    try:
        with zipfile.ZipFile(handle) as archive:
            for info in archive.infolist():
                if info.compress_type != zipfile.ZIP_STORED:
                    raise DataError(f"{name}: member {info.filename} is compressed; write packs with "
                                    "`python -m ecgviz pack` (numpy.savez, not savez_compressed)")
        if not isinstance(handle, str | os.PathLike):
            handle.seek(0)
        with np.load(handle, allow_pickle=False) as npz:
            members = set(npz.files)
            if "format" not in members or str(npz["format"]) != FORMAT:
                raise DataError(f"{name}: not an ecgviz beat pack (no '{FORMAT}' marker)")
            X = npz["X"]
            codes = npz["label_codes"] if "label_codes" in members else None
            names = npz["label_names"] if "label_names" in members else None
    except DataError:
        raise
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{name}: cannot read the beat pack ({exc})") from None
    if X.dtype != np.float32 or X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < MIN_LENGTH:
        raise DataError(f"{name}: X must be float32 beats (n, T) with n >= 1 and T >= {MIN_LENGTH}; "
                        f"got {X.dtype} {X.shape}")
    for start in range(0, len(X), _CHUNK):
        bad = ~np.isfinite(X[start:start + _CHUNK]).all(axis=1)
        if bad.any():
            raise DataError(f"{name}, beat {start + int(np.argmax(bad)) + 1}: a sample is NaN or infinite")
    if (codes is None) != (names is None):
        raise DataError(f"{name}: label_codes and label_names come together")
    if codes is not None:
        if names.dtype.kind != "U" or names.ndim != 1 or len(names) == 0:
            raise DataError(f"{name}: label_names must be a list of text")
        if names.dtype.itemsize // 4 > MAX_LABEL_CHARS:
            lengths = np.char.str_len(names)
            if (lengths > MAX_LABEL_CHARS).any():
                i = int(np.argmax(lengths > MAX_LABEL_CHARS))
                raise DataError(f"{name}, label_names[{i}]: a label of {int(lengths[i]):,} characters; a class "
                                f"label may have at most {MAX_LABEL_CHARS}")
        if codes.shape != (len(X),) or codes.dtype.kind not in "iu":
            raise DataError(f"{name}: label_codes must be one integer per beat ({len(X)})")
        if codes.min() < 0 or codes.max() >= len(names):
            raise DataError(f"{name}, beat {int(np.argmax((codes < 0) | (codes >= len(names)))) + 1}: "
                            "label code out of range")
        codes, label_names = tidy(codes, names.tolist())
    else:
        label_names = ()
    return Parsed(X=X, label_codes=codes, label_names=label_names, rows=np.arange(1, len(X) + 1, dtype=np.int64),
                  warnings=[])
