"""Flagged beats counted and listed alike: the held-out count first, the table's rows, order and columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecgviz.checkpoint.store import SHIPPED_CHECKPOINT
from ecgviz.dashboard import explore, flagged, session
from ecgviz.evaluation import metrics
from ecgviz.io.recording import read_recording
from ecgviz.signal.beats import cut_beats

MITDB = Path(__file__).resolve().parent.parent / "data" / "mitdb"


@pytest.fixture(scope="module")
def shipped():
    """The shipped model on the bundled data, as the explorer evaluates it, and an independent reference."""
    model = session.model_from_path(SHIPPED_CHECKPOINT, source="shipped")
    data = session.builtin_data()
    errors = session.scores(model, data)
    ev = session.explorer_view(model, data, ["1"], errors)
    idx, is_anomaly = model.ckpt.split.eval_indices()
    return model, data, ev, errors, idx, is_anomaly


def test_the_held_out_count_is_the_explorers_and_the_rest_is_labelled_by_role(shipped):
    model, _, ev, errors, idx, is_anomaly = shipped
    t = model.ckpt.threshold
    m = metrics.at_threshold(errors[idx], is_anomaly, t)
    c = flagged.counts(ev, t)
    assert c.held_out == m.tp + m.fp == 2059  # the figure the issue names for the bundled data
    assert c.held_out_total == len(idx) == 2300
    assert c.all == int((errors > t).sum()) and c.all_total == 5000
    assert sum(c.by_role.values()) == c.all and c.by_role["held-out"] == c.held_out
    train, val = model.ckpt.split.train, model.ckpt.split.val
    assert c.by_role["train"] == int((errors[train] > t).sum()) and c.by_role["validation"] == int(
        (errors[val] > t).sum())
    assert c.headline().startswith("2,059 of 2,300 held-out beats are flagged")
    assert "2,122 of 5,000" in c.others() and f"{c.by_role['train']:,} training" in c.others()
    assert flagged.stored_counts(model.ckpt.metrics) == (2059, 2300)  # what the Model page states


def test_beats_the_model_never_trained_on_are_all_held_out():
    rng = np.random.default_rng(0)
    errors, labels = rng.random(40), np.array(["1"] * 30 + ["2"] * 10)
    ev = explore.explorer_view(errors, labels, {}, ["1"])
    c = flagged.counts(ev, 0.5)
    assert c.held_out == c.all == int((errors > 0.5).sum()) and c.others() is None
    assert "all held out" in c.headline()


def test_the_default_table_lists_the_held_out_flagged_beats_by_margin(shipped):
    model, data, ev, errors, idx, is_anomaly = shipped
    t = model.ckpt.threshold
    rows = flagged.select(ev, data.data, t, limit=5000)
    assert rows.n_matching == len(rows.idx) == 2059
    assert set(rows.idx) == set(idx[errors[idx] > t])
    first = flagged.select(ev, data.data, t)
    assert len(first.idx) == flagged.MAX_ROWS and first.n_matching == 2059
    assert np.array_equal(first.idx, rows.idx[:flagged.MAX_ROWS])  # the cut keeps the largest margins
    cols = flagged.table(rows, flagged.columns_for(data.data))
    assert list(cols) == ["beat", "file", "row", "class", "error", "margin", "split role", "outcome"]
    assert np.all(np.diff(cols["margin"]) <= 0) and np.all(cols["margin"] > 0)
    np.testing.assert_allclose(cols["margin"], errors[rows.idx] - t)
    assert set(cols["split role"]) == {"held-out"}
    anomaly = dict(zip(idx.tolist(), is_anomaly.tolist(), strict=True))
    assert list(cols["outcome"]) == ["caught" if anomaly[i] else "false alarm" for i in rows.idx]
    shown = flagged.frame(rows, flagged.columns_for(data.data))
    assert shown["class"].dtype == "category" and shown["margin"].tolist() == cols["margin"].tolist()
    first = int(rows.idx[0])
    assert cols["beat"][0] == first + 1 and cols["row"][0] == data.data.rows[first]
    assert cols["class"][0] == f"{ev.name(data.data.labels[first])} ({data.data.labels[first]})"


def test_filters_by_outcome_role_and_class(shipped):
    model, data, ev, errors, idx, is_anomaly = shipped
    t = model.ckpt.threshold
    m = metrics.at_threshold(errors[idx], is_anomaly, t, data.data.labels[idx])
    alarms = flagged.select(ev, data.data, t, flagged.Query(outcomes=("FP",)))
    assert alarms.n_matching == m.fp
    everything = flagged.select(ev, data.data, t, flagged.Query(roles=()))
    assert everything.n_matching == int((errors > t).sum())
    outside = flagged.select(ev, data.data, t, flagged.Query(roles=("train", "validation")))
    assert set(flagged.table(outside, flagged.COLUMNS)["outcome"]) <= {flagged.NOT_IN_METRICS}
    pvc = flagged.select(ev, data.data, t, flagged.Query(labels=("3",)))
    assert pvc.n_matching == m.class_counts["3"][0]
    cut = flagged.select(ev, data.data, t, limit=10)
    assert len(cut.idx) == 10 and cut.n_matching == 2059
    by_error = flagged.select(ev, data.data, t, flagged.Query(order="error"), limit=5000)
    assert np.array_equal(by_error.idx, flagged.select(ev, data.data, t, limit=5000).idx)
    with pytest.raises(ValueError, match="order"):
        flagged.select(ev, data.data, t, flagged.Query(order="class"))


def test_beats_cut_from_a_recording_also_show_their_time():
    beats = cut_beats(read_recording(MITDB / "100"), 140)
    data = beats.data
    rng = np.random.default_rng(1)
    errors = rng.random(data.n_beats)
    ev = explore.explorer_view(errors, data.labels, dict(data.class_names), ["N"])
    rows = flagged.select(ev, data, 0.9, flagged.Query(order="time"))
    cols = flagged.table(rows, flagged.columns_for(data))
    assert list(cols)[-1] == "time (s)"
    np.testing.assert_allclose(cols["time (s)"], data.origin.times()[rows.idx])
    assert np.all(np.diff(cols["time (s)"]) > 0)
    assert rows.n_matching == int((errors > 0.9).sum())
