"""Long labels and file names cost memory per distinct value, not per beat; over-long ones are refused by name."""

import hashlib
import json
from collections import Counter

import numpy as np
import pytest

from ecgviz.io.data import BeatData, DataError, fingerprint, load_uploads
from tests.rss_support import peak_rss

LONG = "L" * 100  # the longest label that loads
NAME = "n" * 251 + ".csv"  # the longest file name that loads


def _csv(labels, samples=3) -> bytes:
    return "".join(f"{lab},{','.join(str(i % 7 + k) for k in range(samples))}\n"
                   for i, lab in enumerate(labels)).encode()


def test_label_over_100_characters_is_refused_naming_row_and_column():
    raw = _csv(["a", "b", "x" * 101, "a"])
    with pytest.raises(DataError, match=r"^h\.csv, row 3 \(line 3\), column 1: label 'x{40}\.\.\.' is 101 "
                                        r"characters long; a class label may have at most 100$"):
        load_uploads([("h.csv", raw)])
    assert load_uploads([("h.csv", _csv(["a", "x" * 100]))]).label_names == ("a", "x" * 100)


def test_arff_label_over_100_characters_is_refused_naming_the_attribute():
    text = ("@relation r\n@attribute a1 numeric\n@attribute a2 numeric\n@attribute a3 numeric\n"
            "@attribute target string\n@data\n1,2,3,ok\n1,2,3,'" + "y" * 150 + "'\n")
    with pytest.raises(DataError, match=r"^h\.arff, row 2 \(line 8\), attribute target: label 'y{40}\.\.\.' is "
                                        r"150 characters long"):
        load_uploads([("h.arff", text.encode())])


def test_file_name_over_255_characters_is_refused():
    raw = _csv(["a", "b"])
    with pytest.raises(DataError, match=r"^file name 'n{40}\.\.\.' is 256 characters long; rename the file to at "
                                        r"most 255 characters$"):
        load_uploads([("n" * 252 + ".csv", raw)])
    assert load_uploads([(NAME, raw)]).source_names == (NAME,)


def test_beats_store_int32_codes_into_one_name_per_distinct_value():
    labels = [LONG, "2", "10", LONG, "b", LONG]
    data = load_uploads([("a.csv", _csv(labels[:4])), (NAME, _csv(labels[4:]))])
    assert data.label_codes.dtype == np.int32 and data.source_codes.dtype == np.int32
    assert data.label_names == ("2", "10", LONG, "b")  # one entry per distinct label, in display order
    assert data.source_names == ("a.csv", NAME)
    assert data.labels.dtype == object and data.labels.tolist() == labels
    assert data.sources.tolist() == ["a.csv"] * 4 + [NAME] * 2
    assert not data.labels.flags.writeable and not data.label_codes.flags.writeable
    assert data.label_counts() == {"2": 1, "10": 1, "b": 1, LONG: 3}


def test_per_beat_memory_does_not_grow_with_label_or_name_length():
    n = 1000
    X = np.zeros((n, 3), np.float32)
    short = BeatData(X, ["a", "b"] * (n // 2), {}, ["s.csv"] * n, np.arange(n))
    long = BeatData(X, [LONG, "b" * 99] * (n // 2), {}, [NAME] * n, np.arange(n))
    assert short.nbytes() == long.nbytes() == X.nbytes + n * (4 + 4 + 8)
    assert long.label_codes.tolist() == short.label_codes.tolist()


def test_label_counts_match_a_counter():
    rng = np.random.default_rng(0)
    labels = [f"class {k}" if k % 3 else str(k) for k in rng.integers(0, 40, size=5000)]
    data = BeatData(np.zeros((5000, 3), np.float32), np.array(labels, dtype=object), {}, ["f"] * 5000,
                    np.arange(5000))
    assert data.label_counts() == dict(Counter(labels))
    assert list(data.label_counts()) == list(data.label_names)  # numeric labels first, in numeric order
    assert list(data.label_names[:3]) == ["0", "3", "6"]


def test_constructor_takes_numbers_and_from_codes_merges_and_drops_names():
    X = np.zeros((3, 3), np.float32)
    data = BeatData(X, np.array([1, 2, 1]), {}, np.array(["f", "f", "g"]), [1, 2, 3])
    assert data.labels.tolist() == ["1", "2", "1"] and data.label_names == ("1", "2")
    coded = BeatData.from_codes(X, np.array([3, 0, 2], np.int64), ["x", "unused", "x", "y"], {}, np.zeros(3, int),
                                ["f"], [1, 2, 3])
    assert coded.label_names == ("x", "y") and coded.labels.tolist() == ["y", "x", "x"]
    with pytest.raises(ValueError, match="codes must index"):
        BeatData.from_codes(X, np.array([0, 1, 2]), ["x"], {}, np.zeros(3, int), ["f"], [1, 2, 3])


def test_fingerprint_is_the_json_of_every_label_as_before():
    labels = ["é", "b\\c", "1", 'q"'] * 20_000  # more than one hashing block of beats
    data = BeatData(np.ones((len(labels), 3), np.float32), labels, {}, ["f"] * len(labels),
                    np.arange(len(labels)))
    digest = hashlib.sha256(b"ecgviz-beats-v1\0")
    digest.update(np.asarray(data.X.shape, dtype="<i8").tobytes())
    digest.update(np.ascontiguousarray(data.X, dtype="<f4").tobytes())
    digest.update(json.dumps(labels, ensure_ascii=True).encode())
    assert fingerprint(data) == digest.hexdigest()


def test_loading_40000_short_beats_with_long_labels_and_name_stays_small():
    # held as fixed-width text per beat (<U100 labels, <U255 names) this file took about 115 MiB above the start;
    # as codes it takes about 9 MiB
    script = (
        "from ecgviz.io.data import load_uploads, fingerprint\n"
        "labels = ['L' * 100, 'M' * 99, 'N' * 98, 'short', '1']\n"
        "raw = ''.join(f'{labels[i % 5 if i % 100 else i % 3]},{i % 7},{i % 11},{i % 13}\\n'\n"
        "              for i in range(40_000)).encode()\n"
        "mark()\n"
        "data = load_uploads([('n' * 251 + '.csv', raw)])\n"
        "out['counts'] = data.label_counts()\n"
        "out['fingerprint'] = fingerprint(data)\n"
        "out['n'] = data.n_beats\n"
    )
    r = peak_rss(script)
    assert r["n"] == 40_000 and sum(r["counts"].values()) == 40_000 and len(r["counts"]) == 5
    assert r["peak"] - r["base"] < 40, r
