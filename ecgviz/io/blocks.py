"""A beat file's bytes in bounded pieces: lines, blocks cut at line ends, and a block's numbers by a C parser.

The fast path reads a block with pandas' C engine only when every check the line-by-line reader makes can be
made in bulk: the block holds no byte that reader treats specially (quotes, comment marks, sparse rows, odd
whitespace), every non-empty line has exactly the declared number of fields (counted here with numpy, since the
C engine pads short lines and drops extra fields), and every number parses and is finite as float32. Otherwise
it answers None and the caller reads the block line by line, which explains the first problem exactly.
"""

from __future__ import annotations

import csv
import functools
import io
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

BLOCK_BYTES = 4 << 20  # per C-parser call: its fixed cost (~2 ms) stays small, its buffers stay a few MiB
FIRST_BYTES = 64 << 10  # the first rows go line by line: a file refused at line 1 costs this, and no pandas import
FAST_MIN_BYTES = 64 << 10  # smaller blocks go line by line too: the C parser's set-up costs more than it saves
# Importing pandas (once per process, ~70 MiB) costs about as long as reading 6 MiB line by line, which runs at
# ~1/12 of the C parser's speed (2-core machine); a smaller file in a process without pandas goes line by line.
FAST_FILE_BYTES = 8 << 20
_EOL = re.compile(rb"\r\n|\r|\n")
_PRINTABLE = bytes(range(32, 127)) + b"\t\n\r"
_SPECIAL = b"{%#"  # sparse rows and comment lines: the line-by-line reader's business
# bytes each separator's fast path may meet; anything else sends the block line by line
_PLAIN = {
    ",": bytes(b for b in _PRINTABLE + bytes(range(128, 256)) if b not in _SPECIAL + b"'\""),  # quotes: unquoted
    "\t": bytes(b for b in _PRINTABLE + bytes(range(128, 256)) if b not in _SPECIAL),
    None: bytes(b for b in _PRINTABLE if b not in _SPECIAL),  # str.split() also splits on Unicode spaces
}


@dataclass(frozen=True)
class Layout:
    """Where a data row's values are: `ncols` fields split by `sep` (None: runs of blanks)."""

    ncols: int
    samples: tuple[int, ...]  # fields holding the samples, ascending
    label: int | None
    sep: str | None
    codec: str  # "utf-8" or "latin-1"


def lines(raw: bytes, pos: int, end: int, codec: str) -> Iterator[tuple[int, str]]:
    """(offset after the line, its text) for each line of raw[pos:end]; \\r\\n, \\r and \\n all end a line."""
    for m in _EOL.finditer(raw, pos, end):
        yield m.end(), raw[pos : m.start()].decode(codec)
        pos = m.end()
    if pos < end:
        yield end, raw[pos:end].decode(codec)


def cut(raw: bytes, pos: int, size: int | None = None) -> int:
    """End of the block that starts at `pos`: just after the first line end at or past pos + size (BLOCK_BYTES)."""
    size = BLOCK_BYTES if size is None else size
    if pos + size >= len(raw):
        return len(raw)
    m = _EOL.search(raw, pos + size)
    return len(raw) if m is None else m.end()


def use_c_parser(nbytes: int) -> bool:
    """Whether a data section of `nbytes` is worth the C parser (pandas already imported, or a big file)."""
    return nbytes >= FAST_FILE_BYTES or "pandas" in sys.modules


def line_ends(raw: bytes, pos: int = 0, end: int | None = None) -> int:
    """How many lines end in raw[pos:end]."""
    end = len(raw) if end is None else end
    if raw.find(b"\r", pos, end) < 0:
        return raw.count(b"\n", pos, end)
    return raw.count(b"\n", pos, end) + raw.count(b"\r", pos, end) - raw.count(b"\r\n", pos, end)


def _spans(a: np.ndarray, layout: Layout) -> tuple[int, np.ndarray, np.ndarray] | None:
    """Rows (non-empty lines) and the label's (start, end) byte offsets per row; None if a field count is off."""
    breaks = np.flatnonzero(a == 10)
    starts = np.concatenate(([0], breaks + 1))
    ends = np.concatenate((breaks, [len(a)]))
    keep = ends > starts
    starts, ends = starts[keep], ends[keep]
    k = layout.label if layout.label is not None else 0
    if layout.sep is not None:
        sep = np.flatnonzero(a == ord(layout.sep))
        counts = np.searchsorted(sep, ends) - np.searchsorted(sep, starts)
        if (counts != layout.ncols - 1).any():
            return None
        inner = sep.reshape(len(starts), layout.ncols - 1)
        first = starts if k == 0 else inner[:, k - 1] + 1
        return len(starts), first, ends if k == layout.ncols - 1 else inner[:, k]
    blank = (a == 32) | (a == 9) | (a == 10)
    field = ~blank
    first = np.flatnonzero(field & np.concatenate(([True], blank[:-1])))
    counts = np.searchsorted(first, ends) - np.searchsorted(first, starts)
    if (counts != layout.ncols).any():
        return None
    last = np.flatnonzero(field & np.concatenate((blank[1:], [True]))) + 1
    return len(starts), first.reshape(-1, layout.ncols)[:, k], last.reshape(-1, layout.ncols)[:, k]


@functools.cache
def _precision() -> dict:
    import pandas as pd

    major, minor = (int(x) for x in re.findall(r"\d+", pd.__version__)[:2])
    # from pandas 3.1 every converter rounds correctly; before, only "round_trip" matches Python's float()
    return {} if (major, minor) >= (3, 1) else {"float_precision": "round_trip"}


def numbers(block: bytes, layout: Layout) -> tuple[np.ndarray, list[bytes] | None] | None:
    """The block's samples (rows, T) float32 and raw label bytes per row, or None when it must go line by line."""
    if block.translate(None, _PLAIN[layout.sep]):
        return None
    # the C parser reads true and false (any case) as 1 and 0, even as float64, where float() refuses them
    if any(c in block for c in (b"r", b"R", b"l", b"L")) and any(w in block.lower() for w in (b"true", b"false")):
        return None
    if b"\r" in block:
        block = block.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    spans = _spans(np.frombuffer(block, dtype=np.uint8), layout)
    if spans is None:
        return None
    rows, first, last = spans
    if not rows:
        return np.empty((0, len(layout.samples)), dtype=np.float32), [] if layout.label is not None else None
    import pandas as pd

    try:
        frame = pd.read_csv(io.BytesIO(block), sep=layout.sep or r"\s+", header=None, names=range(layout.ncols),
                            usecols=layout.samples, dtype=np.float64, na_filter=False, quoting=csv.QUOTE_NONE,
                            index_col=False, engine="c", encoding=layout.codec, low_memory=False, **_precision())
    except (ValueError, TypeError, OverflowError, UnicodeDecodeError):  # pandas' parser errors are ValueErrors
        return None
    if len(frame) != rows:
        return None
    with np.errstate(over="ignore"):  # overflow becomes inf, which sends the block line by line
        values = frame.to_numpy(dtype=np.float64).astype(np.float32)  # usecols keeps the file's column order
    if not np.isfinite(values).all():
        return None
    if layout.label is None:
        return values, None
    return values, [block[s:e] for s, e in zip(first.tolist(), last.tolist(), strict=True)]
