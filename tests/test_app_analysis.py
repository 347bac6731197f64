"""The Data page's recording actions in AppTest: "Analyze this recording" on MIT-BIH record 100 (summary, downloads,
the reviewer's strip, explorer and export on the result), uploads whose header names .mat or .xyz files with the
lead picker, and the explorer's caution for a model fitted on other data."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pandas as pd
import pytest

from ecgviz.analysis.analyze import analyze
from ecgviz.dashboard import model_guard, recording_view, session
from ecgviz.io.recording import read_recording, read_uploads
from ecgviz.signal.beats import cut_beats
from tests.app_support import assert_clean, metric_values, start
from tests.record_files import MITDB, write_mat_record, write_xyz_record


@pytest.fixture(scope="module")
def expected():
    """What ecgviz.analysis says of record 100, computed apart from the dashboard."""
    return analyze(read_recording(MITDB / "100.hea"))


def _cut_100(at):
    at.selectbox(key="rec_server_choice").set_value(MITDB / "100.hea").run()
    at.button(key="rec_server_go").click().run()
    assert_clean(at)


def _upload(tiny_app, files: dict[str, bytes]):
    """The Data page after the files of one record were uploaded and read."""
    at = start(tiny_app, "pages/data.py")
    at.file_uploader(key="rec_upload").set_value([(k, v, "application/octet-stream") for k, v in files.items()])
    at.run()
    at.button(key="rec_upload_go").click().run()
    return at


def _flag_table(at) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if list(d.value.columns) == list(recording_view.FLAGGED_COLUMNS))


def test_analyze_this_recording_shows_the_summary_and_makes_it_active(tiny_app, expected, downloads):
    at = start(tiny_app, "pages/data.py")
    _cut_100(at)
    assert metric_values(at)["Samples per beat"] == "24"  # cut for the active model
    at.button(key="rec_analyze").click().run()
    assert_clean(at)
    s = expected.summary
    values = metric_values(at)
    assert values["Flagged"] == f"{s['flagged']:,}" == "44"
    assert values["By shape / timing / both"] == " / ".join(str(n) for n in s["flagged_by_reason"].values())
    assert values["Irregular stretches"] == "0" and values["Possible missed beats"] == "0"
    assert values["Beats"] == "2,271" and values["Samples per beat"] == "140"
    evaluation = next(c.value for c in at.caption if "Balanced accuracy" in c.value)
    assert f"Balanced accuracy {s['evaluation']['balanced_accuracy']:.4f}" in evaluation
    classes = next(d.value for d in at.dataframe if "handled right" in d.value.columns)
    assert classes["class"].tolist() == ["N", "S", "V"] and classes["beats"].tolist() == [2237, 33, 1]
    model = at.session_state["active_model"]
    assert model.ckpt.kind == "analysis" and at.session_state["threshold"] == 1.0
    assert at.session_state["normal_labels"] == ["N"]
    # the files the command line writes, in one download
    report = zipfile.ZipFile(io.BytesIO(downloads["100_analysis.zip"]))
    assert json.loads(report.read("summary.json"))["flagged"] == 44
    beats_csv = pd.read_csv(io.BytesIO(report.read("beats.csv")))
    assert len(beats_csv) == 2271 and beats_csv["flagged"].sum() == 44
    # the reviewer's strip: every flag in the table, with the analysis' reasons
    table = _flag_table(at)
    flagged = expected.table()[expected.flagged]
    assert table["time_s"].tolist() == np.round(flagged["time_s"], 3).tolist()
    assert table["reason"].tolist() == flagged["reason"].tolist()
    assert table["symbol"].tolist() == flagged["symbol"].tolist()
    at.selectbox(key="rec_table_order").set_value("highest score first").run()
    assert _flag_table(at)["score"].tolist() == sorted(table["score"], reverse=True)
    at.button(key="rec_flag_next").click().run()
    first = int(np.flatnonzero(expected.flagged)[0])
    assert at.session_state["rec_focus"][1] == first
    view = at.session_state["active_data"].recording
    assert at.session_state["rec_start"] == recording_view.start_around(view, first, 30)
    assert any(c.value.startswith(f"Beat {first + 1:,} at") for c in at.caption)
    at.button(key="rec_flag_prev").click().run()  # wraps round to the last flag
    assert at.session_state["rec_focus"][1] == int(np.flatnonzero(expected.flagged)[-1])

    at.switch_page("pages/explorer.py").run()
    assert_clean(at)
    assert not at.warning  # the analysis is fitted to this recording: no caution
    caught = int((expected.flagged & np.isin(expected.symbols, ["A", "V"])).sum())
    assert metric_values(at)["Anomalies caught"] == f"{caught} / 34"
    at.switch_page("pages/export.py").run()
    assert_clean(at)
    assert any("not a checkpoint" in c.value for c in at.caption)


def test_a_mat_record_uploads_and_another_lead_is_cut_without_a_new_upload(tiny_app, tmp_path):
    files = write_mat_record(tmp_path)
    at = _upload(tiny_app, files)
    assert_clean(at)
    active = at.session_state["active_data"]
    assert active.recording.lead == "MLII" and active.data.n_beats == 73
    picker = at.selectbox(key=f"rec_lead_{active.fingerprint}")
    assert picker.options == ["MLII", "V5"] and picker.value == "MLII"
    picker.set_value("V5").run()
    assert_clean(at)
    other = at.session_state["active_data"]
    assert other.recording.lead == "V5" and other.name == active.name == "100m.hea + 100m.mat + 100m.atr"
    wanted = cut_beats(read_uploads(list(files.items()), lead="V5"), 24)
    np.testing.assert_array_equal(other.data.X, wanted.data.X)
    assert any("lead V5" in c.value for c in at.caption)


def test_a_ptb_record_with_a_xyz_file_uploads_and_is_analysed(tiny_app, tmp_path):
    files = write_xyz_record(tmp_path)
    at = _upload(tiny_app, files)
    at.button(key="rec_analyze").click().run()
    assert_clean(at)
    want = analyze(read_uploads(list(files.items()))).summary
    assert metric_values(at)["Flagged"] == f"{want['flagged']:,}"
    assert not any("Balanced accuracy" in c.value for c in at.caption)  # no reference annotations: no evaluation
    analysed = at.session_state["active_data"]
    # another lead of the analysed record: cut from the kept files, and it can be analysed in its turn
    at.selectbox(key=f"rec_lead_{analysed.fingerprint}").set_value("V5").run()
    assert_clean(at)
    assert at.session_state["active_data"].recording.lead == "V5"
    assert at.button(key="rec_analyze").label == "Analyze this recording"


def test_the_explorer_cautions_about_a_model_from_elsewhere_and_offers_both_ways_out(tiny_app):
    at = start(tiny_app, "pages/data.py")
    _cut_100(at)
    data, model = at.session_state["active_data"], at.session_state["active_model"]
    errors = session.scores(model, data)
    caution = model_guard.caution_for(model, data, errors, model.ckpt.threshold, ["N"])
    assert caution is not None  # the tiny synthetic model does not carry over to record 100
    at.switch_page("pages/explorer.py").run()
    assert not at.exception
    assert [w.value for w in at.warning if "fitted on other data" in w.value] == [
        w.value for w in at.warning if w.value.startswith("The model 'tiny' was fitted on other data")]
    warning = next(w.value for w in at.warning if "fitted on other data" in w.value)
    assert f"flags {caution.flagged:,} of 2,271 beats" in warning
    at.button(key="guard_reset").click().run()
    assert at.session_state["threshold"] == pytest.approx(caution.reset_to)
    assert not any("fitted on other data" in w.value for w in at.warning)
    # back to the model's own threshold, then fit the recording instead
    at.session_state["threshold"] = model.ckpt.threshold
    at.run()
    at.button(key="guard_analyze").click().run()
    assert not at.exception
    assert at.session_state["active_model"].ckpt.kind == "analysis"
    assert not any("fitted on other data" in w.value for w in at.warning)
