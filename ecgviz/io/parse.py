"""Parsers for ARFF and UCR-style delimited text: raw bytes in, validated float32 beats out."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import NoReturn

import arff
import numpy as np

from ecgviz.errors import DataError
from ecgviz.io.codes import tidy

MIN_LENGTH = 3
MAX_COLUMNS = 100_000  # samples per beat (and other columns): minutes of ECG, far beyond any heartbeat
MAX_LABEL_CHARS = 100  # a class label is a short name; a longer one is shown in messages, legends and cards
MAX_NAME_CHARS = 255  # a file name (most file systems allow 255); it is shown with every beat and stored once
LABEL_NAMES = ("target", "class", "label")
_NUMERIC = {"NUMERIC", "REAL", "INTEGER"}
_CHUNK = 2048  # rows converted per numpy call: bounds memory on big files, keeps per-row Python work small
_TEXT_BYTES = bytes(range(32, 127)) + bytes(range(128, 256)) + b"\t\n\r\f"
_QUOTED = re.compile(r"""\s*('(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*"|[^,'"]*?)\s*(,|$)""")
_ATTR = re.compile(r"""@attribute\s+('(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*"|\S+)\s+(.*)$""", re.IGNORECASE)
_LIAC_HINTS = {
    "BadAttributeName": "duplicate attribute name",
    "BadAttributeType": "unsupported attribute type (use numeric, real, integer, string, date or {values})",
    "BadAttributeFormat": "malformed @attribute declaration",
    "BadRelationFormat": "malformed @relation declaration (quote a name that contains spaces)",
    "BadLayout": "the header must be @relation, then @attribute lines, then @data",
}


@dataclass
class Parsed:
    """One file's beats: X (n, T) float32, labels as (n,) int32 codes into label_names (or None), 1-based rows."""

    X: np.ndarray
    label_codes: np.ndarray | None
    label_names: tuple[str, ...]
    rows: np.ndarray
    warnings: list[str]


def _show(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _decode(name: str, raw: bytes, notes: list[str]) -> list[str]:
    if not raw or raw.isspace():
        raise DataError(f"{name}: the file is empty")
    utf16 = raw[:2] in (b"\xff\xfe", b"\xfe\xff")
    head = raw[:65536]
    if not utf16 and (b"\x00" in raw or len(head.translate(None, _TEXT_BYTES)) > len(head) // 100):
        raise DataError(f"{name}: binary data, not an ARFF, CSV or TSV text file")
    try:
        text = raw.decode("utf-16" if utf16 else "utf-8-sig")
    except UnicodeDecodeError as exc:
        if utf16:
            raise DataError(f"{name}: broken UTF-16 text ({exc.reason})") from None
        text = raw.decode("latin-1")
        line = raw.count(b"\n", 0, exc.start) + 1
        notes.append(f"{name}: not valid UTF-8 (first bad byte on line {line}); read as Latin-1")
    if "\r" in text:  # skip two full-size copies for files that already use \n
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.split("\n")


def _to_f32(values: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # overflow becomes inf, which the callers reject with a location
        return values.astype(np.float32)


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


@dataclass
class _Table:
    """Dense rows of `ncols` fields: some columns are samples, one may be the label."""

    name: str
    texts: list[str]
    where: list[int]
    columns: list[str]
    samples: list[int]
    label: int | None
    kind: str  # "nominal", "numeric", "text" or "auto" (numeric if every label is a number)
    allowed: frozenset[str] = frozenset()
    sep: str | None = ","

    def split(self, text: str) -> list[str] | None:
        if self.sep is None:
            return text.split()
        if self.sep == "," and ("'" in text or '"' in text):
            return _split_quoted(text)
        return text.split(self.sep)  # float() ignores surrounding blanks; labels are stripped separately

    def fail(self, j: int, col: int | None, msg: str) -> DataError:
        where = f"{self.name}, row {j + 1} (line {self.where[j]})"
        return DataError(f"{where}, {self.columns[col]}: {msg}" if col is not None else f"{where}: {msg}")

    def explain(self, j: int) -> None:
        """Raise the first problem in row j (called only once a chunk failed its fast checks)."""
        text = self.texts[j]
        if text.startswith("{"):
            raise self.fail(j, None, "sparse ARFF rows ({index value, ...}) are not supported; save it dense")
        fields = self.split(text)
        if fields is None:
            raise self.fail(j, None, "unbalanced quotes")
        if len(fields) != len(self.columns):
            raise self.fail(j, None, f"{len(fields)} values, but {len(self.columns)} columns are declared")
        fields = [f.strip() for f in fields]
        for c in self.samples:
            tok = fields[c]
            if tok == "?":
                raise self.fail(j, c, "missing value '?' (beats must be complete: fill or remove the row)")
            if not _is_number(tok):
                raise self.fail(j, c, f"{_show(tok)} is not a number" if tok else "empty value")
            if not np.isfinite(float(tok)):
                raise self.fail(j, c, f"{_show(tok)} is not a finite number")
            if not np.isfinite(_to_f32(np.array([float(tok)]))[0]):
                raise self.fail(j, c, f"{_show(tok)} is outside the float32 range (about ±3.4e38)")
        if self.label is not None:
            tok = fields[self.label]
            if tok in ("?", ""):
                raise self.fail(j, self.label, f"missing label {_show(tok)}")
            if len(tok) > MAX_LABEL_CHARS:
                raise self.fail(j, self.label, f"label {_show(tok)} is {len(tok):,} characters long; a class "
                                               f"label may have at most {MAX_LABEL_CHARS}")
            if self.kind == "nominal" and tok not in self.allowed:
                values = ",".join(sorted(self.allowed))
                values = values if len(values) < 60 else values[:60] + "..."
                raise self.fail(j, self.label, f"label {_show(tok)} is not one of the declared values {{{values}}}")
            if self.kind == "numeric" and not (_is_number(tok) and np.isfinite(float(tok))):
                raise self.fail(j, self.label, f"label {_show(tok)} is not a finite number")

    def run(self, notes: list[str]) -> Parsed:
        """Convert every row, checking each chunk in bulk and explaining the first failure."""
        n = len(self.texts)
        X = np.empty((n, len(self.samples)), dtype=np.float32)
        # each distinct label is kept once (table); beats hold int32 codes into it
        codes = np.empty(n if self.label is not None else 0, dtype=np.int32)
        table: dict[str, int] = {}
        for start in range(0, n, _CHUNK):
            part = [self.split(t) for t in self.texts[start : start + _CHUNK]]
            if any(f is None or len(f) != len(self.columns) or f[0][:1] == "{" for f in part):
                self._explain_chunk(start, len(part))
            cells = np.array(part, dtype=object).reshape(len(part), len(self.columns))
            try:
                vals = _to_f32(cells[:, self.samples].astype(np.float64))
            except (ValueError, TypeError):
                self._explain_chunk(start, len(part))
            if not np.isfinite(vals).all():
                self._explain_chunk(start, len(part))
            X[start : start + len(part)] = vals
            if self.label is not None:
                chunk = [s.strip() for s in cells[:, self.label].tolist()]
                if not self._labels_ok(chunk) or max(map(len, chunk)) > MAX_LABEL_CHARS:
                    self._explain_chunk(start, len(part))
                codes[start : start + len(part)] = [table.setdefault(v, len(table)) for v in chunk]
        rows = np.arange(1, n + 1, dtype=np.int64)
        if self.label is None:
            return Parsed(X, None, (), rows, notes)
        return Parsed(X, *self._finish_labels(codes, tuple(table)), rows, notes)

    def _explain_chunk(self, start: int, count: int) -> NoReturn:
        for j in range(start, start + count):
            self.explain(j)
        raise DataError(f"{self.name}: unreadable data rows {start + 1}-{start + count}")  # pragma: no cover

    def _labels_ok(self, chunk: Sequence[str]) -> bool:
        values = set(chunk)
        if "?" in values or "" in values:
            return False
        if self.kind == "nominal":
            return values <= self.allowed
        return self.kind != "numeric" or all(_is_number(v) and np.isfinite(float(v)) for v in values)

    def _finish_labels(self, codes: np.ndarray, names: tuple[str, ...]) -> tuple[np.ndarray, tuple[str, ...]]:
        """Codes into distinct label texts; numeric labels as canonical numbers (1.0 and 1 are both "1")."""
        if self.kind == "auto":
            self.kind = "numeric" if all(_is_number(v) for v in names) else "text"
            if self.kind == "numeric" and not self._labels_ok(names):
                for j in range(len(codes)):
                    self.explain(j)
        if self.kind != "numeric":
            return codes, names
        return tidy(codes, [_num_label(float(v)) for v in names])


def _content(lines: Sequence[str], start: int, comments: str) -> tuple[list[str], list[int]]:
    texts, where = [], []
    for i in range(start, len(lines)):
        s = lines[i].strip()
        if s and s[0] not in comments:
            texts.append(s)
            where.append(i + 1)
    return texts, where


def _arff_header(name: str, lines: list[str]) -> tuple[list[tuple[str, object]], set[str], int]:
    header: list[str] = []
    dates: set[str] = set()
    where: list[int] = []  # file line of each @attribute, for messages about its declaration
    for i, line in enumerate(lines):
        s = line.strip()
        word = s.split(None, 1)[0].lower() if s else ""
        if word == "@data":
            break
        if not s or s[0] == "%":
            header.append("%")  # keeps line numbers aligned with the file for liac-arff's messages
        elif word == "@attribute" and (m := _ATTR.match(s)):
            kind = m.group(2).strip().lower()
            if kind.startswith("relational"):
                raise DataError(f"{name}, line {i + 1}: relational (multi-instance) attribute "
                                f"{m.group(1)} is not supported; store one channel per file")
            if kind.startswith("date"):
                dates.add(m.group(1).strip("'\""))
            if re.fullmatch(r"\{[\s,]*\}", kind):
                raise DataError(f"{name}, line {i + 1}: nominal attribute {m.group(1)} declares no values")
            where.append(i + 1)
            if len(where) > MAX_COLUMNS:
                raise DataError(f"{name}, line {i + 1}: more than {MAX_COLUMNS:,} attributes declared; "
                                f"a beat may have at most {MAX_COLUMNS:,} samples")
            header.append(f"@attribute {m.group(1)} {'string' if kind.startswith('date') else m.group(2)}")
        elif word == "@relation" and len(s.split(None, 1)) == 2:
            header.append("@relation " + s.split(None, 1)[1])
        elif word in ("@relation", "@attribute"):
            raise DataError(f"{name}, line {i + 1}: malformed {word} declaration "
                            f"(expected '{word} <name>{' <type>' if word == '@attribute' else ''}'): {_show(s)}")
        else:
            raise DataError(f"{name}, line {i + 1}: unexpected text in the ARFF header: {_show(s)}")
    else:
        raise DataError(f"{name}: no @data line, so the file has no data section")
    if not any(h.startswith("@attribute") for h in header):
        raise DataError(f"{name}: the header declares no attributes")
    try:
        attrs = arff.loads("\n".join(header) + "\n@data\n")["attributes"]
    except arff.ArffException as exc:
        line = exc.line if 0 < exc.line <= len(header) else i + 1
        hint = _LIAC_HINTS.get(type(exc).__name__, str(exc))
        raise DataError(f"{name}, line {line}: {hint}: {_show(lines[line - 1].strip())}") from None
    except (ValueError, TypeError, IndexError, KeyError) as exc:  # liac-arff lets a few through unwrapped
        raise DataError(f"{name}: unreadable ARFF header ({exc})") from None
    for (attr, kind), line in zip(attrs, where, strict=False):
        if isinstance(kind, list) and (None in kind or "" in kind):
            raise DataError(f"{name}, line {line}: empty value in the nominal declaration of {attr!r}")
    return attrs, dates, i


def _parse_arff(name: str, lines: list[str], notes: list[str]) -> Parsed:
    attrs, dates, at = _arff_header(name, lines)
    names = [a[0] for a in attrs]
    label = next((i for i, (n, t) in enumerate(attrs) if n.lower() in LABEL_NAMES and n not in dates), None)
    if label is None and isinstance(attrs[-1][1], list):
        label = len(attrs) - 1
    samples = [i for i, (_, t) in enumerate(attrs) if isinstance(t, str) and t in _NUMERIC and i != label]
    used = {*samples, label}  # a set: one lookup per attribute keeps a wide header linear
    ignored = [f"{n} ({'date' if n in dates else 'nominal' if isinstance(t, list) else t.lower()})"
               for i, (n, t) in enumerate(attrs) if i not in used]
    if ignored:
        notes.append(f"{name}: ignored non-numeric attribute(s): {', '.join(ignored)}")
    if len(samples) < MIN_LENGTH:
        what = "no numeric sample attributes" if not samples else f"only {len(samples)} numeric attribute(s)"
        raise DataError(f"{name}: {what}; a beat needs at least {MIN_LENGTH} samples")
    texts, where = _content(lines, at + 1, "%")
    if not texts:
        raise DataError(f"{name}: no data rows after @data (line {at + 1})")
    ltype = attrs[label][1] if label is not None else "STRING"
    kind = "nominal" if isinstance(ltype, list) else "numeric" if ltype in _NUMERIC else "text"
    allowed = frozenset(ltype) if isinstance(ltype, list) else frozenset()
    return _Table(name, texts, where, [f"attribute {n}" for n in names], samples, label, kind, allowed).run(notes)


def _parse_delimited(name: str, lines: list[str], notes: list[str]) -> Parsed:
    texts, where = _content(lines, 0, "%#")
    first = texts[0]
    sep = "\t" if "\t" in first else "," if "," in first else None
    head = first.split() if sep is None else [f.strip().strip("'\"") for f in first.split(sep)]
    if len(head) > MAX_COLUMNS + 1:
        raise DataError(f"{name}, line {where[0]}: {len(head):,} columns; a beat may have at most "
                        f"{MAX_COLUMNS:,} samples")
    if len(head) - 1 < MIN_LENGTH:
        raise DataError(f"{name}, line {where[0]}: {len(head)} column(s); expected the class label "
                        f"then at least {MIN_LENGTH} samples")
    if head[0].lower() in LABEL_NAMES or not any(_is_number(f) for f in head[1:]):
        notes.append(f"{name}: line {where[0]} read as a column header: {_show(first)}")
        texts, where = texts[1:], where[1:]
        if not texts:
            raise DataError(f"{name}: a header line but no data rows")
    columns = [f"column {c + 1}" for c in range(len(head))]
    return _Table(name, texts, where, columns, list(range(1, len(head))), 0, "auto", sep=sep).run(notes)


def parse(name: str, raw: bytes) -> Parsed:
    """Parse one file's bytes; the format is sniffed from the content (first line '@...' means ARFF)."""
    notes: list[str] = []
    lines = _decode(name, raw, notes)
    first = next((s for s in (ln.strip() for ln in lines) if s and s[0] not in "%#"), None)
    if first is None:
        raise DataError(f"{name}: no content (only blank or comment lines)")
    if first.startswith("@"):
        return _parse_arff(name, lines, notes)
    if PurePath(name).suffix.lower() == ".arff":
        fields = re.split(r"[,\t ]+", first)
        if not all(_is_number(f) for f in fields if f):
            raise DataError(f"{name}: not an ARFF file (no @relation/@attribute header); "
                            f"first line is {_show(first)}")
        notes.append(f"{name}: no ARFF header; read as UCR-style text with the class label first")
    return _parse_delimited(name, lines, notes)
