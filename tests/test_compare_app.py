"""The dashboard's detector comparison, beat browsing, intervals, class names and exports, through AppTest."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from ecgviz.checkpoint.store import save_checkpoint
from ecgviz.dashboard import session
from ecgviz.io.data import load_files
from tests.test_app import APP, TIMEOUT, assert_clean


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tiny_files, tiny_ckpt):
    d = tmp_path_factory.mktemp("compare")
    path = save_checkpoint(tiny_ckpt, d / "tiny_start.pt")
    return {"data": load_files(tiny_files), "ckpt_path": path, "dir": d, "ckpt": tiny_ckpt}


@pytest.fixture(autouse=True)
def fresh_caches(monkeypatch, tiny):
    st.cache_data.clear()
    st.cache_resource.clear()
    monkeypatch.setenv(session.CHECKPOINT_ENV, str(tiny["ckpt_path"]))
    monkeypatch.setenv(session.CHECKPOINT_DIR_ENV, str(tiny["dir"]))
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def start(tiny) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["active_data"] = session.make_data(tiny["data"], "tiny")
    at.run()
    assert_clean(at)
    return at


def test_baselines_fit_with_a_click_and_the_explorer_switches_detector(tiny):
    at = start(tiny)
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
    at.number_input(key="beat_row").set_value(int(tiny["ckpt"].split.train[0]) + 1).run()
    assert any("a training beat" in c.value for c in at.caption)


def test_compare_page_table_and_disagreements_into_the_viewer(tiny):
    at = start(tiny)
    at.switch_page("pages/compare.py").run()
    at.button(key="compare_fit").click().run()
    assert_clean(at)
    areas, at_threshold = at.table[0].value, at.table[1].value  # static tables: they wrap and fit the page
    assert len(areas) == len(at_threshold) == 4
    assert list(areas.columns) == ["AUROC", "AP"]
    assert {"threshold", "balanced accuracy", "normal recall"} <= set(at_threshold.columns)
    # each area with its interval in one cell, so the table stays narrow
    active = session.evaluation(at.session_state["active_model"], at.session_state["active_data"], ["1"],
                                session.score(at.session_state["active_model"], at.session_state["active_data"])[0])
    assert areas["AUROC"].iloc[0].startswith(f"{active.roc_auc:.4f} [")
    # the paired-bootstrap verdict in words
    assert any(m.value.startswith(("**No clear winner", "**")) and "AUROC" in m.value for m in at.markdown)
    assert any("no significant difference" in m.value or "AUROC higher by" in m.value for m in at.markdown)
    for rule in ("max_f1", "youden", "same_fpr"):
        at.radio(key="compare_rule").set_value(rule).run()
        assert_clean(at)
    at.radio(key="compare_rule").set_value("label-free").run()
    a_only = int(at.metric[0].value.replace(",", ""))
    if a_only:
        at.button(key="view_a").click().run()
        at.switch_page("pages/explorer.py").run()
        assert_clean(at)
        assert at.selectbox(key="beat_mode").value == "disagreements"
        assert any(c.value == f"1 of {a_only} disagreements" for c in at.caption)


def test_false_alarms_browse_and_a_threshold_above_every_error(tiny):
    at = start(tiny)
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


def test_class_names_reach_the_export_and_the_json_names_the_detector(tiny, downloads):
    at = start(tiny)
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


def test_model_page_lists_saved_models_of_any_kind(tiny):
    from ecgviz.detectors import baselines as detectors
    from ecgviz.pipeline.protocol import fit_detector

    save_checkpoint(fit_detector(tiny["data"], detectors.KNNDistance(3), ["1"]), tiny["dir"] / "knn3.pt")
    at = start(tiny)
    at.switch_page("pages/model.py").run()
    assert_clean(at)
    listed = at.table[0].value
    assert {"LSTM autoencoder (embedding 4)", "kNN-3 (L2)"} <= set(listed["detector"])
    assert listed["AUROC"].str.match(r"^[01]\.\d{4} \[").all()  # every model's AUROC, with its interval


def test_other_normal_labels_are_noticed_and_can_be_switched_back(tiny):
    at = start(tiny)
    at.session_state["normal_labels"] = ["1", "3"]
    at.run()
    assert any("trained with normal label(s) 1" in w.value for w in at.warning)
    at.button(key="normals_back").click().run()
    assert_clean(at)
    assert at.session_state["normal_labels"] == ["1"]
    assert not any("trained with normal label" in w.value for w in at.warning)


def test_copies_are_reported_on_the_data_page(tiny):
    from ecgviz.io.data import BeatData

    d = tiny["data"]
    X = np.vstack([d.X, d.X[:2]])
    copies = BeatData(X, np.r_[d.labels, d.labels[:2]], dict(d.class_names), np.r_[d.sources, ["again.arff"] * 2],
                      np.r_[d.rows, [1, 2]])
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["active_data"] = session.make_data(copies, "copies")
    at.run()
    at.switch_page("pages/data.py").run()
    assert any("2 beat(s) are exact copies" in w.value and "again.arff row 1" in w.value for w in at.warning)
