"""The browser-side threshold chart: the payload livechart builds, and the JavaScript that shows it (run in Node),
whose counts at every slider position must be the metrics' exact counts."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ecgviz.dashboard import explore, livechart
from ecgviz.dashboard.explore import SliderRange
from ecgviz.evaluation import metrics

ROOT = Path(__file__).resolve().parent.parent
CHART_JS = ROOT / "pages" / "common" / "threshold_chart" / "chart.js"
HARNESS = ROOT / "tests" / "js" / "threshold_chart.mjs"


@pytest.fixture(scope="module")
def labelled():
    rng = np.random.default_rng(3)
    errors = np.r_[rng.gamma(2, 2, 300), rng.gamma(6, 3, 120), rng.gamma(9, 3, 40)]
    labels = np.array(["1"] * 300 + ["2"] * 120 + ["3"] * 40)
    ev = explore.explorer_view(errors, labels, {"1": "Normal", "2": "PVC"}, ["1"], n_bins=30)
    return ev, explore.slider_range(errors)


def run_chart(data: dict, values) -> dict:
    """What chart.js shows when mounted with `data` and its slider moved to each of `values`."""
    node = shutil.which("node")
    if node is None:  # as for Chromium: a skip on a developer's machine, a failure under CI
        reason = "Node.js not found: the chart's JavaScript runs in it (`apt-get install nodejs`)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    done = subprocess.run([node, str(HARNESS), str(CHART_JS)], input=json.dumps({"data": data, "values": list(values)}),
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_grid_is_every_slider_value():
    g = livechart.grid(SliderRange(lo=1.0, hi=2.0, step=0.25))
    np.testing.assert_allclose(g, [1.0, 1.25, 1.5, 1.75, 2.0])
    assert len(livechart.grid(SliderRange(lo=0.0, hi=1e9, step=1.0))) == livechart.MAX_GRID


def test_the_chart_shows_the_metrics_counts_at_every_slider_position(labelled):
    ev, rng = labelled
    data = livechart.chart_data(livechart.chart_base(ev, rng), 10.0, revision=0)
    assert [g["name"] for g in data["groups"]] == ["Normal", "PVC", "Class 3"]
    assert [g["kind"] for g in data["groups"]] == ["normal", "anomaly", "anomaly"]
    grid = livechart.grid(rng)
    # every slider position, and values between positions (the slider snaps them to the nearest one)
    values = [*grid.tolist(), *(grid[:-1] + 0.4 * rng.step).tolist()]
    shown = run_chart(data, values)
    assert float(shown["slider"]["min"]) == rng.lo and float(shown["slider"]["step"]) == rng.step
    for move in shown["moves"]:
        t = grid[np.argmin(np.abs(grid - move["value"]))]
        m = metrics.at_threshold(ev.errors, ev.eval_labels != "1", t, ev.eval_labels)
        hits = {mk["name"]: (mk["hit"], mk["total"]) for mk in move["markers"]}
        # normal beats passed, anomalies of each class caught
        assert hits == {"Normal": (m.tn, m.n_normal), "PVC": (m.class_counts["2"][0], 120),
                        "Class 3": (m.class_counts["3"][0], 40)}, move["value"]
        assert f"normal beats passed <b>{m.tn:,} / {m.n_normal:,}</b>" in move["readout"]
        assert f"anomalies caught <b>{m.tp:,} / {m.n_anomaly:,}</b>" in move["readout"]
    # the resting slider's value goes to the server, once
    assert [k for k, _ in shown["sent"]] == ["threshold"] and shown["sent"][0][1]["value"] == values[-1]


def test_a_threshold_the_server_set_off_the_grid_shows_its_own_exact_counts(labelled):
    ev, rng = labelled
    base = livechart.chart_base(ev, rng)
    t = float(np.sort(ev.errors)[200])  # a beat's own error: flagged only when strictly above
    data = livechart.chart_data(base, t, revision=7)
    m = ev.metrics_at(t)
    assert data["threshold"] == t and data["revision"] == 7
    assert data["at"] == [m.fp, m.class_counts["2"][0], m.class_counts["3"][0]]
    assert "at" not in base.payload  # the cached part never changes with the threshold
    shown = run_chart(data, [])
    assert float(shown["slider"]["value"]) == t and shown["sent"] == []
    assert {mk["name"]: mk["hit"] for mk in shown["initial"]["markers"]} == {
        "Normal": m.tn, "PVC": m.class_counts["2"][0], "Class 3": m.class_counts["3"][0]}


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


def test_unlabelled_data_shows_beats_flagged_and_no_curves():
    errors = np.linspace(0, 10, 50)
    ev = explore.explorer_view(errors, None, {}, [])
    data = livechart.chart_data(livechart.chart_base(ev, explore.slider_range(errors)), 5.0, revision=0)
    assert data["curves"] is None
    assert [g["kind"] for g in data["groups"]] == ["all"]
    flagged = int(np.count_nonzero(errors > 5.0))
    assert data["at"] == [flagged]
    shown = run_chart(data, [])
    assert f"beats flagged <b>{flagged} / 50</b>" in shown["initial"]["readout"] and shown["initial"]["markers"] == []
