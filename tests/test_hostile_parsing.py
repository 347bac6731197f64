"""Hostile headers: a wide ARFF header parses in linear time and the column count is bounded."""

from __future__ import annotations

import time

import pytest

from ecgviz.io.data import DataError, load_uploads
from ecgviz.io.parse import MAX_COLUMNS


def wide_arff(n: int, rows: int = 2) -> bytes:
    head = "@relation r\n" + "".join(f"@attribute a{i} numeric\n" for i in range(n))
    head += "@attribute note string\n@attribute target {1,2}\n@data\n"
    return (head + (",".join(["0.5"] * n) + ",x,1\n") * rows).encode()


def test_a_wide_header_parses_in_linear_time():
    raw = wide_arff(60_000)
    started = time.process_time()
    data = load_uploads([("wide.arff", raw)])
    spent = time.process_time() - started
    assert data.X.shape == (2, 60_000)
    assert data.warnings[0] == "wide.arff: ignored non-numeric attribute(s): note (string)"
    # CPU seconds, not wall time: measured 0.35 s; the quadratic lookup took 13.4 s here
    assert spent < 5, spent


def test_the_attribute_count_is_bounded():
    with pytest.raises(DataError, match=rf"^wide\.arff, line {MAX_COLUMNS + 2}: more than 100,000 attributes "
                                        r"declared; a beat may have at most 100,000 samples$"):
        load_uploads([("wide.arff", wide_arff(MAX_COLUMNS + 1, rows=1))])


def test_the_column_count_of_text_files_is_bounded():
    row = "1," + ",".join(["0.5"] * (MAX_COLUMNS + 1)) + "\n"
    with pytest.raises(DataError, match=r"^wide\.csv, line 1: 100,002 columns; a beat may have at most 100,000"):
        load_uploads([("wide.csv", row.encode())])
    ok = "1," + ",".join(["0.5"] * MAX_COLUMNS) + "\n"
    assert load_uploads([("ok.csv", ok.encode())]).length == MAX_COLUMNS
