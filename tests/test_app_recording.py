"""The dashboard with a recording: cut from the server folder or uploaded, strip, drops, beat in context, export."""

from __future__ import annotations

from pathlib import Path

from tests.app_support import assert_clean, metric_values, start

MITDB = Path(__file__).resolve().parent.parent / "data" / "mitdb"


def test_server_recording_strip_and_beat_in_context(tiny_app):
    at = start(tiny_app, "pages/data.py")
    at.selectbox(key="rec_server_choice").set_value(MITDB / "100.hea").run()
    at.button(key="rec_server_go").click().run()
    assert_clean(at)
    values = metric_values(at)
    assert values["Beats"] == "2,271" and values["Samples per beat"] == "24"  # the active model's length
    assert at.subheader[0].value == "100"
    table = at.dataframe[0].value
    assert table["label"].tolist() == ["N", "S", "V"] and table["beats"].tolist() == [2237, 33, 1]
    # the record's annotations behind each class: its 33 "A" beats are the S class
    assert table["annotations"].tolist() == ["N (Normal beat) 2,237", "A (Atrial premature contraction) 33",
                                             "V (Premature ventricular contraction) 1"]
    assert any("S = Supraventricular ectopic (a, J, A, S)" in c.value for c in at.caption)
    dropped = at.dataframe[1].value
    assert dropped["reason"].tolist() == ["edge"] and dropped["beats"].tolist() == [2]
    strip = at.get("plotly_chart")[0]
    assert "lead MLII" in strip.proto.spec
    at.switch_page("pages/explorer.py").run()
    assert_clean(at)
    assert any("in context" in chart.proto.spec for chart in at.get("plotly_chart"))


def test_bad_recording_upload_keeps_the_data(tiny_app):
    at = start(tiny_app, "pages/data.py")
    at.file_uploader(key="rec_upload").set_value([("100.dat", (MITDB / "100.dat").read_bytes(),
                                                   "application/octet-stream")]).run()
    at.button(key="rec_upload_go").click().run()
    assert not at.exception
    assert len(at.error) == 1 and "needs its header" in at.error[0].value
    assert at.session_state["active_data"].name == "tiny" and metric_values(at)["Beats"] == "80"
    at.file_uploader(key="rec_upload").set_value([("ecg.csv", b"mv\n" + b"0.1\n" * 500, "text/csv")]).run()
    at.number_input(key="rec_fs").set_value(0.0).run()
    at.button(key="rec_upload_go").click().run()
    assert "sampling rate 0.0 Hz is not usable" in at.error[0].value
    assert at.session_state["active_data"].name == "tiny"
