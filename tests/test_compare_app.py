"""The dashboard's detector comparison, beat browsing, intervals, class names and exports, through AppTest."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from ecgviz.checkpoint.store import save_checkpoint
from ecgviz.dashboard import compare, session
from ecgviz.dashboard.text import plain
from tests.app_support import APP, TIMEOUT, assert_clean, start

# every test starts the app with the tiny model and clean caches
pytestmark = pytest.mark.usefixtures("tiny_app")


def test_baselines_fit_with_a_click_and_the_explorer_switches_detector(tiny_app):
    at = start(tiny_app)
    at.button(key="fit_baselines").click().run()
    assert_clean(at)
    box = at.selectbox(key="detector_choice")
    assert len(box.options) == 4 and "kNN-5 (L1)" in box.options
    box.set_value(at.session_state["baselines"][1][0].id).run()
    assert_clean(at)
    model = at.session_state["active_model"]
    assert model.ckpt.kind == "knn" and at.session_state["threshold"] == model.ckpt.threshold
    # the beat viewer shows the nearest normals' mean beside the beat, and the beat's role
    at.selectbox(key="beat_mode").set_value("by row").run()
    at.number_input(key="beat_row").set_value(int(tiny_app["ckpt"].split.train[0]) + 1).run()
    assert any("a training beat" in c.value for c in at.caption)


def test_compare_page_table_and_disagreements_into_the_viewer(tiny_app):
    # the tiny data separates cleanly: at their stored thresholds the detectors agree on every beat, but at a
    # threshold passing only half the held-out normals each flags other normal beats
    data = session.make_data(tiny_app["data"], "tiny")
    primary = session.model_from_path(tiny_app["ckpt_path"])
    ev = session.explorer_view(primary, data, ["1"], session.scores(primary, data))
    threshold = float(np.median(ev.errors[ev.eval_idx][~ev.is_anomaly]))
    at = start(tiny_app)
    at.number_input(key="thr_number").set_value(threshold).run()
    at.switch_page("pages/compare.py").run()
    at.button(key="compare_fit").click().run()
    assert_clean(at)
    areas, at_threshold = at.table[0].value, at.table[1].value  # static tables: they wrap and fit the page
    assert len(areas) == len(at_threshold) == 4
    assert list(areas.columns) == ["AUROC", "AP"]
    assert {"threshold", "balanced accuracy", "normal recall"} <= set(at_threshold.columns)
    # each detector's row is what ecgviz computes for it on the same held-out beats, its interval in the same cell
    models = {m.id: m for m in [at.session_state["active_model"], *at.session_state["baselines"][1]]}
    entries = {i: compare.Entry(m.name, session.explorer_view(m, data, ["1"], session.scores(m, data)),
                                m.ckpt.threshold) for i, m in models.items()}
    shown = {name: cell.split(" [") for name, cell in areas["AUROC"].items()}
    assert {name: float(v) for name, (v, _) in shown.items()} == pytest.approx(
        {e.name: e.ev.roc_auc for e in entries.values()}, abs=5e-5)
    assert {name: float(cell.split(" [")[0]) for name, cell in areas["AP"].items()} == pytest.approx(
        {e.name: e.ev.average_precision for e in entries.values()}, abs=5e-5)
    # the paired-bootstrap verdict in words
    found = compare.verdicts(list(entries.values()))
    assert any(m.value == f"**{plain(compare.summary(found))}**" for m in at.markdown)
    assert all(plain(v.detail()) in " ".join(m.value for m in at.markdown) for v in found)
    for rule in ("label-free", "max_f1", "youden"):
        at.radio(key="compare_rule").set_value(rule).run()
        assert_clean(at)
    at.radio(key="compare_rule").set_value("same_fpr").run()
    # detector A against B at the explorer threshold's false-alarm rate: the disagreements ecgviz counts
    target = compare.fpr_at(ev, threshold)
    a, b = entries[at.selectbox(key="compare_a").value], entries[at.selectbox(key="compare_b").value]
    ta, tb = compare.threshold_for(a, "same_fpr", target), compare.threshold_for(b, "same_fpr", target)
    expected = compare.disagreement_counts(a, ta, b, tb, data.data.labels, ["1"])
    shown = [int(m.value.replace(",", "")) for m in at.metric[:2]]
    assert shown == [expected["a_only"], expected["b_only"]] and expected["a_only"] > 0
    at.button(key="view_a").click().run()
    at.switch_page("pages/explorer.py").run()
    assert_clean(at)
    assert at.selectbox(key="beat_mode").value == "disagreements"
    assert any(c.value == f"1 of {expected['a_only']} disagreements" for c in at.caption)


def test_false_alarms_browse_and_a_threshold_above_every_error(tiny_app):
    at = start(tiny_app)
    ev_t = at.session_state["threshold"]
    at.number_input(key="thr_number").set_value(float(np.nextafter(-1e9, 0))).run()  # flags everything
    at.selectbox(key="beat_mode").set_value("false alarms").run()
    assert_clean(at)
    counts = [c.value for c in at.caption if " false alarms" in c.value and " of " in c.value]
    n = int(counts[0].split(" of ")[1].split()[0].replace(",", ""))
    assert counts[0].startswith("1 of ")
    at.button(key="next_false alarms").click().run()
    assert any(c.value == f"{2 if n > 1 else 1} of {n} false alarms" for c in at.caption)
    # typed above the largest error: allowed, flags nothing, and precision is undefined rather than 0 %
    at.number_input(key="thr_number").set_value(1e6).run()
    assert_clean(at)
    assert at.session_state["threshold"] == 1e6 != ev_t
    values = {m.label: m.value for m in at.metric}
    assert values["Precision"] == "undefined" and values["Anomalies caught"].startswith("0 / ")


def test_class_names_reach_the_export_and_the_json_names_the_detector(tiny_app, downloads):
    at = start(tiny_app)
    at.switch_page("pages/data.py").run()
    assert_clean(at)
    # what the Data page's name column does on an edit (AppTest cannot type into a data editor)
    data = at.session_state["active_data"]
    at.session_state["active_data"] = data.with_names({"2": "Spiky", "3": ""})
    assert at.session_state["active_data"].class_name("3") == data.class_name("3")
    at.switch_page("pages/export.py").run()
    assert_clean(at)
    at.radio(key="export_rows").set_value("All beats").run()
    csv = next(v for k, v in downloads.items() if k.endswith(".csv") and "all" in k)
    table = pd.read_csv(io.BytesIO(csv), keep_default_na=False)
    assert set(table.loc[table.label == 2, "class_name"]) == {"Spiky"}
    assert {"split_role", "outcome"} <= set(table.columns)
    payload = json.loads(next(v for k, v in downloads.items() if k.endswith(".json")))
    assert payload["detector"].startswith("LSTM autoencoder") and payload["split_mode"] == "seed"
    assert payload["intervals_95"]["normal_recall"][0] <= payload["metrics"]["normal_recall"]
    assert payload["class_names"]["2"] == "Spiky" and payload["caveats"]
    from ecgviz.checkpoint.store import load_checkpoint

    assert load_checkpoint(downloads["tiny_start.pt"]).class_names["2"] == "Spiky"  # kept in the checkpoint too
    held = table[table.split_role == "held-out"]
    assert (held.outcome == "TP").sum() == payload["metrics"]["tp"]
    assert (held.outcome == "FP").sum() == payload["metrics"]["fp"]


def test_model_page_lists_saved_models_of_any_kind(tiny_app):
    from ecgviz.detectors import baselines as detectors
    from ecgviz.pipeline.protocol import fit_detector

    save_checkpoint(fit_detector(tiny_app["data"], detectors.KNNDistance(3), ["1"]), tiny_app["dir"] / "knn3.pt")
    at = start(tiny_app)
    at.switch_page("pages/model.py").run()
    assert_clean(at)
    listed = at.table[0].value
    assert {"LSTM autoencoder (embedding 4)", "kNN-3 (L2)"} <= set(listed["detector"])
    assert listed["AUROC"].str.match(r"^[01]\.\d{4} \[").all()  # every model's AUROC, with its interval


def test_other_normal_labels_are_noticed_and_can_be_switched_back(tiny_app):
    at = start(tiny_app)
    at.session_state["normal_labels"] = ["1", "3"]
    at.run()
    assert any("trained with normal label(s) 1" in w.value for w in at.warning)
    at.button(key="normals_back").click().run()
    assert_clean(at)
    assert at.session_state["normal_labels"] == ["1"]
    assert not any("trained with normal label" in w.value for w in at.warning)


def test_copies_are_reported_on_the_data_page(tiny_app):
    from ecgviz.io.data import BeatData

    d = tiny_app["data"]
    X = np.vstack([d.X, d.X[:2]])
    copies = BeatData(X, np.r_[d.labels, d.labels[:2]], dict(d.class_names), np.r_[d.sources, ["again.arff"] * 2],
                      np.r_[d.rows, [1, 2]])
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["active_data"] = session.make_data(copies, "copies")
    at.run()
    at.switch_page("pages/data.py").run()
    assert any("2 beat(s) are exact copies" in w.value and "again.arff row 1" in w.value for w in at.warning)
