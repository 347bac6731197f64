"""Per-beat text (labels, file names) as int32 codes into a table of names: memory per distinct value, not per beat.

A fixed-width numpy text array costs 4 bytes x the longest value for every beat (one 5,000-character label on
40,000 beats is 800 MB); codes cost 4 bytes a beat, and each distinct text is stored once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

__all__ = ["as_text", "decode", "encode", "mask_of", "tidy"]


def encode(values: Iterable[object] | np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """(n,) int32 codes and the distinct values as text, in order of first appearance."""
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise ValueError(f"expected a 1-D array of values, got shape {values.shape}")
        if values.dtype.kind == "U":  # already fixed width: let numpy sort it in C
            uniq, first, inverse = np.unique(values, return_index=True, return_inverse=True)
            order = np.argsort(first, kind="stable")
            rank = np.empty(len(order), dtype=np.int32)
            rank[order] = np.arange(len(order), dtype=np.int32)
            return rank[inverse.reshape(-1)], tuple(str(u) for u in uniq[order])
        values = values.tolist()
    table: dict[object, int] = {}
    items = list(values) if not isinstance(values, list) else values
    codes = np.fromiter((table.setdefault(v, len(table)) for v in items), dtype=np.int32, count=len(items))
    return tidy(codes, tuple(table))


def tidy(codes: np.ndarray, names: Iterable[object],
         key: Callable[[str], object] | None = None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Codes into a table of distinct, used names (as text): sorted by `key`, else in the table's order.

    Names equal as text are merged (1 and "1"); unused names are dropped. Codes are copied only when they change.
    """
    codes = np.asarray(codes)
    texts = [str(v) for v in names]
    if codes.ndim != 1 or codes.dtype.kind not in "iu":
        raise ValueError("codes must be a 1-D integer array")
    if len(codes) and (int(codes.min()) < 0 or int(codes.max()) >= len(texts)):
        raise ValueError(f"codes must index a table of {len(texts)} names")
    codes = codes.astype(np.int32, copy=False)
    used = np.bincount(codes, minlength=len(texts)) > 0
    kept = list(dict.fromkeys(t for t, u in zip(texts, used.tolist(), strict=True) if u))
    if key is not None:
        kept.sort(key=key)
    where = {t: i for i, t in enumerate(kept)}
    lut = np.array([where.get(t, -1) for t in texts], dtype=np.int32)
    if not np.array_equal(lut, np.arange(len(texts), dtype=np.int32)):
        codes = lut[codes]
    return codes, tuple(kept)


def decode(codes: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """(n,) read-only object array of str sharing one string per distinct value (8 bytes a beat, never fixed width)."""
    table = np.empty(len(names), dtype=object)
    table[:] = names
    out = table[codes]
    out.flags.writeable = False
    return out


def as_text(values: Iterable[object] | np.ndarray) -> np.ndarray:
    """(n,) read-only object array of the values as str, one shared string per distinct value."""
    return decode(*encode(values))


def mask_of(values: Iterable[object] | np.ndarray, wanted: Iterable[object]) -> np.ndarray:
    """(n,) bool: which values are (as text) one of `wanted`, compared on codes."""
    codes, names = encode(values)
    wanted = {str(w) for w in wanted}
    return np.isin(codes, [i for i, name in enumerate(names) if name in wanted])
