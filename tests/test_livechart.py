"""The browser-side chart's data: exact counts at every slider position, and at off-grid thresholds."""

import json

import numpy as np
import pytest

from ecgviz.dashboard import explore, livechart
from ecgviz.dashboard.explore import SliderRange
from ecgviz.evaluation import metrics


@pytest.fixture(scope="module")
def labelled():
    rng = np.random.default_rng(3)
    errors = np.r_[rng.gamma(2, 2, 300), rng.gamma(6, 3, 120), rng.gamma(9, 3, 40)]
    labels = np.array(["1"] * 300 + ["2"] * 120 + ["3"] * 40)
    ev = explore.explorer_view(errors, labels, {"1": "Normal", "2": "PVC"}, ["1"], n_bins=30)
    return ev, explore.slider_range(errors)


def test_grid_is_every_slider_value():
    g = livechart.grid(SliderRange(lo=1.0, hi=2.0, step=0.25))
    np.testing.assert_allclose(g, [1.0, 1.25, 1.5, 1.75, 2.0])
    assert len(livechart.grid(SliderRange(lo=0.0, hi=1e9, step=1.0))) == livechart.MAX_GRID


def test_counts_at_every_grid_value_equal_the_metrics(labelled):
    ev, rng = labelled
    data = livechart.chart_data(livechart.chart_base(ev, rng), 10.0, revision=0)
    assert [g["name"] for g in data["groups"]] == ["Normal", "PVC", "Class 3"]
    assert [g["kind"] for g in data["groups"]] == ["normal", "anomaly", "anomaly"]
    for t in livechart.grid(rng):
        m = metrics.at_threshold(ev.errors, ev.eval_labels != "1", t, ev.eval_labels)
        got = livechart.counts_at(data, t)
        assert got == {"Normal": m.fp, "PVC": m.class_counts["2"][0], "Class 3": m.class_counts["3"][0]}


def test_off_grid_threshold_carries_its_own_exact_counts(labelled):
    ev, rng = labelled
    base = livechart.chart_base(ev, rng)
    t = float(np.sort(ev.errors)[200])  # a beat's own error: flagged only when strictly above
    data = livechart.chart_data(base, t, revision=7)
    m = ev.metrics_at(t)
    assert data["threshold"] == t and data["revision"] == 7
    assert data["at"] == [m.fp, m.class_counts["2"][0], m.class_counts["3"][0]]
    assert "at" not in base.payload  # the cached part never changes with the threshold


def test_payload_is_plain_json_with_curves_matching_groups(labelled):
    ev, rng = labelled
    data = livechart.chart_data(livechart.chart_base(ev, rng), 12.5, revision=1, log_y=True)
    back = json.loads(json.dumps(data, allow_nan=False))
    assert back["log_y"] is True
    assert [s["name"] for s in back["curves"]["series"]] == [g["name"] for g in back["groups"]]
    assert len(back["hist"]["edges"]) == 31
    assert sum(sum(s["counts"]) for s in back["hist"]["series"]) == len(ev.errors)
    totals = {g["name"]: g["total"] for g in back["groups"]}
    assert totals == {"Normal": 300, "PVC": 120, "Class 3": 40}
    # monotone: raising the threshold never flags more beats
    assert all(np.all(np.diff(g["above"]) <= 0) for g in back["groups"])


def test_unlabelled_data_has_one_group_and_no_curves():
    errors = np.linspace(0, 10, 50)
    ev = explore.explorer_view(errors, None, {}, [])
    data = livechart.chart_data(livechart.chart_base(ev, explore.slider_range(errors)), 5.0, revision=0)
    assert data["curves"] is None
    assert [g["kind"] for g in data["groups"]] == ["all"]
    assert data["at"] == [int(np.count_nonzero(errors > 5.0))]
