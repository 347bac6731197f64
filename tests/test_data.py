"""Tests for ecgviz.io.data: bundled ECG5000, exact round trips, and a defined outcome for bad input."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecgviz.io import parse as _parse
from ecgviz.io.data import (
    ECG5000_CLASS_NAMES,
    BeatData,
    DataError,
    bundled_paths,
    fingerprint,
    load_ecg5000,
    load_files,
    load_uploads,
)

ECG_COUNTS = {"1": 2919, "2": 1767, "3": 96, "4": 194, "5": 24}


def arff(rows: list[str], attrs: list[str] | None = None, *, t: int = 3, nominal: str = "{1,2}") -> str:
    """ARFF text: line 1 @relation, then attributes, @data, rows (first row is line len(attrs) + 3)."""
    if attrs is None:
        attrs = [f"a{i + 1} numeric" for i in range(t)] + [f"target {nominal}"]
    head = ["@relation t"] + [f"@attribute {a}" for a in attrs] + ["@data"]
    return "\n".join(head + rows) + "\n"


def load(tmp: Path, name: str, content: str | bytes, via: str = "files"):
    raw = content.encode() if isinstance(content, str) else content
    if via == "uploads":
        return load_uploads([(name, raw)])
    path = tmp / name
    path.write_bytes(raw)
    return load_files([path])


@pytest.fixture(scope="module")
def ecg() -> BeatData:
    return load_ecg5000()


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("data")


def _file_rows(path: Path) -> tuple[np.ndarray, list[str]]:
    lines = path.read_text().splitlines()
    start = next(i for i, s in enumerate(lines) if s.lower().startswith("@data")) + 1
    rows = [s.split(",") for s in lines[start:] if s.strip()]
    return np.array([[float(v) for v in r[:-1]] for r in rows]).astype(np.float32), [r[-1] for r in rows]


# --- bundled data -----------------------------------------------------------------------


def test_bundled_shape_counts_and_names(ecg):
    assert ecg.X.shape == (5000, 140) and ecg.X.dtype == np.float32
    assert (ecg.n_beats, ecg.length, ecg.has_labels) == (5000, 140, True)
    assert ecg.label_counts() == ECG_COUNTS
    assert dict(ecg.class_names) == ECG5000_CLASS_NAMES
    assert ecg.warnings == ()
    assert np.isfinite(ecg.X).all()


def test_bundled_sources_rows_and_exact_values(ecg):
    train, test = bundled_paths()
    assert (ecg.sources[0], ecg.rows[0]) == ("ECG5000_TRAIN.arff", 1)
    assert (ecg.sources[499], ecg.rows[499]) == ("ECG5000_TRAIN.arff", 500)
    assert (ecg.sources[500], ecg.rows[500]) == ("ECG5000_TEST.arff", 1)
    assert (ecg.sources[4999], ecg.rows[4999]) == ("ECG5000_TEST.arff", 4500)
    assert ecg.X[500, 0] == np.float32(3.6908442)
    x_train, y_train = _file_rows(train)
    x_test, y_test = _file_rows(test)
    np.testing.assert_array_equal(ecg.X, np.concatenate([x_train, x_test]))
    assert ecg.labels.tolist() == y_train + y_test


def test_bundled_immutable(ecg):
    for arr in (ecg.X, ecg.labels, ecg.sources, ecg.rows):
        assert not arr.flags.writeable
    with pytest.raises(ValueError):
        ecg.X[0, 0] = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        ecg.X = None
    with pytest.raises(TypeError):
        ecg.class_names["1"] = "x"


def test_fingerprint_stable_and_sensitive(ecg):
    fp = fingerprint(ecg)
    assert re.fullmatch(r"[0-9a-f]{64}", fp)
    uploads = load_uploads([(p.name, p.read_bytes()) for p in bundled_paths()])
    assert fingerprint(uploads) == fp
    X = ecg.X.copy()
    X[123, 45] = np.nextafter(X[123, 45], np.float32(np.inf))
    assert fingerprint(BeatData(X, ecg.labels, ecg.class_names, ecg.sources, ecg.rows)) != fp
    labels = ecg.labels.copy()
    labels[0] = "2"
    assert fingerprint(BeatData(ecg.X, labels, {}, ecg.sources, ecg.rows)) != fp
    assert fingerprint(BeatData(ecg.X, None, {}, ecg.sources, ecg.rows)) != fp


def test_bundled_single_file_gets_ecg_names():
    data = load_files([bundled_paths()[1]])
    assert data.n_beats == 4500 and data.rows[0] == 1 and data.class_names["3"] == "PVC"


# --- valid inputs -----------------------------------------------------------------------


@pytest.mark.parametrize("via", ["files", "uploads"])
def test_arff_round_trip_two_files(tmp, via):
    a = arff(["1.5,-2.25,3e-3,1", "0.1,0.2,0.3,2"])
    b = arff(["-0.0,7,8,2"])
    raws = [("a.arff", a.encode()), ("b.arff", b.encode())]
    if via == "uploads":
        data = load_uploads(raws)
    else:
        for name, raw in raws:
            (tmp / name).write_bytes(raw)
        data = load_files([tmp / "a.arff", tmp / "b.arff"])
    expect = np.array([[1.5, -2.25, 3e-3], [0.1, 0.2, 0.3], [-0.0, 7, 8]], dtype=np.float32)
    np.testing.assert_array_equal(data.X, expect)
    assert data.labels.tolist() == ["1", "2", "2"]
    assert data.sources.tolist() == ["a.arff", "a.arff", "b.arff"]
    assert data.rows.tolist() == [1, 2, 1]
    assert dict(data.class_names) == {"1": "Class 1", "2": "Class 2"}


def test_label_attribute_rules(tmp):
    first = arff(["2.0,1,2,3", "10,4,5,6"], ["LABEL numeric", "x real", "y integer", "z numeric"])
    data = load(tmp, "first.arff", first)
    assert data.labels.tolist() == ["2", "10"]
    assert list(data.label_counts()) == ["2", "10"]
    assert data.class_names == {"2": "Class 2", "10": "Class 10"}
    unlabelled = load(tmp, "nolab.arff", arff(["1,2,3", "4,5,6"], ["a numeric", "b numeric", "c numeric"]))
    assert unlabelled.labels is None and not unlabelled.has_labels
    assert unlabelled.label_counts() == {} and dict(unlabelled.class_names) == {}
    text = arff(["1,2,3,'sick one'", "4,5,6,healthy"], t=3, nominal="{healthy,'sick one'}")
    assert load(tmp, "names.arff", text).labels.tolist() == ["sick one", "healthy"]


def test_ecg_names_for_140_samples_with_labels_1_to_5(tmp):
    rows = [",".join(["0.5"] * 139 + ["1", "4"]), ",".join(["1"] * 140 + ["1"])]
    data = load(tmp, "ecgish.arff", arff(rows, t=140, nominal="{1,2,3,4,5}"))
    assert dict(data.class_names) == {"1": "Normal", "4": "Supraventricular ectopic"}


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("ucr.tsv", "1\t0.5\t1.5\t2.5\n2\t3\t4\t5\n"),
        ("ucr.csv", "1.0,0.5,1.5,2.5\r\n2.0,3,4,5\r\n"),
        ("ucr.txt", "  1.0000000e+00  5.0000000e-01  1.5 2.5\n  2.0000000e+00 3 4 5\n"),
    ],
)
def test_ucr_text_formats(tmp, name, text):
    data = load(tmp, name, text)
    np.testing.assert_array_equal(data.X, np.array([[0.5, 1.5, 2.5], [3, 4, 5]], dtype=np.float32))
    assert data.labels.tolist() == ["1", "2"] and data.rows.tolist() == [1, 2] and data.warnings == ()


def test_csv_header_and_text_labels(tmp):
    data = load(tmp, "h.csv", "label,t1,t2,t3\nN,1,2,3\nV,4,5,6\n")
    assert data.labels.tolist() == ["N", "V"] and data.rows.tolist() == [1, 2]
    assert data.warnings == ("h.csv: line 1 read as a column header: 'label,t1,t2,t3'",)


def test_bom_crlf_comments_and_case(tmp):
    text = "% made by hand\r\n@RELATION r\r\n\r\n@ATTRIBUTE a REAL\r\n@Attribute b NUMERIC\r\n"
    text += "@attribute c integer\r\n@ATTRIBUTE Class {x,y}\r\n@DATA\r\n% note\r\n1,2,3,x\r\n\r\n4,5,6,y\r\n"
    data = load(tmp, "win.arff", b"\xef\xbb\xbf" + text.encode())
    assert data.X.tolist() == [[1, 2, 3], [4, 5, 6]] and data.rows.tolist() == [1, 2]
    assert data.warnings == ()
    bad = text.replace("4,5,6,y", "4,oops,6,y")
    with pytest.raises(DataError, match=re.escape("win.arff, row 2 (line 12), attribute b: 'oops' is not")):
        load(tmp, "win.arff", b"\xef\xbb\xbf" + bad.encode())


def test_latin1_and_utf16(tmp):
    text = "% caf\xe9\n" + arff(["1,2,3,\xe9t\xe9"], nominal="{\xe9t\xe9,hiver}")
    data = load(tmp, "latin.arff", text.encode("latin-1"))
    assert data.labels.tolist() == ["\xe9t\xe9"]
    assert data.warnings == ("latin.arff: not valid UTF-8 (first bad byte on line 1); read as Latin-1",)
    assert load(tmp, "wide.arff", arff(["1,2,3,1"]).encode("utf-16")).X.tolist() == [[1, 2, 3]]


def test_string_and_date_attributes_ignored(tmp):
    attrs = ["id string", "a numeric", "when date 'yyyy-MM-dd'", "b numeric", "c numeric", "sex {m,f}",
             "target {1,2}"]
    data = load(tmp, "mixed.arff", arff(["'p, 1',1,2020-01-01,2,3,m,1", "p2,4,2020-01-02,5,6,f,2"], attrs))
    assert data.X.tolist() == [[1, 2, 3], [4, 5, 6]] and data.labels.tolist() == ["1", "2"]
    assert data.warnings == ("mixed.arff: ignored non-numeric attribute(s): id (string), when (date), sex (nominal)",)


def test_constant_single_long_and_float32_max(tmp):
    data = load(tmp, "flat.arff", arff(["1,1,1,1", "1,2,3,1", "0,0,0,2"]))
    assert data.warnings == ("flat.arff: 2 constant beat(s) (all samples equal), e.g. row 1, 3",)
    assert load(tmp, "one.arff", arff(["1,2,3,1"])).X.shape == (1, 3)
    long = load(tmp, "long.arff", arff([",".join(["0.25"] * 1600) + ",1"], t=1600))
    assert long.X.shape == (1, 1600)
    edge = load(tmp, "edge.arff", arff(["3.4028235e38,-3.4028235e+38,1e-45,1"]))
    big = np.finfo(np.float32).max
    np.testing.assert_array_equal(edge.X[0], np.array([big, -big, 1e-45], dtype=np.float32))


def test_numeric_csv_named_arff_loads_with_warning(tmp):
    data = load(tmp, "really.arff", "1,0.5,0.25,0.125\n2,1,2,3\n")
    assert data.labels.tolist() == ["1", "2"]
    assert data.warnings == ("really.arff: no ARFF header; read as UCR-style text with the class label first",)


def test_chunked_parse_reports_first_problem(tmp):
    n = _parse._CHUNK + 50
    rows = [f"{i},{i + 1},{i + 2},1" for i in range(n)]
    assert load(tmp, "big.arff", arff(rows)).X[-1].tolist() == [n - 1, n, n + 1]
    rows[_parse._CHUNK + 9] = "1,2,x,1"
    rows[_parse._CHUNK + 4] = "1,nan,3,1"
    row = _parse._CHUNK + 5
    with pytest.raises(DataError, match=re.escape(f"big.arff, row {row} (line {row + 6}), attribute a2: 'nan'")):
        load(tmp, "big.arff", arff(rows))


# --- hostile inputs: each raises DataError naming file, location and problem ------------

HEAD = 6  # with arff(t=3) the first data row is on line 7
BAD = [
    ("empty", "e.arff", b"", "e.arff: the file is empty"),
    ("blank", "e.arff", "  \n\n", "e.arff: the file is empty"),
    ("comments only", "c.arff", "% a\n% b\n", "c.arff: no content (only blank or comment lines)"),
    ("no @data", "n.arff", "@relation r\n@attribute a numeric\n", "n.arff: no @data line"),
    ("no rows", "r.arff", arff([]), "r.arff: no data rows after @data (line 6)"),
    ("not a number", "x.arff", arff(["1,2,3,1", "1,abc,3,2"]),
     "x.arff, row 2 (line 8), attribute a2: 'abc' is not a number"),
    ("missing value", "q.arff", arff(["1,2,?,1"]), "q.arff, row 1 (line 7), attribute a3: missing value '?'"),
    ("short row", "s.arff", arff(["1,2,3,1", "1,2,1"]), "s.arff, row 2 (line 8): 3 values, but 4 columns"),
    ("long row", "s.arff", arff(["1,2,3,4,1"]), "s.arff, row 1 (line 7): 5 values, but 4 columns"),
    ("undeclared label", "l.arff", arff(["1,2,3,7"]),
     "l.arff, row 1 (line 7), attribute target: label '7' is not one of the declared values {1,2}"),
    ("missing label", "l.arff", arff(["1,2,3,?"]), "l.arff, row 1 (line 7), attribute target: missing label '?'"),
    ("sparse", "sp.arff", arff(["{0 1, 2 3, 3 1}"]), "sp.arff, row 1 (line 7): sparse ARFF rows"),
    ("unbalanced quote", "u.arff", arff(["1,2,3,'1"]), "u.arff, row 1 (line 7): unbalanced quotes"),
    ("binary junk", "j.arff", bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8)),
     "j.arff: binary data, not an ARFF, CSV or TSV text file"),
    ("control chars", "j.csv", b"1,2,3\x01\x02\x03\x04\x05\x06\x07\x08\n", "j.csv: binary data"),
    ("text as arff", "t.arff", "hello world\n1,2,3\n", "t.arff: not an ARFF file (no @relation/@attribute header)"),
    ("nan", "f.arff", arff(["NaN,2,3,1"]), "f.arff, row 1 (line 7), attribute a1: 'NaN' is not a finite number"),
    ("inf", "f.arff", arff(["1,-inf,3,1"]), "f.arff, row 1 (line 7), attribute a2: '-inf' is not a finite number"),
    ("float32 overflow", "o.arff", arff(["1,2,1e308,1"]),
     "o.arff, row 1 (line 7), attribute a3: '1e308' is outside the float32 range"),
    ("just over float32", "o.arff", arff(["1,2,3.41e38,1"]), "attribute a3: '3.41e38' is outside the float32"),
    ("length 2", "t2.arff", arff(["1,2,1"], t=2),
     "t2.arff: only 2 numeric attribute(s); a beat needs at least 3 samples"),
    ("label only", "lo.arff", arff(["1"], t=0), "lo.arff: no numeric sample attributes"),
    ("duplicate attribute", "d.arff", arff(["1,2,3,1"], ["a numeric", "a numeric", "b numeric", "target {1}"]),
     "d.arff, line 3: duplicate attribute name: '@attribute a numeric'"),
    ("relational", "m.arff", "@relation r\n@attribute bag relational\n@attribute a numeric\n@end bag\n@data\n",
     "m.arff, line 2: relational (multi-instance) attribute bag is not supported"),
    ("empty nominal value", "nv.arff", arff(["1,2,3,1"], nominal="{1,,2}"),
     "nv.arff, line 5: empty value in the nominal declaration of 'target'"),
    ("no nominal values", "nv.arff", arff(["1,2,3,1"], nominal="{ }"),
     "nv.arff, line 5: nominal attribute target declares no values"),
    ("broken utf-16", "w.arff", b"\xff\xfe@\x00r", "w.arff: broken UTF-16 text"),
    ("unknown type", "ty.arff", arff(["1,2,3,1"], ["a float", "b numeric", "c numeric", "target {1}"]),
     "ty.arff, line 2: unsupported attribute type"),
    ("junk in header", "h.arff", "@relation r\nnonsense\n@attribute a numeric\n@data\n1\n",
     "h.arff, line 2: unexpected text in the ARFF header: 'nonsense'"),
    ("attribute without type", "h.arff", "@relation r\n@attribute a\n@data\n", "h.arff, line 2: malformed @attribute"),
    ("no relation", "h.arff", "@attribute a numeric\n@data\n1\n", "h.arff, line 1: the header must be @relation"),
    ("no attributes", "h.arff", "@relation r\n@data\n1\n", "h.arff: the header declares no attributes"),
    ("tsv not a number", "b.tsv", "1\t1\t2\t3\n2\t1\tabc\t3\n", "b.tsv, row 2 (line 2), column 3: 'abc' is not"),
    ("tsv nan label", "b.tsv", "1\t1\t2\t3\nnan\t1\t2\t3\n", "b.tsv, row 2 (line 2), column 1: label 'nan' is not a"),
    ("tsv short row", "b.tsv", "1\t1\t2\t3\n2\t1\t2\n", "b.tsv, row 2 (line 2): 3 values, but 4 columns"),
    ("tsv too few columns", "b.tsv", "1\t1\t2\n", "b.tsv, line 1: 3 column(s); expected the class label then"),
    ("csv header only", "b.csv", "label,a,b,c\n", "b.csv: a header line but no data rows"),
]


@pytest.mark.parametrize("via", ["files", "uploads"])
@pytest.mark.parametrize(("case", "name", "content", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_raises_located_data_error(tmp, via, case, name, content, message):
    with pytest.raises(DataError) as info:
        load(tmp, name, content, via)
    assert message in str(info.value), case
    assert isinstance(info.value, ValueError)


def test_multi_file_disagreements(tmp):
    (tmp / "t3.arff").write_text(arff(["1,2,3,1"]))
    (tmp / "t4.arff").write_text(arff(["1,2,3,4,1"], t=4))
    (tmp / "nl.arff").write_text(arff(["1,2,3"], ["a numeric", "b numeric", "c numeric"]))
    with pytest.raises(DataError, match=r"^t4\.arff: beats have 4 samples but t3\.arff has 3$"):
        load_files([tmp / "t3.arff", tmp / "t4.arff"])
    with pytest.raises(DataError, match=r"^nl\.arff: no class labels, but t3\.arff has them"):
        load_files([tmp / "t3.arff", tmp / "nl.arff"])
    with pytest.raises(DataError, match=r"^t3\.arff: given more than once"):
        load_uploads([("t3.arff", b"x"), ("dir/t3.arff", b"y")])
    with pytest.raises(DataError, match=r"^missing\.arff: cannot read the file"):
        load_files([tmp / "missing.arff"])
    with pytest.raises(DataError, match=r"^no files given$"):
        load_files([])
    with pytest.raises(DataError, match=r"^u\.arff: expected the file's bytes, got str$"):
        load_uploads([("u.arff", "1,2,3")])


# --- property: any valid ARFF round-trips exactly ---------------------------------------

f32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


@st.composite
def arff_cases(draw):
    n, t = draw(st.integers(1, 12)), draw(st.integers(3, 20))
    values = np.array(draw(st.lists(f32, min_size=n * t, max_size=n * t)), dtype=np.float32).reshape(n, t)
    classes = draw(st.lists(st.integers(0, 99), min_size=1, max_size=5, unique=True))
    labels = [str(draw(st.sampled_from(classes))) for _ in range(n)]
    short = draw(st.booleans())  # shortest float32 text, or the exact float64 value of the float32
    cell = (lambda v: str(np.float32(v))) if short else (lambda v: repr(float(v)))
    rows = [",".join(cell(v) for v in row) + "," + lab for row, lab in zip(values, labels, strict=True)]
    text = arff(rows, t=t, nominal="{" + ",".join(map(str, classes)) + "}")
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    return values, labels, text.replace("\n", eol).encode()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arff_cases())
def test_property_valid_arff_round_trips_exactly(case):
    values, labels, raw = case
    data = load_uploads([("p.arff", raw)])
    assert data.X.dtype == np.float32
    np.testing.assert_array_equal(data.X.view(np.uint32), values.view(np.uint32))
    assert data.labels.tolist() == labels
    assert data.rows.tolist() == list(range(1, len(labels) + 1))
    assert set(data.class_names) == set(labels)
