"""Tests for ecgviz.pipeline.export: exact CSV round trips and formula neutralisation."""

import io
import json
import re

import numpy as np
import pandas as pd
import pytest

from ecgviz.evaluation.metrics import at_threshold
from ecgviz.io.data import BeatData
from ecgviz.pipeline import export

INJECTIONS = ["=cmd|' /C calc'!A0", "+1", "-2+3", "@SUM(1)", "\t=1", "\r=1"]
ERRORS = np.array([0.1 + 0.2, 1 / 3, 1e-300, 12345.678901234567, 2.5, 7.0])
THRESHOLD = 1 / 3


def _beats(labels):
    """Six 4-sample beats with awkward floats, negatives and hostile file names."""
    X = np.array([[0.1, -1.5, 3.4028235e38, -1.2345678e-5],
                  [-0.0, 1 / 3, -2.0, 1e-45],
                  [0.5, -0.25, 123456.79, -7.0],
                  [1.0, 2.0, 3.0, 4.0],
                  [-1.0, -2.0, -3.0, -4.0],
                  [np.pi, -np.e, 0.0, 9.5]], dtype=np.float32)
    X.flags.writeable = False
    names = {"1": "Normal", "-1": "Minus one", "=1+1": "@evil", "-2+3": "+x"}
    return BeatData(X=X, labels=None if labels is None else np.array(labels), class_names=names,
                    sources=np.array(INJECTIONS), rows=np.arange(1, 7, dtype=np.int64), warnings=())


@pytest.fixture(scope="module")
def data():
    return _beats(["1", "-1", "=1+1", "-2+3", "1", "7"])


@pytest.fixture(scope="module")
def table(data):
    return export.beat_table(data, ERRORS, THRESHOLD, include_samples=True)


def _read(raw: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(raw), keep_default_na=False, dtype={"source": str, "label": str, "class_name": str})


def test_beat_table_columns_and_values(table, data):
    assert list(table.columns) == [*export.TABLE_COLUMNS, "s1", "s2", "s3", "s4"]
    assert len(table) == 6
    assert table["flagged"].tolist() == [False, False, False, True, True, True]  # 1/3 is not > 1/3
    assert table["class_name"].tolist() == ["Normal", "Minus one", "@evil", "+x", "Normal", "Class 7"]
    assert table["row"].tolist() == [1, 2, 3, 4, 5, 6]
    assert (table["threshold"] == THRESHOLD).all()
    np.testing.assert_array_equal(table[["s1", "s2", "s3", "s4"]].to_numpy(), data.X)


def test_flagged_only_and_plain_table(data):
    flagged = export.beat_table(data, ERRORS, THRESHOLD, flagged_only=True)
    assert list(flagged.columns) == list(export.TABLE_COLUMNS)
    assert flagged["row"].tolist() == [4, 5, 6] and flagged.index.tolist() == [0, 1, 2]
    assert len(export.beat_table(data, ERRORS, 1e6, flagged_only=True)) == 0
    assert len(_read(export.to_csv(flagged))) == 3


def test_csv_round_trips_exactly(table, data):
    back = _read(export.to_csv(table))
    assert len(back) == len(table) == 6
    assert back["error"].dtype == np.float64
    np.testing.assert_array_equal(back["error"].to_numpy(), ERRORS)
    np.testing.assert_array_equal(back["threshold"].to_numpy(), np.full(6, THRESHOLD))
    np.testing.assert_array_equal(back["row"].to_numpy(), np.arange(1, 7))
    assert back["flagged"].tolist() == table["flagged"].tolist()
    samples = back[["s1", "s2", "s3", "s4"]].to_numpy().astype(np.float32)
    np.testing.assert_array_equal(samples, data.X)
    assert np.signbit(samples[1, 0])  # -0.0 survives


def test_text_cells_are_neutralised(table):
    back = _read(export.to_csv(table))
    assert back["source"].tolist() == ["'" + s for s in INJECTIONS]
    assert back["label"].tolist() == ["1", "-1", "'=1+1", "'-2+3", "1", "7"]
    assert back["class_name"].tolist() == ["Normal", "Minus one", "'@evil", "'+x", "Normal", "Class 7"]


def test_numbers_are_not_neutralised(table, data):
    text = export.to_csv(table).decode("utf-8")
    assert "'-" not in text.replace("'-2+3", "")
    back = _read(text.encode())
    assert (back[["s1", "s2", "s3", "s4"]].to_numpy() < 0).sum() == (data.X < 0).sum() == 10
    assert ",-1.5," in text and ",-7.0\r\n" in text
    assert all(pd.api.types.is_float_dtype(back[c]) for c in ("s1", "s2", "s3", "s4", "error"))


def test_unlabelled_table_has_empty_label_columns():
    table = export.beat_table(_beats(None), ERRORS, THRESHOLD)
    back = _read(export.to_csv(table))
    assert back["label"].tolist() == [""] * 6 and back["class_name"].tolist() == [""] * 6


def test_write_csv(table, tmp_path):
    path = tmp_path / "out.csv"
    export.write_csv(table, path)
    assert path.read_bytes() == export.to_csv(table)


def test_errors_shape_checked(data):
    with pytest.raises(ValueError):
        export.beat_table(data, ERRORS[:3], THRESHOLD)


@pytest.mark.parametrize(("prefix", "threshold", "expected"), [
    ("ecgviz_flagged", 0.43214, "ecgviz_flagged_t0.4321.csv"),
    ("ecgviz_all", 25.3, "ecgviz_all_t25.3000.csv"),
    ("../etc/=x y", 1.0, "etc_x_y_t1.0000.csv"),
    ("///", 0.5, "ecgviz_t0.5000.csv"),
])
def test_export_filename(prefix, threshold, expected):
    name = export.export_filename(prefix, threshold)
    assert name == expected
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", name)


def test_metrics_json():
    m = at_threshold([0.1, 0.5, 0.9], [False, False, False], 0.3, ["1", "1", "1"])
    extra = {"model": "ecg", "auc": None, "n": np.int64(3), "loss": np.float32(np.nan), "t": np.array([1.5])}
    out = json.loads(export.metrics_json(m, extra))
    assert out["metrics"] == m.to_dict() and out["metrics"]["anomaly_recall"] is None
    assert (out["model"], out["auc"], out["n"], out["loss"], out["t"]) == ("ecg", None, 3, None, [1.5])
    assert json.loads(export.metrics_json(m)) == {"metrics": m.to_dict()}
    with pytest.raises(ValueError):
        export.metrics_json(m, {"metrics": 1})
