"""The C-parser path reads every file exactly as the line-by-line reader does, and a refused file costs one block."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecgviz.errors import DataError
from ecgviz.io import blocks
from ecgviz.io.data import bundled_paths
from ecgviz.io.parse import parse
from tests.rss_support import peak_rss
from tests.test_data import BAD, arff


def outcome(name: str, raw: bytes) -> tuple:
    """What parse says: the error, or the exact bytes of the beats with labels, rows and warnings."""
    try:
        p = parse(name, raw)
    except DataError as exc:
        return ("error", str(exc))
    labels = None if p.label_codes is None else [p.label_names[c] for c in p.label_codes]
    return ("ok", p.X.dtype.str, p.X.shape, p.X.tobytes(), labels, p.rows.tolist(), list(p.warnings))


@pytest.fixture
def line_by_line(monkeypatch):
    """Every block through the line-by-line reader (the parser as it was before the C path)."""
    monkeypatch.setattr(blocks, "use_c_parser", lambda nbytes: False)
    monkeypatch.setattr(blocks, "numbers", lambda *a: pytest.fail("the C path ran"))


def c_parser(monkeypatch, block_bytes: int | None = None) -> list[int]:
    """Every block after the first line through the C parser; returns a list that counts the blocks it took."""
    taken = []
    numbers = blocks.numbers

    def counted(block, layout):
        got = numbers(block, layout)
        taken.extend([1] if got is not None else [])
        return got

    monkeypatch.setattr(blocks, "use_c_parser", lambda nbytes: True)
    monkeypatch.setattr(blocks, "FAST_MIN_BYTES", 0)
    monkeypatch.setattr(blocks, "FIRST_BYTES", 0)
    monkeypatch.setattr(blocks, "numbers", counted)
    if block_bytes is not None:
        monkeypatch.setattr(blocks, "BLOCK_BYTES", block_bytes)
    return taken


def both(monkeypatch, name: str, raw: bytes, block_bytes: int | None = None) -> tuple[tuple, tuple, int]:
    """(line-by-line outcome, C-path outcome, blocks the C parser took)."""
    with monkeypatch.context() as m:
        m.setattr(blocks, "use_c_parser", lambda nbytes: False)
        slow = outcome(name, raw)
    with monkeypatch.context() as m:
        taken = c_parser(m, block_bytes)
        fast = outcome(name, raw)
    return slow, fast, len(taken)


def test_bundled_ecg5000_reads_the_same_both_ways(monkeypatch):
    for path in bundled_paths():
        raw = path.read_bytes()
        slow, fast, taken = both(monkeypatch, path.name, raw)
        assert fast == slow and fast[0] == "ok" and taken >= 1
        assert outcome(path.name, raw) == slow  # and with the default settings
    X = np.frombuffer(slow[3], dtype=np.float32).reshape(slow[2])
    assert X.shape == (4500, 140) and X[0, 0] == np.float32(3.6908442)


@pytest.mark.parametrize(("case", "name", "content", "message"), BAD, ids=[b[0] for b in BAD])
def test_hostile_cases_read_the_same_both_ways(monkeypatch, case, name, content, message):
    raw = content.encode() if isinstance(content, str) else content
    slow, fast, _ = both(monkeypatch, name, raw)
    assert fast == slow and slow[0] == "error" and message in slow[1]


def _rows(n: int, t: int, seed: int, sep: str) -> list[str]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, t)).astype(np.float32)
    return [sep.join(repr(float(v)) if j % 2 else str(v) for j, v in enumerate(row)) for row in X]


SEEDS = {
    "s.arff": arff([r + f",{1 + i % 2}" for i, r in enumerate(_rows(40, 6, 1, ","))], t=6),
    "s.csv": "".join(f"{i % 3},{r}\n" for i, r in enumerate(_rows(40, 6, 2, ","))),
    "s.tsv": "".join(f"N{i % 2}\t{r}\n" for i, r in enumerate(_rows(40, 6, 3, "\t"))),
    "s.txt": "".join(f" {float(i % 2)}  {r}\n" for i, r in enumerate(_rows(40, 6, 4, "  "))),
}
EDITS = [b"nan", b"inf", b"1e39", b"1_0", b"True", b"false", b"?", b"", b" ", b"\t", b"\xc2\xa0", b"\x1c", b"\x0c",
         b"'", b'"', b"{", b"%", b"#", b",", b"\r\n", b"\r", b"\n\n", b"\n% c\n", b"\n#c\n", b"+.5", b"\xd9\xa1",
         b"1 2", b"x", b"-", b"1e", b"\xe9"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(sorted(SEEDS)), block=st.sampled_from([48, 300, None]),
       edits=st.lists(st.tuples(st.floats(0, 1), st.sampled_from(EDITS)), max_size=3))
def test_mangled_files_read_the_same_both_ways(monkeypatch, name, block, edits):
    raw = bytearray(SEEDS[name].encode())
    for where, token in edits:  # replace the field at a random place
        i = int(where * len(raw))
        j = i
        while j < len(raw) and raw[j] not in b",\t \n":
            j += 1
        raw[i:j] = token
    slow, fast, _ = both(monkeypatch, name, bytes(raw), block)
    assert fast == slow


def test_unmangled_seeds_go_through_the_c_parser(monkeypatch):
    for name, text in SEEDS.items():
        slow, fast, taken = both(monkeypatch, name, text.encode(), 300)
        assert fast == slow and fast[0] == "ok" and taken >= 2, name


@pytest.mark.parametrize("token", ["True", "false", "1_0", "\u0661", "0x10", "1d5", "nan", "-inf", "1e39"])
def test_a_token_float_refuses_is_never_read_by_the_c_parser(monkeypatch, token):
    rows = [f"1,{i},{i + 1},{i + 2}" for i in range(50)]
    rows[30] = f"1,{token},2,3"
    raw = ("\n".join(rows) + "\n").encode()
    slow, fast, _ = both(monkeypatch, "t.csv", raw)
    assert fast == slow
    if token in ("1_0", "\u0661"):  # float() reads these (10.0 and 1.0): so does the file
        assert slow[0] == "ok"
    else:
        assert slow[0] == "error" and re.match(r"t\.csv, row 31 \(line 31\), column 2: ", slow[1]), slow


def test_a_blank_that_strip_removes_is_read_as_the_explainer_reads_it(line_by_line):
    # float() refuses '7.5\x1c' (the bulk check used to), strip() removes \x1c (the explainer found nothing wrong)
    raw = "".join(f"1,{i}.5{chr(28) if i == 7 else ''},2,3\n" for i in range(200)).encode()
    assert parse("b.csv", raw).X[:, 0].tolist() == [i + 0.5 for i in range(200)]


def test_a_big_file_refused_at_line_1_costs_one_block_of_memory():
    # before the C path the whole file was split into lines first: this case peaked 746 MiB above the start
    script = (
        "from ecgviz.io.data import DataError, load_uploads\n"
        "raw = b'1,2,abc,4\\n' + b'1,2,3,4\\n' * 6_500_000\n"
        "mark()\n"
        "try:\n"
        "    load_uploads([('big.csv', raw)])\n"
        "except DataError as exc:\n"
        "    out['error'] = str(exc)\n"
        "import sys\n"
        "out['pandas'] = 'pandas' in sys.modules\n"
    )
    r = peak_rss(script)
    assert r["error"] == "big.csv, row 1 (line 1), column 3: 'abc' is not a number"
    assert r["peak"] - r["base"] < 16, r
    assert not r["pandas"]  # refused from the first block, before the C parser was needed


def test_a_big_valid_file_stays_within_its_beats_and_a_few_blocks():
    script = (
        "import pandas\n"
        "from ecgviz.io.data import load_uploads\n"
        "row = ','.join(['0.123456789'] * 140)\n"
        "raw = ''.join(f'{i % 5},{row}\\n' for i in range(40_000)).encode()\n"
        "mark()\n"
        "data = load_uploads([('big.csv', raw)])\n"
        "out['shape'] = list(data.X.shape)\n"
        "out['beats_mib'] = data.X.nbytes / 2**20\n"
    )
    r = peak_rss(script)
    assert r["shape"] == [40_000, 140]
    # the beats (21 MiB) plus the C parser's buffers for one 4 MiB block; the text is 55 MiB
    assert r["peak"] - r["base"] < r["beats_mib"] + 64, r
