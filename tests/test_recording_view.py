"""The recording strip and beat-in-context figures, and the server folder listing."""

from pathlib import Path

import numpy as np

from ecgviz.dashboard import recording_view, session
from ecgviz.io.recording import read_recording
from ecgviz.signal.beats import cut_beats

MITDB = Path(__file__).resolve().parent.parent / "data" / "mitdb"


def test_strip_marks_each_beat_by_class_and_the_dropped_ones():
    beats = cut_beats(read_recording(MITDB / "100.hea"))
    active = session.data_from_recording(beats, "100")
    view = active.recording
    assert view.signal.dtype == np.float16 and view.nbytes() < 650_000 * 2 + 3 * 8 * 2273
    np.testing.assert_allclose(view.signal[:1000], beats.filtered[:1000], atol=2e-3)
    fig = recording_view.strip_figure(view, active.data.labels, 0, 30)
    traces = {t.name: t for t in fig.data}
    in_window = beats.peaks[beats.kept][beats.peaks[beats.kept] < 30 * 360]
    labels = active.data.labels[: len(in_window)]
    assert len(traces["R-peak N"].x) == (labels == "N").sum() and len(traces["R-peak S"].x) == (labels == "S").sum()
    np.testing.assert_allclose(np.sort(np.concatenate([traces["R-peak N"].x, traces["R-peak S"].x])),
                               in_window / 360)
    assert list(traces["not cut"].x) == [beats.peaks[0] / 360]  # the first annotated beat sits at the very start
    assert view.dropped_rows() == [{"reason": "edge", "beats": 2, "meaning": recording_view.DROP_REASONS["edge"],
                                    "first at": "0.2s, 1805.5s"}]
    assert beats.peaks[0] == 77 and beats.peaks[-1] == 649_991  # 0.21 s and 1805.53 s


def test_context_shows_a_few_seconds_and_flags():
    beats = cut_beats(read_recording(MITDB / "100.hea"))
    view = recording_view.RecordingView.from_beats(beats)
    flagged = np.zeros(beats.data.n_beats, bool)
    flagged[[100, 101]] = True
    fig = recording_view.context_figure(view, 100, flagged, seconds=4.0)
    line = fig.data[0]
    assert abs((line.x[-1] - line.x[0]) - 4.0) < 0.01
    marks = next(t for t in fig.data if t.name == "flagged")
    np.testing.assert_allclose(sorted(marks.x), beats.peaks[beats.kept[[100, 101]]] / 360)
    assert "Beat 101 in context" in fig.layout.title.text


def test_server_folder_lists_headers_and_edf(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    for name in ("a/x.hea", "a/x.dat", "b.edf", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    monkeypatch.setenv(recording_view.RECORDINGS_DIR_ENV, str(tmp_path))
    assert [p.relative_to(tmp_path).as_posix() for p in recording_view.server_recordings()] == ["a/x.hea", "b.edf"]


def test_the_strip_writes_every_tick_alike_and_leaves_room_for_the_beat_letters():
    beats = cut_beats(read_recording(MITDB / "100.hea"))
    view = recording_view.RecordingView.from_beats(beats)
    wide = recording_view.strip_figure(view, beats.data.labels, 1500.0, 30.0)
    assert wide.layout.xaxis.tickformat == ",.0f"  # not "1517" beside "1,517.5"
    peaks = np.concatenate([np.asarray(t.y) for t in wide.data if t.mode == "markers+text"])
    low, high = wide.layout.yaxis.range
    assert high - peaks.max() >= 0.15 * (high - low)  # the letters above the highest R-peak stay inside
    close = recording_view.context_figure(view, 10)
    assert close.layout.xaxis.tickformat == ",.1f"
