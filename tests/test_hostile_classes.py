"""Many classes, and a normal class other than the one the data calls "Normal" (issue: hardening, findings 5, 11).

2,000 labels used to crash the threshold chart and draw 2,004 metric cards; 20,000 sent megabytes on every run.
With class 2 chosen as normal on ECG5000, class 1 kept the name "Normal" and its recall curve replaced the normal
beats' curve under that name.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from ecgviz.dashboard import config, explore, livechart, session
from ecgviz.dashboard.classes import MAX_OPTIONS, MAX_SHOWN, OTHER_COLOR, class_view
from ecgviz.dashboard.figures import NORMAL_COLOR
from ecgviz.evaluation import metrics
from ecgviz.io.data import ECG5000_CLASS_NAMES, BeatData, load_ecg5000
from tests.helpers import synthetic_beats

APP = str(Path(__file__).resolve().parent.parent / "app.py")
ECG5000_COUNTS = {"1": 2919, "2": 1767, "3": 96, "4": 194, "5": 24}
MAX_GROUPS = MAX_SHOWN + 2  # the normals, the largest abnormal classes, the pooled rest


def many_classes(n_classes: int, length: int = 24, seed: int = 0) -> BeatData:
    """300 normal beats (label "1"), two larger abnormal classes and `n_classes` one-beat classes."""
    X, _ = synthetic_beats(n_normal=300 + 70 + n_classes, n_anomaly=0, length=length, seed=seed)
    X[300:] += np.random.default_rng(seed).normal(0, 1, (len(X) - 300, 1)).astype(X.dtype)  # abnormal: shifted
    labels = ["1"] * 300 + ["2"] * 40 + ["3"] * 30 + [f"c{i:05d}" for i in range(n_classes)]
    return BeatData(X, labels, {}, ["many.arff"] * len(X), np.arange(len(X)))


def sent_bytes(at: AppTest) -> int:
    """Bytes of every element the last run drew (what the server sends the browser, less framing)."""
    total = 0
    stack = [at._tree]
    while stack:
        node = stack.pop()
        proto = getattr(node, "proto", None)
        if proto is not None and hasattr(proto, "ByteSize"):
            total += proto.ByteSize()
        stack.extend(getattr(node, "children", {}).values())
    return total


# --- names and colours follow the chosen normal (finding 11) ---------------------------------------------------------

def test_the_chosen_normal_class_is_called_normal_and_drawn_blue():
    default = class_view(ECG5000_COUNTS, ECG5000_CLASS_NAMES, ["1"])
    assert default.normal_name == "Normal" and default.name("1") == "Normal"
    assert default.colors["1"] == NORMAL_COLOR and NORMAL_COLOR not in [default.colors[k] for k in "2345"]

    two = class_view(ECG5000_COUNTS, ECG5000_CLASS_NAMES, ["2"])
    assert [g[:2] for g in two.groups()] == [("Normal (R-on-T PVC)", "normal"), ("Class 1", "anomaly"),
                                             ("PVC", "anomaly"), ("Supraventricular ectopic", "anomaly"),
                                             ("Unclassified", "anomaly")]
    assert two.colors["2"] == NORMAL_COLOR and NORMAL_COLOR not in [two.colors[k] for k in "1345"]
    assert len({two.colors[k] for k in "1345"}) == 4
    # several normals with names of their own are listed; a name chosen twice gets its label
    both = class_view(ECG5000_COUNTS, {**ECG5000_CLASS_NAMES, "5": "PVC"}, ["2", "4"])
    assert both.normal_name == "Normal (R-on-T PVC, Supraventricular ectopic)"
    assert (both.name("3"), both.name("5")) == ("PVC [3]", "PVC [5]")


def test_with_class_2_normal_no_abnormal_curve_is_called_normal_on_ecg5000():
    data = load_ecg5000()
    labels = data.labels
    errors = np.random.default_rng(0).gamma(2.0, 1.0, data.n_beats) + (labels != "2") * 1.5
    ev = explore.explorer_view(errors, labels, data.class_names, ["2"])
    curves = ev.recall_curves()
    assert list(curves) == ["Normal (R-on-T PVC)", "Class 1", "PVC", "Supraventricular ectopic", "Unclassified"]
    np.testing.assert_array_equal(curves["Normal (R-on-T PVC)"], ev.sweep.normal_recall)
    t = ev.sweep.thresholds
    # class 1's curve is class 1's recall (share above each threshold), worked out here by hand
    np.testing.assert_allclose(curves["Class 1"], (errors[labels == "1"][:, None] > t).mean(axis=0))
    normal_passed = (errors[labels == "2"][:, None] <= t).mean(axis=0)
    np.testing.assert_allclose(curves["Normal (R-on-T PVC)"], normal_passed)
    assert ev.curve_colors()["Normal (R-on-T PVC)"] == NORMAL_COLOR != ev.curve_colors()["Class 1"]

    payload = livechart.chart_base(ev, explore.slider_range(errors)).payload
    assert [(g["name"], g["kind"], g["total"]) for g in payload["groups"]][:2] == [
        ("Normal (R-on-T PVC)", "normal", 1767), ("Class 1", "anomaly", 2919)]
    series = {s["name"]: s["color"] for s in payload["hist"]["series"]}
    assert series["Normal (R-on-T PVC)"] == NORMAL_COLOR and series["Class 1"] != NORMAL_COLOR
    assert not any(name.startswith("Normal") for name in list(series)[1:])
    m = ev.metrics_at(float(np.median(errors)))
    assert [g[0] for g in ev.abnormal_groups(m)] == ["Class 1", "PVC", "Supraventricular ectopic", "Unclassified"]


# --- many classes are drawn in bounded form (finding 5) -------------------------------------------------------------

@pytest.mark.parametrize("n_classes", [2_000, 20_000])
def test_thousands_of_classes_make_a_bounded_chart(n_classes):
    data = many_classes(n_classes)
    errors = np.abs(data.X).sum(axis=1).astype(np.float64)
    ev = explore.explorer_view(errors, data.labels, data.class_names, ["1"])
    payload = livechart.chart_base(ev, explore.slider_range(errors)).payload
    size = len(json.dumps(payload))
    assert size < 120_000, size
    assert len(payload["groups"]) == len(payload["hist"]["series"]) == len(payload["curves"]["series"]) == \
        MAX_GROUPS
    names = [g["name"] for g in payload["groups"]]
    assert names[0] == "Normal" and names[-1] == f"Other ({n_classes + 2 - MAX_SHOWN:,} classes)"
    # the largest classes are drawn one by one, the pooled rest in grey, and every beat is in exactly one group
    assert names[1:3] == ["Class 2", "Class 3"] and payload["groups"][-1]["color"] == OTHER_COLOR
    assert sum(g["total"] for g in payload["groups"]) == data.n_beats
    assert ev.view.note().startswith(f"{n_classes + 2:,} abnormal classes: the {MAX_SHOWN} largest")
    # the pooled count agrees with the labels, worked out with pandas
    t = float(np.median(errors))
    m = ev.metrics_at(t)
    table = pd.DataFrame({"label": data.labels, "flagged": errors > t})
    pooled = table[table.label.isin(ev.view.other)]
    assert ev.abnormal_groups(m)[-1][1:3] == (int(pooled.flagged.sum()), len(pooled))
    caveats = " ".join(ev.caveats())
    assert len(caveats) < 1_000 and f"and {n_classes + 2 - 6:,} more classes" in caveats


def test_per_class_counts_agree_with_pandas_for_thousands_of_classes():
    data = many_classes(3_000, seed=3)
    errors = np.random.default_rng(3).normal(size=data.n_beats)
    is_anomaly = data.labels != "1"
    table = pd.DataFrame({"label": data.labels, "e": errors})
    for t in (-1.0, 0.0, 0.7):
        want = table.assign(f=table.e > t).groupby("label").f.agg(["sum", "size"])
        expected = {k: (int(r["sum"]), int(r["size"])) for k, r in want.iterrows()}
        fast = metrics.SortedErrors(errors, is_anomaly, data.labels).at(t)
        direct = metrics.at_threshold(errors, is_anomaly, t, data.labels)
        assert fast.class_counts == direct.class_counts == expected
        assert list(fast.class_recall) == list(direct.class_recall) == [k for k in expected if k != "1"]
    sweep = metrics.SortedErrors(errors, is_anomaly, data.labels).sweep(np.array([0.0, 0.5]), classes=["2", "c00007"])
    assert list(sweep.class_recall) == ["2", "c00007"]
    np.testing.assert_allclose(sweep.class_recall["2"], [(errors[data.labels == "2"] > x).mean() for x in (0, 0.5)])


@pytest.mark.parametrize("n_classes", [2_000, 20_000])
def test_the_explorer_draws_a_few_cards_and_sends_little_for_thousands_of_classes(tiny_app, n_classes):
    at = AppTest.from_file(APP, default_timeout=180)
    beats = many_classes(n_classes, length=tiny_app["ckpt"].seq_len)
    at.session_state["active_data"] = session.make_data(beats, "many")
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.exception or at.error]
    chart = json.loads(at.get("bidi_component")[0].proto.json)[0]
    assert len(chart["groups"]) == MAX_GROUPS
    cards = [m.label for m in at.metric]
    per_class = cards[4:-1]  # after the four summary cards, before the beat viewer's error
    assert per_class == ["Class 2", "Class 3"] + [f"Class c{i:05d}" for i in range(MAX_SHOWN - 2)] + \
        [f"Other ({n_classes + 2 - MAX_SHOWN:,} classes)"], cards
    assert any(f"{n_classes + 2:,} abnormal classes: the 7 largest" in c.value for c in at.caption)
    assert len(at.selectbox(key="beat_class").options) == MAX_OPTIONS
    # what one run sends does not grow with the classes (2,000 used to send 8.7 MB of chart data alone)
    assert sent_bytes(at) < 200_000, sent_bytes(at)


def _mean_colors(at: AppTest) -> dict[str, str]:
    """Class preview title -> colour of its mean line, as the Data page drew them."""
    out = {}
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        mean = [t for t in spec["data"] if t.get("name") == "mean"]
        out[spec["layout"]["title"]["text"]] = mean[0]["line"]["color"]
    return out


def test_class_2_as_normal_renames_and_recolours_class_1_on_ecg5000():
    """The built-in data and model, class 2 chosen as normal on the Data page: names and colours follow."""
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.switch_page("pages/data.py").run()
    assert _mean_colors(at)["Normal (1): 2,919 beats"] == NORMAL_COLOR
    at.multiselect(key="normals_widget").set_value(["2"]).run()
    assert not at.exception and not at.error
    colors = _mean_colors(at)
    assert colors["R-on-T PVC (2): 1,767 beats"] == NORMAL_COLOR
    assert colors["Class 1 (1): 2,919 beats"] not in (NORMAL_COLOR, colors["PVC (3): 96 beats"])
    assert not any(title.startswith("Normal") for title in colors)

    at.switch_page("pages/explorer.py").run()
    assert not at.exception
    chart = json.loads(at.get("bidi_component")[0].proto.json)[0]
    assert [(g["name"], g["kind"]) for g in chart["groups"]] == [
        ("Normal (R-on-T PVC)", "normal"), ("Class 1", "anomaly"), ("PVC", "anomaly"),
        ("Supraventricular ectopic", "anomaly"), ("Unclassified", "anomaly")]
    assert [s["name"] for s in chart["curves"]["series"]] == [g["name"] for g in chart["groups"]]
    assert chart["curves"]["series"][0]["color"] == NORMAL_COLOR != chart["curves"]["series"][1]["color"]
    cards = [m.label for m in at.metric]
    assert cards[4:8] == ["Class 1", "PVC", "Supraventricular ectopic", "Unclassified"], cards
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.mark.browser
def test_the_threshold_chart_draws_2000_classes_in_a_browser(chromium, tmp_path):
    """A real server and Chromium: the upload of 2,000 classes draws the chart (it used to overflow the call stack)."""
    from playwright.sync_api import expect, sync_playwright

    from tests.browser_support import StreamlitServer, launch_browser, wait_idle
    from tests.helpers import write_arff

    data = many_classes(2_000, length=140)
    upload = write_arff(tmp_path / "many_classes.arff", data.X, data.labels)
    env = {config.CHECKPOINT_ENV: None, config.CHECKPOINT_DIR_ENV: str(tmp_path / "ckpt"), "OMP_NUM_THREADS": "1"}
    errors: list[str] = []
    with StreamlitServer(APP, env=env) as server, sync_playwright() as p:
        browser = launch_browser(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(90_000)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(server.url + "data")
            wait_idle(page)
            page.locator("[data-testid=stFileUploader] input[type=file]").first.set_input_files(str(upload))
            wait_idle(page)
            page.goto(server.url + "?" + page.url.split("?", 1)[1])  # the explorer is the default page
            wait_idle(page)
            expect(page.locator(".ecgviz-tc-readout")).to_contain_text("anomalies caught")
            curves = page.locator("polyline.ecgviz-tc-curve title").all_text_contents()
            cards = page.locator("[data-testid=stMetricLabel]").all_inner_texts()
            assert page.locator("[data-testid=stException]").count() == 0
        finally:
            browser.close()
    assert not errors, errors
    assert curves == ["Normal", "Class 2", "Class 3"] + [f"Class c{i:05d}" for i in range(MAX_SHOWN - 2)] + \
        [f"Other ({2_000 + 2 - MAX_SHOWN:,} classes)"]
    assert len(cards) == 4 + MAX_SHOWN + 1 + 1, cards  # summary, drawn classes, the rest, the beat's error


def test_a_class_renamed_on_the_data_page_is_renamed_in_the_chart(tiny_app, tiny_data):
    """The chart's data is cached per slider range; the class names are part of its key, so a rename reaches it."""
    at = AppTest.from_file(APP, default_timeout=180)
    data = session.make_data(tiny_data, "tiny")
    at.session_state["active_data"] = data
    at.run()
    names = [g["name"] for g in json.loads(at.get("bidi_component")[0].proto.json)[0]["groups"]]
    assert names == ["Normal", "Class 2", "Class 3"]
    at.session_state["active_data"] = data.with_names({"2": "Spiky"})
    at.run()
    assert not at.exception
    chart = json.loads(at.get("bidi_component")[0].proto.json)[0]
    assert [g["name"] for g in chart["groups"]] == [s["name"] for s in chart["curves"]["series"]] == \
        ["Normal", "Spiky", "Class 3"]
    assert "Spiky" in [m.label for m in at.metric]


def test_the_compare_table_has_a_column_per_drawn_group_not_per_label(tiny_app):
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["active_data"] = session.make_data(many_classes(2_000, length=tiny_app["ckpt"].seq_len), "many")
    at.run()
    at.switch_page("pages/compare.py").run()
    at.button(key="compare_fit").click().run()
    assert not at.exception and not at.error, [e.value for e in at.exception or at.error]
    table = at.table[1].value  # the second table: figures at each detector's threshold
    recall = [c for c in table.columns if c.endswith(" recall") and c != "normal recall"]
    assert recall == ["Class 2 recall", "Class 3 recall"] + [f"Class c{i:05d} recall" for i in range(MAX_SHOWN - 2)] \
        + ["Other (1,995 classes) recall"], list(table.columns)
    assert len(table) == 4 and table["Other (1,995 classes) recall"].str.match(r"^\d+\.\d% \[").all()
