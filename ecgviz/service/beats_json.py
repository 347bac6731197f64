"""The /score body read as it arrives: ``{"beats": [[numbers], ...], "threshold": number}``, checked as it comes.

A general JSON parser first turns the whole body into Python objects (a 32 MiB body of one beat of zeros became
16.7 million Python floats, over a gigabyte, before its length was looked at). This reader knows the one shape a
request may have: it counts each beat's samples (its commas, in C) while its text arrives and refuses a beat as
soon as it holds more samples than the model's beats, or more bytes than such a beat can need, and the request as
soon as it holds more beats than allowed. Only a complete beat of the right length is parsed (pydantic's JSON
parser, one beat at a time: at most a beat's worth of Python floats exist at once) and copied into one flat
float32 array. Refusals name the place (beat and sample index) and never repeat what the client sent.
"""

from __future__ import annotations

import json
import re

import numpy as np
from pydantic_core import from_json

# One JSON number, or the NaN/Infinity that Python's json.dumps writes (refused later, with a clearer message).
_NUMBER = rb"(?:-?+(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?+(?:[eE][+-]?+[0-9]++)?+|NaN|-?+Infinity)"
_BLANK = rb"[ \t\r\n]*+"
_ONE_NUMBER = re.compile(_BLANK + _NUMBER + _BLANK)
_NUMBER_TYPES = {float, int}  # what the parser gives for JSON numbers (bool is a type of its own)
_NUMBER_BYTES = b"0123456789+-.eE,NaInfity \t\r\n"  # all a beat of numbers can hold
_WS = b" \t\r\n"
_VALUE_START = b'{["tfn-0123456789'  # the first byte of any JSON value
# Bytes a sample may take, separators and indentation included: a float64 repr is at most 24 characters, and a
# pretty-printed beat (one sample per line, indented) ~35; a beat longer than this per sample is refused unread.
MAX_BYTES_PER_SAMPLE = 64
_MAX_KEY_BYTES = 32  # longer than any field name: an unknown key, refused without being read to its end
_MAX_SCALAR_BYTES = 64  # the threshold's text
FIELDS = ("beats", "threshold")
_NEED = object()  # a state's answer when the bytes so far do not settle what comes next


class Refused(Exception):
    """The request is refused: `status` (400 not JSON, 413 too much, 422 not valid beats) and a one-line `detail`."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


class BeatsReader:
    """Feed the body's bytes in pieces (`feed`), then `close()` for the beats (n, seq_len) float32 and threshold."""

    def __init__(self, seq_len: int, max_beats: int):
        self.seq_len, self.max_beats = int(seq_len), int(max_beats)
        self._buf = bytearray()
        self._pos = 0  # next unread byte of _buf
        self._base = 0  # offset in the body of _buf[0]
        self._line, self._line_start = 1, 0  # line number and body offset of that line's start, before _buf
        self._state = self._object_start
        self._key: str | None = None
        self._seen: set[str] = set()
        self._after_comma = False
        self._beats = np.empty((0, self.seq_len), dtype=np.float32)
        self._n = 0  # beats read
        self._row_start = self._row_scan = self._row_commas = 0
        self.threshold: float | None = None

    # -- driving ---------------------------------------------------------------------------------------------
    def feed(self, chunk: bytes) -> None:
        """Read the next piece of the body; raises Refused as soon as the request cannot be valid."""
        self._buf += chunk
        while self._state(final=False) is not _NEED:
            pass
        self._compact()

    def close(self) -> tuple[np.ndarray, float | None]:
        """The end of the body: the beats read (n, seq_len) float32 and the threshold (None: not given)."""
        while self._state(final=True) is not _NEED:
            pass
        if self._state != self._trailing:
            self._syntax("EOF while parsing")
        if "beats" not in self._seen:  # at the end of the object every key seen had its value read
            raise Refused(422, "beats: Field required")
        if self._n == 0:
            raise Refused(422, "beats: no beats given")
        return self._beats[: self._n], self.threshold

    # -- positions and errors --------------------------------------------------------------------------------
    def _compact(self) -> None:
        """Drop the bytes already read (a beat still arriving is kept), counting their lines for messages."""
        keep = self._row_start if self._state == self._row else self._pos
        if keep < 2**16:
            return
        gone = self._buf[:keep]
        if (lines := gone.count(b"\n")) > 0:
            self._line += lines
            self._line_start = self._base + gone.rfind(b"\n") + 1
        del self._buf[:keep]
        self._base += keep
        self._pos -= keep
        if self._state == self._row:
            self._row_start -= keep
            self._row_scan -= keep

    def _where(self, at: int) -> str:
        """'line L column C' of offset `at` in _buf."""
        before = self._buf[:at]
        line = self._line + before.count(b"\n")
        start = self._base + before.rfind(b"\n") + 1 if b"\n" in before else self._line_start
        return f"line {line} column {self._base + at - start + 1}"

    def _syntax(self, what: str, at: int | None = None) -> None:
        raise Refused(400, f"body is not valid JSON: {what} at {self._where(self._pos if at is None else at)}")

    def _next(self, final: bool) -> int | object:
        """The next non-blank byte (not consumed), or _NEED; at the end of the body, a syntax error."""
        n = len(self._buf)
        while self._pos < n and self._buf[self._pos] in _WS:
            self._pos += 1
        if self._pos < n:
            return self._buf[self._pos]
        if final:
            self._syntax("EOF while parsing a value")
        return _NEED

    # -- states: each reads what it can and moves on, or answers _NEED ---------------------------------------
    def _expect_open(self, final: bool, char: bytes, refusal: str, next_state):
        """Read the `char` that opens an object or list, then go on to `next_state`. Any other JSON value is the
        wrong shape of request (422 with `refusal`); anything else is not JSON (400)."""
        c = self._next(final)
        if c is _NEED:
            return _NEED
        if c != ord(char):
            if c in _VALUE_START:
                raise Refused(422, refusal)
            self._syntax("expected value")
        self._pos += 1
        self._after_comma = False
        self._state = next_state
        return None

    def _object_start(self, final: bool):
        return self._expect_open(final, b"{", "body: Input should be an object with 'beats' (and optionally "
                                              "'threshold')", self._key_or_end)

    def _key_or_end(self, final: bool):
        c = self._next(final)
        if c is _NEED:
            return _NEED
        if c == ord("}") and not self._after_comma:
            self._pos += 1
            self._state = self._trailing
            return None
        if c != ord('"'):
            self._syntax("key must be a string")
        end = self._buf.find(b'"', self._pos + 1, self._pos + 2 + _MAX_KEY_BYTES)
        while end != -1 and _escaped(self._buf, end):
            end = self._buf.find(b'"', end + 1, self._pos + 2 + _MAX_KEY_BYTES)
        if end == -1:
            if len(self._buf) - self._pos <= _MAX_KEY_BYTES + 1 and not final:
                return _NEED
            self._unknown_field()
        try:
            key = json.loads(bytes(self._buf[self._pos : end + 1]))
        except ValueError:
            self._syntax("invalid string")
        if key not in FIELDS:
            self._unknown_field()
        if key in self._seen:
            raise Refused(422, f"{key}: given more than once")
        self._seen.add(key)
        self._key = key
        self._pos = end + 1
        self._state = self._colon
        return None

    def _unknown_field(self) -> None:
        # the key itself is never repeated: it may be anything, of any length
        raise Refused(422, "body: Extra inputs are not permitted (a request has the fields 'beats' and "
                           "'threshold' only)")

    def _colon(self, final: bool):
        c = self._next(final)
        if c is _NEED:
            return _NEED
        if c != ord(":"):
            self._syntax("expected ':'")
        self._pos += 1
        self._state = self._beats_start if self._key == "beats" else self._threshold
        return None

    def _after_item(self, final: bool, close: bytes, next_item, after_close):
        """After an item of an object or list: a comma leads to `next_item`, the `close` that ends it to
        `after_close`."""
        c = self._next(final)
        if c is _NEED:
            return _NEED
        if c == ord(","):
            self._pos += 1
            self._after_comma = True
            self._state = next_item
        elif c == ord(close):
            self._pos += 1
            self._state = after_close
        else:
            self._syntax(f"expected ',' or '{close.decode()}'")
        return None

    def _after_value(self, final: bool):
        return self._after_item(final, b"}", self._key_or_end, self._trailing)

    def _trailing(self, final: bool):
        n = len(self._buf)
        while self._pos < n and self._buf[self._pos] in _WS:
            self._pos += 1
        if self._pos < n:
            self._syntax("trailing characters")
        return _NEED

    # -- the threshold ---------------------------------------------------------------------------------------
    def _threshold(self, final: bool):
        c = self._next(final)
        if c is _NEED:
            return _NEED
        if c in b'"[{':
            raise Refused(422, "threshold: must be a number (or null)")
        end = self._pos
        limit = min(len(self._buf), self._pos + _MAX_SCALAR_BYTES + 1)
        while end < limit and self._buf[end] not in b",} \t\r\n":
            end += 1
        if end == len(self._buf) and not final and end - self._pos <= _MAX_SCALAR_BYTES:
            return _NEED
        token = bytes(self._buf[self._pos : end])
        if token == b"null":
            self.threshold = None
        elif token in (b"true", b"false"):
            raise Refused(422, "threshold: must be a number, not true or false")
        elif _ONE_NUMBER.fullmatch(token):
            self.threshold = float(token)
        else:
            self._syntax("expected value")
        self._pos = end
        self._state = self._after_value
        return None

    # -- the beats -------------------------------------------------------------------------------------------
    def _beats_start(self, final: bool):
        return self._expect_open(final, b"[", "beats: Input should be a valid list (of beats, each a list of numbers)",
                                 self._beat_or_end)

    def _beat_or_end(self, final: bool):
        c = self._next(final)
        if c is _NEED:
            return _NEED
        if c == ord("]") and not self._after_comma:
            self._pos += 1
            if self._n == 0:
                raise Refused(422, "beats: no beats given")
            self._state = self._after_value
            return None
        self._expect_open(final, b"[", f"beats[{self._n}]: Input should be a valid list (of numbers)", self._row)
        if self._n >= self.max_beats:  # after the check above: a beat that is no list is refused as such
            raise Refused(413, f"beats: more than {self.max_beats:,} beats in one request; at most "
                               f"{self.max_beats:,}")
        self._row_start = self._row_scan = self._pos
        self._row_commas = 0
        return None

    def _row(self, final: bool):
        end = self._buf.find(b"]", self._row_scan)
        stop = len(self._buf) if end == -1 else end
        self._row_commas += self._buf.count(b",", self._row_scan, stop)
        self._row_scan = stop
        i = self._n
        if self._row_commas >= self.seq_len:  # seq_len commas: more samples than a beat has, whatever follows
            n = f"{self._row_commas + 1:,}" if end != -1 else f"more than {self.seq_len}"
            raise Refused(422, f"beats[{i}]: has {n} samples, but the model was trained on beats of "
                               f"{self.seq_len} samples")
        if stop - self._row_start > self.seq_len * MAX_BYTES_PER_SAMPLE:
            raise Refused(422, f"beats[{i}]: more than {self.seq_len * MAX_BYTES_PER_SAMPLE:,} bytes of text for "
                               f"{self.seq_len} samples")
        if end == -1:
            if final:
                self._syntax("EOF while parsing a list")
            return _NEED
        self._store(i, self._row_start, end)
        self._pos = end + 1
        self._after_comma = False
        self._state = self._after_row
        return None

    def _after_row(self, final: bool):
        return self._after_item(final, b"]", self._beat_or_end, self._after_value)

    def _store(self, i: int, start: int, end: int) -> None:
        """Check beat i's text (_buf[start:end]) and add its samples to the array."""
        text = bytes(self._buf[start:end])
        if text.translate(None, _NUMBER_BYTES):  # a string, list, object or literal among the samples
            self._bad_sample(i, text, start)
        n = 0 if not text.strip(_WS) else self._row_commas + 1
        if n != self.seq_len:
            raise Refused(422, f"beats[{i}]: has {n} samples, but the model was trained on beats of "
                               f"{self.seq_len} samples")
        try:
            values = from_json(b"[" + text + b"]")  # at most seq_len values: a beat's worth of Python floats
        except ValueError:
            values = None
        if values is None or not set(map(type, values)) <= _NUMBER_TYPES:
            self._bad_sample(i, text, start)
        try:
            values = np.asarray(values, dtype=np.float64)
        except OverflowError:  # an integer beyond float64
            values = np.asarray([float("inf") if isinstance(v, int) and abs(v) > 2**1023 else v for v in values])
        with np.errstate(over="ignore"):  # too large for float32 becomes inf, refused just below
            as32 = values.astype(np.float32)
        bad = ~np.isfinite(as32)
        if bad.any():
            j = int(np.argmax(bad))
            what = "NaN" if np.isnan(values[j]) else "infinite or too large for float32"
            raise Refused(422, f"beats[{i}][{j}]: sample is {what}; every sample must be a finite number")
        if i == len(self._beats):  # grow by doubling, up to the cap: memory follows the beats actually sent
            grown = np.empty((min(max(2 * i, 64), self.max_beats), self.seq_len), dtype=np.float32)
            grown[:i] = self._beats
            self._beats = grown
        self._beats[i] = as32
        self._n = i + 1

    def _bad_sample(self, i: int, text: bytes, start: int) -> None:
        """The first sample of beat i that is not a number: a 422 for a JSON value of another kind, else a 400."""
        offset = 0
        for j, item in enumerate(text.split(b",")):
            if not _ONE_NUMBER.fullmatch(item):
                token = item.strip(_WS)
                at = start + offset + (len(item) - len(item.lstrip(_WS)))
                if token[:1] in (b'"', b"[", b"{") or token in (b"true", b"false", b"null"):
                    raise Refused(422, f"beats[{i}][{j}]: Input should be a valid number")
                self._syntax("invalid number" if token else "expected value", at)
            offset += len(item) + 1
        self._syntax("expected value", start)


def _escaped(buf: bytearray, quote: int) -> bool:
    """Whether the quote at `quote` is escaped (preceded by an odd number of backslashes)."""
    n = 0
    while quote - n - 1 >= 0 and buf[quote - n - 1] == ord("\\"):
        n += 1
    return n % 2 == 1
