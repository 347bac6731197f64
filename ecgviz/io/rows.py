"""A beat file's data rows: blocks through the C parser, and line by line wherever a block needs explaining.

Each block of the data section (a few MiB, cut at a line end) is read by pandas' C engine when every check can be
made in bulk (see blocks.py); otherwise it is read line by line, _CHUNK rows at a time, and the first problem is
raised with its row, line and column. Either way the result is the same beats, so a file refused at line 1 costs
one block, and memory stays within the beats, the file's bytes and one block.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import NoReturn

import numpy as np

from ecgviz.errors import DataError
from ecgviz.io import blocks
from ecgviz.io.codes import tidy
from ecgviz.io.parsed import MAX_LABEL_CHARS, Parsed, is_number, show

_CHUNK = 2048  # rows converted per numpy call on the line-by-line path: bounds memory, keeps per-row work small
_QUOTED = re.compile(r"""\s*('(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*"|[^,'"]*?)\s*(,|$)""")


def _to_f32(values: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # overflow becomes inf, which the callers reject with a location
        return values.astype(np.float32)


def _floats(cells: np.ndarray) -> np.ndarray:
    """Text cells as float64, read as the explainer reads them: stripped of Unicode blanks, then float()."""
    try:
        return cells.astype(np.float64)
    except (ValueError, TypeError):  # numpy keeps blanks such as \x1c that str.strip() removes
        return np.vectorize(str.strip, otypes=[object])(cells).astype(np.float64)


def _num_label(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def _split_quoted(text: str) -> list[str] | None:
    out, pos = [], 0
    while True:
        m = _QUOTED.match(text, pos)
        if m is None:
            return None
        tok = m.group(1)
        if tok[:1] in ("'", '"'):
            tok = re.sub(r"\\(.)", r"\1", tok[1:-1])
        out.append(tok)
        if not m.group(2):
            return out
        pos = m.end()


class Rows:
    """Dense rows of len(columns) fields: some columns are samples, one may be the label."""

    def __init__(self, name: str, columns: list[str], samples: list[int], label: int | None, kind: str,
                 allowed: frozenset[str] = frozenset(), sep: str | None = ",", comments: str = "%") -> None:
        """`kind` is "nominal", "numeric", "text" or "auto" (numeric if every label is a number)."""
        self.name, self.columns, self.samples, self.label = name, columns, samples, label
        self.kind, self.allowed, self.sep, self.comments = kind, allowed, sep, comments
        self.table: dict[str, int] = {}  # each distinct label once; beats hold int32 codes into it
        self.n = 0

    def split(self, text: str) -> list[str] | None:
        """The fields of one stripped line (None: unbalanced quotes)."""
        if self.sep is None:
            return text.split()
        if self.sep == "," and ("'" in text or '"' in text):
            return _split_quoted(text)
        return text.split(self.sep)  # float() ignores surrounding blanks; labels are stripped separately

    def _too_wide(self, text: str) -> int:
        """Fields of an unquoted line whose count is wrong (0 otherwise): counted, so a huge line is never split."""
        if self.sep is None or (self.sep == "," and ("'" in text or '"' in text)):
            return 0
        count = text.count(self.sep) + 1
        return count if count != len(self.columns) else 0

    def fail(self, row: int, line: int, col: int | None, msg: str) -> DataError:
        """The error for 0-based data row `row` on file line `line`, column `col`."""
        where = f"{self.name}, row {row + 1} (line {line})"
        return DataError(f"{where}, {self.columns[col]}: {msg}" if col is not None else f"{where}: {msg}")

    def explain(self, row: int, line: int, text: str) -> None:
        """Raise the first problem in one row (called only once its chunk or block failed the bulk checks)."""
        if text.startswith("{"):
            raise self.fail(row, line, None, "sparse ARFF rows ({index value, ...}) are not supported; save it dense")
        if wide := self._too_wide(text):
            raise self.fail(row, line, None, f"{wide} values, but {len(self.columns)} columns are declared")
        fields = self.split(text)
        if fields is None:
            raise self.fail(row, line, None, "unbalanced quotes")
        if len(fields) != len(self.columns):
            raise self.fail(row, line, None, f"{len(fields)} values, but {len(self.columns)} columns are declared")
        fields = [f.strip() for f in fields]
        for c in self.samples:
            tok = fields[c]
            if tok == "?":
                raise self.fail(row, line, c, "missing value '?' (beats must be complete: fill or remove the row)")
            if not is_number(tok):
                raise self.fail(row, line, c, f"{show(tok)} is not a number" if tok else "empty value")
            if not np.isfinite(float(tok)):
                raise self.fail(row, line, c, f"{show(tok)} is not a finite number")
            if not np.isfinite(_to_f32(np.array([float(tok)]))[0]):
                raise self.fail(row, line, c, f"{show(tok)} is outside the float32 range (about ±3.4e38)")
        if self.label is not None:
            self._explain_label(row, line, fields[self.label])

    def _explain_label(self, row: int, line: int, tok: str) -> None:
        if tok in ("?", ""):
            raise self.fail(row, line, self.label, f"missing label {show(tok)}")
        if len(tok) > MAX_LABEL_CHARS:
            raise self.fail(row, line, self.label, f"label {show(tok)} is {len(tok):,} characters long; a class "
                                                   f"label may have at most {MAX_LABEL_CHARS}")
        if self.kind == "nominal" and tok not in self.allowed:
            values = ",".join(sorted(self.allowed))
            values = values if len(values) < 60 else values[:60] + "..."
            raise self.fail(row, line, self.label, f"label {show(tok)} is not one of the declared values {{{values}}}")
        if self.kind == "numeric" and not (is_number(tok) and np.isfinite(float(tok))):
            raise self.fail(row, line, self.label, f"label {show(tok)} is not a finite number")

    def _content(self, raw: bytes, pos: int, end: int, line: int, codec: str) -> Iterable[tuple[int, str]]:
        """(file line, stripped text) of each data row in raw[pos:end], whose first line is `line`."""
        for _, text in blocks.lines(raw, pos, end, codec):
            s = text.strip()
            if s and s[0] not in self.comments:
                yield line, s
            line += 1

    def read(self, raw: bytes, pos: int, line: int, codec: str) -> Parsed:
        """Every row from byte `pos` (file line `line`) on; DataError at the first bad one."""
        ns = len(self.samples)
        layout = blocks.Layout(len(self.columns), tuple(self.samples), self.label, self.sep, codec)
        # rows can be no more than the lines, nor than the bytes allow (each has every separator and a digit
        # per sample); untouched rows of this bound cost no memory, and the arrays shrink in place at the end
        bound = min(blocks.line_ends(raw, pos) + 1, (len(raw) - pos) // (len(self.columns) - 1 + ns) + 1)
        self.X = np.empty((bound, ns), dtype=np.float32)
        self.codes = np.empty(bound if self.label is not None else 0, dtype=np.int32)
        start, start_line, fast = pos, line, blocks.use_c_parser(len(raw) - pos)
        while pos < len(raw):
            first = pos == start
            stop = blocks.cut(raw, pos, blocks.FIRST_BYTES if first else None)
            block = raw[pos:stop]
            fast_block = fast and not first and len(block) >= blocks.FAST_MIN_BYTES
            got = blocks.numbers(block, layout) if fast_block else None
            if got is None or not self._take(*got, codec):
                self._slow(self._content(raw, pos, stop, line, codec))
            line += blocks.line_ends(block)
            pos = stop
        n = self.n
        self.X.resize((n, ns), refcheck=False)
        self.codes.resize((n if self.label is not None else 0,), refcheck=False)
        rows = np.arange(1, n + 1, dtype=np.int64)
        if self.label is None or n == 0:
            return Parsed(self.X, None if self.label is None else self.codes, (), rows, [])
        codes, names = self._finish_labels(self.codes, tuple(self.table), raw, start, start_line, codec)
        return Parsed(self.X, codes, names, rows, [])

    def _take(self, values: np.ndarray, labels: list[bytes] | None, codec: str) -> bool:
        """Store a block read by the C parser; False (nothing stored) when its labels need the line-by-line path."""
        k = len(values)
        if labels is not None:
            local: dict[bytes, int] = {}
            codes = np.fromiter((local.setdefault(b, len(local)) for b in labels), dtype=np.int32, count=k)
            names = [b.decode(codec).strip() for b in local]
            if names and (not self._labels_ok(names) or max(map(len, names)) > MAX_LABEL_CHARS):
                return False
            remap = np.array([self.table.setdefault(v, len(self.table)) for v in names], dtype=np.int32)
            self.codes[self.n : self.n + k] = remap[codes] if k else codes
        self.X[self.n : self.n + k] = values
        self.n += k
        return True

    def _slow(self, content: Iterable[tuple[int, str]]) -> None:
        """Rows line by line, _CHUNK at a time, checked in bulk; the first problem is raised with its place."""
        chunk: list[tuple[int, str]] = []
        for item in content:
            chunk.append(item)
            if len(chunk) == _CHUNK:
                self._chunk(chunk)
                chunk = []
        if chunk:
            self._chunk(chunk)

    def _chunk(self, chunk: Sequence[tuple[int, str]]) -> None:
        ncols = len(self.columns)
        part = [None if self._too_wide(t) else self.split(t) for _, t in chunk]
        if any(f is None or len(f) != ncols or f[0][:1] == "{" for f in part):
            self._explain_chunk(chunk)
        cells = np.array(part, dtype=object).reshape(len(part), ncols)
        try:
            vals = _to_f32(_floats(cells[:, self.samples]))
        except (ValueError, TypeError):
            self._explain_chunk(chunk)
        if not np.isfinite(vals).all():
            self._explain_chunk(chunk)
        k = len(chunk)
        if self.label is not None:
            labels = [s.strip() for s in cells[:, self.label].tolist()]
            if not self._labels_ok(labels) or max(map(len, labels)) > MAX_LABEL_CHARS:
                self._explain_chunk(chunk)
            self.codes[self.n : self.n + k] = [self.table.setdefault(v, len(self.table)) for v in labels]
        self.X[self.n : self.n + k] = vals
        self.n += k

    def _explain_chunk(self, chunk: Sequence[tuple[int, str]]) -> NoReturn:
        for j, (line, text) in enumerate(chunk):
            self.explain(self.n + j, line, text)
        raise DataError(f"{self.name}: unreadable data rows {self.n + 1}-{self.n + len(chunk)}")  # pragma: no cover

    def _labels_ok(self, chunk: Sequence[str]) -> bool:
        values = set(chunk)
        if "?" in values or "" in values:
            return False
        if self.kind == "nominal":
            return values <= self.allowed
        return self.kind != "numeric" or all(is_number(v) and np.isfinite(float(v)) for v in values)

    def _finish_labels(self, codes: np.ndarray, names: tuple[str, ...], raw: bytes, pos: int, line: int,
                       codec: str) -> tuple[np.ndarray, tuple[str, ...]]:
        """Codes into distinct label texts; numeric labels as canonical numbers (1.0 and 1 are both "1")."""
        if self.kind == "auto":
            self.kind = "numeric" if all(is_number(v) for v in names) else "text"
            if self.kind == "numeric" and not self._labels_ok(names):
                bad = [i for i, v in enumerate(names) if not self._labels_ok([v])]
                first = int(np.argmax(np.isin(codes, bad)))
                for row, (where, text) in enumerate(self._content(raw, pos, len(raw), line, codec)):
                    if row == first:
                        self.explain(row, where, text)
        if self.kind != "numeric":
            return codes, names
        return tidy(codes, [_num_label(float(v)) for v in names])
