"""Parsers for ARFF and UCR-style delimited text: raw bytes in, validated float32 beats out.

The header (ARFF declarations, or a text file's first line) is read line by line; the data rows go through
pandas' C parser in blocks, with a line-by-line reader that names the first bad row (rows.py). Nothing is split
into lines as a whole, so memory stays within the file's bytes, the beats and one block.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePath

import arff

from ecgviz.errors import DataError
from ecgviz.io import blocks
from ecgviz.io.parsed import LABEL_NAMES, MAX_COLUMNS, MAX_LABEL_CHARS, MAX_NAME_CHARS, MIN_LENGTH, Parsed, is_number
from ecgviz.io.parsed import show as _show
from ecgviz.io.rows import _CHUNK, Rows

__all__ = ["LABEL_NAMES", "MAX_COLUMNS", "MAX_LABEL_CHARS", "MAX_NAME_CHARS", "MIN_LENGTH", "_CHUNK", "DataError",
           "Parsed", "parse"]

_NUMERIC = {"NUMERIC", "REAL", "INTEGER"}
_TEXT_BYTES = bytes(range(32, 127)) + bytes(range(128, 256)) + b"\t\n\r\f"
_VALIDATE_BYTES = 1 << 20  # UTF-8 is checked this many bytes at a time, so no decoded copy of the file is kept
_ATTR = re.compile(r"""@attribute\s+('(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*"|\S+)\s+(.*)$""", re.IGNORECASE)
_LIAC_HINTS = {
    "BadAttributeName": "duplicate attribute name",
    "BadAttributeType": "unsupported attribute type (use numeric, real, integer, string, date or {values})",
    "BadAttributeFormat": "malformed @attribute declaration",
    "BadRelationFormat": "malformed @relation declaration (quote a name that contains spaces)",
    "BadLayout": "the header must be @relation, then @attribute lines, then @data",
}


@dataclass(frozen=True)
class _Text:
    """A file's bytes in `codec` (UTF-8 or Latin-1), its text starting at byte `start` (after a BOM)."""

    raw: bytes
    start: int
    codec: str

    def lines(self, pos: int | None = None) -> Iterator[tuple[int, int, str]]:
        """(byte offset of the line, offset after it, text) from `pos` on."""
        pos = self.start if pos is None else pos
        for end, text in blocks.lines(self.raw, pos, len(self.raw), self.codec):
            yield pos, end, text
            pos = end


def _valid_utf8(raw: bytes, start: int) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        for i in range(start, len(raw), _VALIDATE_BYTES):
            decoder.decode(raw[i : i + _VALIDATE_BYTES])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _decode(name: str, raw: bytes, notes: list[str]) -> _Text:
    if not raw or raw.isspace():
        raise DataError(f"{name}: the file is empty")
    utf16 = raw[:2] in (b"\xff\xfe", b"\xfe\xff")
    head = raw[:65536]
    if not utf16 and (b"\x00" in raw or len(head.translate(None, _TEXT_BYTES)) > len(head) // 100):
        raise DataError(f"{name}: binary data, not an ARFF, CSV or TSV text file")
    if utf16:
        try:
            return _Text(raw.decode("utf-16").encode("utf-8"), 0, "utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{name}: broken UTF-16 text ({exc.reason})") from None
    start = 3 if raw.startswith(codecs.BOM_UTF8) else 0
    if raw.isascii() or _valid_utf8(raw, start):
        return _Text(raw, start, "utf-8")
    try:
        raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
    notes.append(f"{name}: not valid UTF-8 (first bad byte on line {line}); read as Latin-1")
    return _Text(raw, 0, "latin-1")


def _arff_header(name: str, text: _Text) -> tuple[list[tuple[str, object]], set[str], int, int]:
    """Attributes, date attribute names, the @data line's number and the byte offset after it."""
    header: list[str] = []
    seen: list[str] = []  # each header line as liac-arff's messages quote it ("" for blank and comment lines)
    dates: set[str] = set()
    where: list[int] = []  # file line of each @attribute, for messages about its declaration
    for i, (_, after, line) in enumerate(text.lines()):
        s = line.strip()
        word = s.split(None, 1)[0].lower() if s else ""
        if word == "@data":
            data = after
            break
        seen.append("" if not s or s[0] == "%" else s)
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
        quoted = seen[line - 1] if line <= len(seen) else s
        raise DataError(f"{name}, line {line}: {hint}: {_show(quoted)}") from None
    except (ValueError, TypeError, IndexError, KeyError) as exc:  # liac-arff lets a few through unwrapped
        raise DataError(f"{name}: unreadable ARFF header ({exc})") from None
    for (attr, kind), line in zip(attrs, where, strict=False):
        if isinstance(kind, list) and (None in kind or "" in kind):
            raise DataError(f"{name}, line {line}: empty value in the nominal declaration of {attr!r}")
    return attrs, dates, i + 1, data


def _parse_arff(name: str, text: _Text, notes: list[str]) -> Parsed:
    attrs, dates, at, pos = _arff_header(name, text)
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
    ltype = attrs[label][1] if label is not None else "STRING"
    kind = "nominal" if isinstance(ltype, list) else "numeric" if ltype in _NUMERIC else "text"
    allowed = frozenset(ltype) if isinstance(ltype, list) else frozenset()
    rows = Rows(name, [f"attribute {n}" for n in names], samples, label, kind, allowed, sep=",", comments="%")
    parsed = rows.read(text.raw, pos, at + 1, text.codec)
    if not len(parsed.X):
        raise DataError(f"{name}: no data rows after @data (line {at})")
    parsed.warnings = notes
    return parsed


def _count_fields(first: str, sep: str | None) -> int:
    # counted without splitting, so a line of millions of fields is refused before it is split
    return first.count(sep) + 1 if sep is not None else sum(1 for _ in re.finditer(r"\S+", first))


def _parse_delimited(name: str, text: _Text, pos: int, line: int, first: str, notes: list[str]) -> Parsed:
    sep = "\t" if "\t" in first else "," if "," in first else None
    width = _count_fields(first, sep)
    if width > MAX_COLUMNS + 1:
        raise DataError(f"{name}, line {line}: {width:,} columns; a beat may have at most {MAX_COLUMNS:,} samples")
    head = first.split() if sep is None else [f.strip().strip("'\"") for f in first.split(sep)]
    if len(head) - 1 < MIN_LENGTH:
        raise DataError(f"{name}, line {line}: {len(head)} column(s); expected the class label "
                        f"then at least {MIN_LENGTH} samples")
    header = head[0].lower() in LABEL_NAMES or not any(is_number(f) for f in head[1:])
    if header:
        notes.append(f"{name}: line {line} read as a column header: {_show(first)}")
        pos, line = next(text.lines(pos))[1], line + 1
    columns = [f"column {c + 1}" for c in range(len(head))]
    rows = Rows(name, columns, list(range(1, len(head))), 0, "auto", sep=sep, comments="%#")
    parsed = rows.read(text.raw, pos, line, text.codec)
    if header and not len(parsed.X):
        raise DataError(f"{name}: a header line but no data rows")
    parsed.warnings = notes
    return parsed


def parse(name: str, raw: bytes) -> Parsed:
    """Parse one file's bytes; the format is sniffed from the content (first line '@...' means ARFF)."""
    notes: list[str] = []
    text = _decode(name, raw, notes)
    found = next(((pos, number, s) for number, (pos, _, line) in enumerate(text.lines(), start=1)
                  if (s := line.strip()) and s[0] not in "%#"), None)
    if found is None:
        raise DataError(f"{name}: no content (only blank or comment lines)")
    pos, number, first = found
    if first.startswith("@"):
        return _parse_arff(name, text, notes)
    if PurePath(name).suffix.lower() == ".arff":
        if not all(is_number(m.group()) for m in re.finditer(r"[^,\t ]+", first)):
            raise DataError(f"{name}: not an ARFF file (no @relation/@attribute header); "
                            f"first line is {_show(first)}")
        notes.append(f"{name}: no ARFF header; read as UCR-style text with the class label first")
    return _parse_delimited(name, text, pos, number, first, notes)
