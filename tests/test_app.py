"""The dashboard driven through Streamlit's AppTest: every page, with values checked against ecgviz."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from ecgviz.checkpoint.store import SHIPPED_CHECKPOINT, save_checkpoint
from ecgviz.dashboard import config, explore, session
from ecgviz.evaluation import metrics
from ecgviz.io.data import load_files
from tests.app_support import APP, TIMEOUT, assert_clean, metric_values, start
from tests.helpers import synthetic_beats, write_arff

# every test starts the app with the tiny model and clean caches
pytestmark = pytest.mark.usefixtures("tiny_app")


def expected_metrics(tiny_app, threshold: float):
    """What ecgviz.evaluation.metrics says for the explorer's evaluation set at a threshold."""
    model = session.model_from_path(tiny_app["ckpt_path"])
    data = session.make_data(tiny_app["data"], "tiny")
    errors = session.scores(model, data)
    idx, _ = explore.evaluation_beats(data.data.n_beats, data.data.labels, ["1"], model.ckpt.split, True)
    labels = data.data.labels[idx]
    return metrics.at_threshold(errors[idx], labels != "1", threshold, labels), errors


def chart(at: AppTest) -> dict:
    """The data the explorer sends to its browser-side threshold chart."""
    return json.loads(at.get("bidi_component")[0].proto.json)[0]  # the payload is sent inside a list


def arff_bytes(tmp_path: Path, name: str, X: np.ndarray, labels=None) -> bytes:
    return write_arff(tmp_path / name, X, labels).read_bytes()


def test_explorer_is_the_default_page_with_charts_and_metrics(tiny_app):
    at = start(tiny_app)
    assert at.title[0].value == "Threshold explorer"
    assert len(at.get("plotly_chart")) == 4  # ROC, PR, confusion, beat; the histogram is the threshold chart
    threshold = at.session_state["threshold"]
    m, _ = expected_metrics(tiny_app, threshold)
    data = chart(at)
    assert data["threshold"] == pytest.approx(threshold)
    # the chart's exact counts at the threshold: normal beats above it, then each abnormal class
    assert data["at"] == [m.fp] + [m.class_counts[k][0] for k in ("2", "3")]
    assert [g["name"] for g in data["groups"]] == ["Normal", "Class 2", "Class 3"]
    values = metric_values(at)
    assert values["Normal beats passed"] == f"{m.tn:,} / {m.n_normal:,}"
    assert values["Anomalies caught"] == f"{m.tp:,} / {m.n_anomaly:,}"
    sidebar = " ".join(c.value for c in at.sidebar.caption)
    assert "tiny" in sidebar and f"{threshold:.4g}" in sidebar


def test_a_typed_threshold_recomputes_the_metrics_and_moves_the_chart(tiny_app):
    at = start(tiny_app)
    _, errors = expected_metrics(tiny_app, 0.0)
    revision = chart(at)["revision"]
    for value in np.quantile(errors, [0.2, 0.5, 0.8]):
        at.number_input(key="thr_number").set_value(float(value)).run()
        assert_clean(at)
        m, _ = expected_metrics(tiny_app, value)
        values = metric_values(at)
        assert at.session_state["threshold"] == pytest.approx(value)
        data = chart(at)
        assert data["threshold"] == pytest.approx(value)
        assert data["revision"] > revision  # set by the server: the chart must adopt it
        revision = data["revision"]
        assert data["at"] == [m.fp] + [m.class_counts[k][0] for k in ("2", "3")]
        assert values["Normal beats passed"] == f"{m.tn:,} / {m.n_normal:,}"
        assert values["Anomalies caught"] == f"{m.tp:,} / {m.n_anomaly:,}"
        assert values["Precision"] == explore.percent(m.precision)
        assert values["F1"] == ("—" if m.f1 is None else f"{m.f1:.3f}")
        for label, (flagged, total) in m.class_counts.items():
            if label != "1":
                assert values[f"Class {label}"] == f"{flagged:,} / {total:,}"


def test_suggestions_set_the_threshold_the_number_box_and_the_chart(tiny_app):
    at = start(tiny_app)
    at.button(key="suggest_max_f1").click().run()
    assert_clean(at)
    _, errors = expected_metrics(tiny_app, 0.0)
    model = session.model_from_path(tiny_app["ckpt_path"])
    data = session.make_data(tiny_app["data"], "tiny")
    best = session.explorer_view(model, data, ["1"], errors).suggestions["max_f1"]
    assert at.session_state["threshold"] == pytest.approx(best)
    assert at.number_input(key="thr_number").value == pytest.approx(best)
    assert chart(at)["threshold"] == pytest.approx(best)
    at.button(key="suggest_model").click().run()
    assert at.session_state["threshold"] == pytest.approx(model.ckpt.threshold)
    assert chart(at)["threshold"] == pytest.approx(model.ckpt.threshold)


def test_log_toggle_switches_the_chart_to_a_log_count_axis(tiny_app):
    at = start(tiny_app)
    assert chart(at)["log_y"] is False
    at.toggle(key="hist_log").set_value(True).run()
    assert_clean(at)
    assert chart(at)["log_y"] is True


def test_beat_viewer_shows_the_most_anomalous_beat_and_its_verdict(tiny_app):
    at = start(tiny_app)
    _, errors = expected_metrics(tiny_app, 0.0)
    labels = tiny_app["data"].labels
    at.selectbox(key="beat_class").set_value("3").run()
    worst = float(errors[labels == "3"].max())
    assert metric_values(at)["Reconstruction error"] == f"{worst:.3f}"
    verdict = "Flagged as abnormal" if worst > at.session_state["threshold"] else "Passed as normal"
    assert any(verdict in md.value for md in at.markdown)
    at.selectbox(key="beat_mode").set_value("by row").run()
    at.number_input(key="beat_row").set_value(5).run()
    assert_clean(at)
    assert metric_values(at)["Reconstruction error"] == f"{errors[4]:.3f}"


def test_threshold_is_kept_across_pages(tiny_app, downloads):
    at = start(tiny_app)
    r = chart(at)["range"]
    value = float(r["lo"] + round((r["hi"] - r["lo"]) * 0.4 / r["step"]) * r["step"])
    at.number_input(key="thr_number").set_value(value).run()
    at.switch_page("pages/data.py").run()
    at.switch_page("pages/explorer.py").run()
    assert at.number_input(key="thr_number").value == pytest.approx(value)
    assert chart(at)["threshold"] == pytest.approx(value)
    at.switch_page("pages/export.py").run()
    assert_clean(at)
    assert any(name.endswith(f"_t{value:.4f}.csv") for name in downloads)


def test_data_page_summary_and_upload(tiny_app, tmp_path):
    at = start(tiny_app, "pages/data.py")
    assert metric_values(at)["Beats"] == "80"
    X, labels = synthetic_beats(n_normal=9, n_anomaly=4, length=24, seed=5)
    files = [("up_TRAIN.arff", arff_bytes(tmp_path, "a.arff", X[:6], labels[:6]), "text/plain"),
             ("up_TEST.arff", arff_bytes(tmp_path, "b.arff", X[6:], labels[6:]), "text/plain")]
    at.file_uploader(key="data_upload").set_value(files).run()
    assert_clean(at)
    values = metric_values(at)
    assert values["Beats"] == "13" and values["Samples per beat"] == "24" and values["Classes"] == "3"
    assert at.subheader[0].value == "up_TRAIN.arff + up_TEST.arff"
    assert "up_TRAIN.arff + up_TEST.arff" in at.sidebar.caption[0].value  # the shared sidebar follows
    table = at.dataframe[0].value
    assert table["beats"].tolist() == [9, 2, 2] and table["role"].tolist() == ["normal", "abnormal", "abnormal"]
    assert at.multiselect(key="normals_widget").value == ["1"]
    assert len(at.get("plotly_chart")) == 3  # one preview per class
    # choosing class 2 as normal too is what the explorer then evaluates
    at.multiselect(key="normals_widget").set_value(["1", "2"]).run()
    assert at.session_state["normal_labels"] == ["1", "2"]
    # the same files sent again (e.g. after removing a broken one from the selection) keep the choice
    at.session_state["data_upload_sig"] = None  # forces the page to parse the selection again
    at.run()
    assert at.session_state["normal_labels"] == ["1", "2"]
    at.switch_page("pages/explorer.py").run()
    assert_clean(at)
    assert {k for k in metric_values(at) if k.startswith("Class")} == {"Class 3"}


def test_a_bad_upload_shows_the_error_and_keeps_the_data(tiny_app):
    at = start(tiny_app, "pages/data.py")
    at.file_uploader(key="data_upload").set_value(("broken.arff", b"@relation x\n@data\n1,2,oops\n", "text/plain"))
    at.run()
    assert not at.exception
    assert len(at.error) == 1 and "broken.arff" in at.error[0].value
    assert at.session_state["active_data"].name == "tiny"
    assert metric_values(at)["Beats"] == "80"


def test_unlabelled_upload_runs_in_score_only_mode(tiny_app, tmp_path, downloads):
    at = start(tiny_app, "pages/data.py")
    X, _ = synthetic_beats(n_normal=10, n_anomaly=2, length=24, seed=2)
    at.file_uploader(key="data_upload").set_value(("plain.arff", arff_bytes(tmp_path, "p.arff", X), "text/plain"))
    at.run()
    assert_clean(at)
    assert any("no labels" in i.value for i in at.info)
    at.switch_page("pages/explorer.py").run()
    assert_clean(at)
    assert any("score-only" in i.value for i in at.info)
    t = at.session_state["threshold"]
    model = session.model_from_path(tiny_app["ckpt_path"])
    errors = session.scores(model, session.make_data(load_files([tmp_path / "p.arff"]), "p"))
    assert metric_values(at)["Beats flagged"] == f"{int((errors > t).sum()):,} / 12"
    at.switch_page("pages/export.py").run()
    assert_clean(at)
    at.radio(key="export_rows").set_value("All beats").run()
    csv = next(v for k, v in downloads.items() if k.startswith("ecgviz_all"))
    assert len(pd.read_csv(io.BytesIO(csv))) == 12


def test_data_of_another_length_is_refused_by_the_model(tiny_app, tmp_path):
    at = start(tiny_app, "pages/data.py")
    X, labels = synthetic_beats(n_normal=6, n_anomaly=2, length=30)
    at.file_uploader(key="data_upload").set_value(("long.arff", arff_bytes(tmp_path, "l.arff", X, labels),
                                                   "text/plain")).run()
    assert not at.exception
    assert any("24 samples" in w.value for w in at.warning)
    at.switch_page("pages/explorer.py").run()
    assert not at.exception
    assert len(at.error) == 1 and "24 samples" in at.error[0].value and "30 samples" in at.error[0].value


def test_export_downloads_match_the_data(tiny_app, downloads):
    at = start(tiny_app, "pages/export.py")
    t = at.session_state["threshold"]
    m, errors = expected_metrics(tiny_app, t)
    # the default rows are the explorer's count: the flagged held-out beats, and the page says so first
    held = pd.read_csv(io.BytesIO(next(v for k, v in downloads.items() if k.startswith("ecgviz_flagged_heldout"))))
    assert len(held) == m.tp + m.fp and set(held["split_role"]) <= {"held-out"}
    assert at.markdown[0].value.startswith(f"**{m.tp + m.fp:,} of {m.n_normal + m.n_anomaly:,} held-out beats")
    at.radio(key="export_rows").set_value("Every flagged beat (training and validation beats too)").run()
    every = next(v for k, v in downloads.items() if k.startswith("ecgviz_flagged_t"))
    assert len(pd.read_csv(io.BytesIO(every))) == int((errors > t).sum())
    at.radio(key="export_rows").set_value("All beats").run()
    assert_clean(at)
    table = pd.read_csv(io.BytesIO(next(v for k, v in downloads.items() if k.startswith("ecgviz_all"))))
    assert len(table) == 80
    assert np.allclose(table["error"], errors)
    assert (table["flagged"] == (errors > t)).all()
    metrics_file = next(v for k, v in downloads.items() if k.endswith(".json"))
    assert b'"threshold"' in metrics_file
    assert downloads["tiny_start.pt"] == tiny_app["ckpt_path"].read_bytes()


def test_model_page_loads_uploads_and_refuses_bad_checkpoints(tiny_app, tmp_path):
    at = start(tiny_app, "pages/model.py")
    assert any("tiny" in md.value for md in at.markdown)
    at.file_uploader(key="ckpt_upload").set_value(("junk.pt", b"not a checkpoint", "application/octet-stream"))
    at.run()
    assert not at.exception
    assert len(at.error) == 1 and "junk.pt" in at.error[0].value
    assert at.session_state["active_model"].name == "tiny"
    other = save_checkpoint(session.model_from_path(tiny_app["ckpt_path"]).ckpt.with_threshold(1.25), tmp_path / "b.pt")
    at.file_uploader(key="ckpt_upload").set_value(("second.pt", other.read_bytes(), "application/octet-stream"))
    at.run()
    assert_clean(at)
    assert at.session_state["active_model"].source == "uploaded"
    assert at.session_state["threshold"] == pytest.approx(1.25)


def test_training_runs_in_the_background_and_activates_the_result(tiny_app):
    at = start(tiny_app, "pages/model.py")
    at.text_input[0].set_value("trained_here")
    labelled = {n.label: n for n in at.number_input}
    labelled["Embedding size"].set_value(4)
    labelled["Epochs (at most)"].set_value(2)
    labelled["Batch size"].set_value(8)
    at.selectbox[-1].set_value("cpu")
    at.form_submit_button[0].click()
    at.run()
    assert_clean(at)
    job = at.session_state["train_job"]
    assert job.join(TIMEOUT)
    at.run()
    assert_clean(at)
    model = at.session_state["active_model"]
    assert model.name == "trained_here" and model.source == "trained"
    # saved in the workspace's own model area: not among the shared checkpoints until shared
    assert (at.session_state["workspace"].model_dir() / "trained_here.pt").is_file()
    assert not (tiny_app["dir"] / "trained_here.pt").exists()
    assert any("trained_here" in s.value for s in at.success)


@pytest.mark.slow
def test_real_start_with_ecg5000_and_the_shipped_checkpoint(monkeypatch):
    if not SHIPPED_CHECKPOINT.is_file():
        pytest.skip(f"the shipped checkpoint {SHIPPED_CHECKPOINT} is missing")
    monkeypatch.delenv(config.CHECKPOINT_ENV)
    at = AppTest.from_file(APP, default_timeout=300).run()
    assert_clean(at)
    data = at.session_state["active_data"]
    assert data.name == session.BUILTIN_NAME and data.data.n_beats == 5000
    assert at.session_state["active_model"].source == "shipped"
    # the threshold chart in the page, the tab watcher in the sidebar
    assert len(at.get("plotly_chart")) == 4 and [c.key for c in at.get("bidi_component")] == ["thr_chart", "tab_watch"]
    ev = session.explorer_view(at.session_state["active_model"], data, ["1"], session.scores(
        at.session_state["active_model"], data))
    m = ev.metrics_at(at.session_state["threshold"])
    assert metric_values(at)["Anomalies caught"] == f"{m.tp:,} / {m.n_anomaly:,}"
    assert m.n_normal + m.n_anomaly == len(ev.eval_idx) < 5000
    assert sum(g["total"] for g in chart(at)["groups"]) == len(ev.eval_idx)


def test_a_checkpoint_for_other_beat_lengths_is_not_activated(tiny_app, tmp_path):
    at = start(tiny_app, "pages/data.py")
    X, labels = synthetic_beats(n_normal=6, n_anomaly=2, length=30)
    at.file_uploader(key="data_upload").set_value(("long.arff", arff_bytes(tmp_path, "l.arff", X, labels),
                                                   "text/plain")).run()
    at.switch_page("pages/model.py").run()
    before = at.session_state["active_model"]
    at.file_uploader(key="ckpt_upload").set_value(("again.pt", tiny_app["ckpt_path"].read_bytes(),
                                                   "application/octet-stream")).run()
    assert not at.exception
    assert any("24 samples" in e.value and "30 samples" in e.value for e in at.error)
    assert at.session_state["active_model"] is before


def test_without_a_model_the_pages_say_where_to_get_one(tiny_app, monkeypatch, tmp_path):
    monkeypatch.setenv(config.CHECKPOINT_ENV, str(tmp_path / "missing.pt"))
    at = start(tiny_app)
    assert any("No model is loaded" in i.value for i in at.info)
    assert not at.get("plotly_chart")
    for page in ("pages/export.py", "pages/model.py", "pages/data.py"):
        at.switch_page(page).run()
        assert_clean(at)
