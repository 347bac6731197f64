"""Reviewing a recording on real data (MIT-BIH record 100): the flagged-beats table, stepping from flag to flag,
paging; recordings read again from their source (another lead, uploads whose header names .mat or .xyz files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecgviz.dashboard import recording_view, recordings
from ecgviz.errors import DataError
from ecgviz.io.recording import read_recording, read_uploads
from ecgviz.signal.beats import cut_beats
from ecgviz.signal.recording_files import RecordingSource, load_recording
from tests.record_files import MITDB, lead_of_100, write_mat_record, write_xyz_record


@pytest.fixture(scope="module")
def rec100():
    beats = cut_beats(read_recording(MITDB / "100.hea"))
    return beats, recording_view.RecordingView.from_beats(beats)


def test_flagged_table_lists_the_beats_above_the_threshold_in_time_order(rec100):
    beats, view = rec100
    labels = beats.data.labels
    scores = np.where(labels == "N", 0.2, 1.5)  # the 33 S beats and the one V beat of record 100 score high
    scores[100] = 0.9
    table = recording_view.flagged_table(view, scores, 0.5, symbols=beats.data.origin.symbols())
    assert list(table.columns) == list(recording_view.FLAGGED_COLUMNS)
    assert len(table) == 35 and table["beat"].is_monotonic_increasing
    assert sorted(set(table["symbol"])) == ["A", "N", "V"]
    assert (table["symbol"] == "A").sum() == 33 and (table["symbol"] == "V").sum() == 1
    np.testing.assert_allclose(table["time_s"], np.round(beats.peaks[beats.kept][table["beat"] - 1] / 360, 3))
    assert set(table["reason"]) == {"shape"}  # a beat detector judges shape alone
    first = table.iloc[0]
    assert first["time"] == recording_view.clock(first["time_s"])
    reasons = np.full(len(scores), "timing", dtype=object)
    assert set(recording_view.flagged_table(view, scores, 0.5, reasons=reasons)["reason"]) == {"timing"}
    assert recording_view.flagged_table(view, scores, 2.0).empty


def test_clock_reads_like_a_recorder():
    assert recording_view.clock(0) == "0:00.0"
    assert recording_view.clock(75.26) == "1:15.3"
    assert recording_view.clock(3 * 3600 + 62.04) == "3:01:02.0"


def test_stepping_from_flag_to_flag_wraps_round():
    flagged = np.zeros(10, bool)
    flagged[[2, 5, 7]] = True
    assert recording_view.step_flag(flagged, None, 1) == 2 and recording_view.step_flag(flagged, None, -1) == 7
    assert [recording_view.step_flag(flagged, b, 1) for b in (2, 3, 5, 7, 9)] == [5, 5, 7, 2, 2]
    assert [recording_view.step_flag(flagged, b, -1) for b in (2, 3, 5, 7, 0)] == [7, 2, 2, 5, 7]
    assert recording_view.step_flag(np.zeros(4, bool), 1, 1) is None


def test_paging_along_the_recording_stays_inside_it(rec100):
    _, view = rec100
    assert view.duration_s == pytest.approx(1805.56, abs=0.01)
    last = recording_view.last_start(view, 30)
    assert last == 1775.0
    assert recording_view.step_page(view, 0, 30, 1) == 30 and recording_view.step_page(view, 30, 30, -1) == 0
    assert recording_view.step_page(view, 0, 30, -1) == 0 and recording_view.step_page(view, 1770, 30, 1) == last
    assert recording_view.page_of(view, 0, 30) == (1, 61) and recording_view.page_of(view, last, 30) == (61, 61)
    # a beat is centred in its window, and a beat near the end shows in the last window
    beat = 1000
    start = recording_view.start_around(view, beat, 10)
    t = recording_view.beat_times(view)[beat]
    assert start <= t < start + 10 and abs(t - (start + 5)) <= 1
    assert recording_view.start_around(view, len(view.kept) - 1, 30) == last


def test_the_focused_beat_is_shaded_on_the_strip(rec100):
    beats, view = rec100
    fig = recording_view.strip_figure(view, beats.data.labels, 1000, 30, focus=2000)
    assert not fig.layout.shapes  # beat 2,000 lies outside 1000-1030 s: a shade there would stretch the x axis
    at = beats.peaks[beats.kept[2000]] / 360
    fig = recording_view.strip_figure(view, beats.data.labels, np.floor(at) - 5, 30, focus=2000)
    (shade,) = fig.layout.shapes
    assert shade.x0 < at < shade.x1 and shade.x1 - shade.x0 == pytest.approx(0.7)


def test_a_recording_source_cuts_another_lead_from_the_kept_uploads(tmp_path):
    files = write_mat_record(tmp_path)
    source = RecordingSource("100m", files=tuple(files.items()))
    first = recordings.recording_data(source, None, 140)
    other = recordings.recording_data(source, "V5", 140)
    assert first.recording.lead == "MLII" and other.recording.lead == "V5"
    assert first.recording.leads == other.recording.leads == ("MLII", "V5")
    assert other.recording.source is source and other.recording.nbytes() > sum(len(v) for v in files.values())
    assert first.data.n_beats == other.data.n_beats == 73  # 74 annotated in the minute; the first at 0.21 s
    assert first.fingerprint != other.fingerprint
    np.testing.assert_allclose(source.read("V5").signal, lead_of_100("V5"))


def test_uploads_whose_header_names_mat_or_xyz_files(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "x").mkdir()
    mat = write_mat_record(tmp_path / "m")
    rec = read_uploads(list(mat.items()))
    assert (rec.record, rec.lead, rec.fs, len(rec.signal), len(rec.ann_samples)) == ("100m", "MLII", 360.0, 21600, 74)
    np.testing.assert_allclose(rec.signal, lead_of_100("MLII"))
    xyz = write_xyz_record(tmp_path / "x")
    rec = read_uploads(list(xyz.items()), lead="V5")
    assert rec.leads == ("MLII", "V5")
    np.testing.assert_allclose(rec.signal, lead_of_100("V5"))
    # the signal file left out: the header names it
    with pytest.raises(DataError, match=r"names the signal file 'ptb.xyz', which is missing"):
        read_uploads([(k, v) for k, v in xyz.items() if k != "ptb.xyz"])
    with pytest.raises(DataError, match=r"100m.mat: not a recording \(expected a .hea with the signal files"):
        read_uploads([("100m.mat", mat["100m.mat"])])
    with pytest.raises(DataError, match="upload one record's files together"):
        read_uploads([*mat.items(), ("100m.csv", b"a\n1\n")])


def test_the_command_line_takes_a_record_by_any_of_its_files(tmp_path):
    write_mat_record(tmp_path)
    by_header = load_recording([tmp_path / "100m.hea"]).data
    by_signal = load_recording([tmp_path / "100m.mat", tmp_path / "100m.hea", tmp_path / "100m.atr"]).data
    assert by_header.n_beats == by_signal.n_beats == 73
    np.testing.assert_array_equal(by_header.X, by_signal.X)
    with pytest.raises(DataError, match="one recording at a time"):
        load_recording([tmp_path / "100m.hea", MITDB / "100.hea"])


def test_server_source_reads_a_path(tmp_path):
    source = RecordingSource("100", path=Path(MITDB / "100.hea"))
    assert source.read("V5").lead == "V5" and source.nbytes() == 0
