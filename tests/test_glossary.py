"""The dashboard's words, said once: a detector's score with its unit, the percentile's reference, split roles and
the MIT-BIH annotations behind each AAMI class."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecgviz.checkpoint.store import SHIPPED_CHECKPOINT, load_checkpoint
from ecgviz.dashboard import glossary
from ecgviz.detectors.baselines import KNNDistance, PCAReconstruction
from ecgviz.io.recording import read_recording
from ecgviz.pipeline.protocol import fit_detector
from ecgviz.signal.beats import cut_beats

MITDB = Path(__file__).resolve().parent.parent / "data" / "mitdb"


def test_each_detector_says_what_its_score_is_and_in_which_unit(tiny_data):
    shipped = load_checkpoint(SHIPPED_CHECKPOINT)
    text = glossary.score_definition(shipped)
    assert text.startswith("Reconstruction error: the sum over a beat's 140 samples of |beat - reconstruction|")
    assert "the 3 largest differences" in text and "standard deviations of the training beats" in text
    knn = fit_detector(tiny_data, KNNDistance(3, "l1"), ["1"])
    assert glossary.score_definition(knn).startswith("Distance: the mean L1 distance from a beat to its 3 nearest")
    assert "the beats' own amplitude units" in glossary.score_definition(knn)
    pca = fit_detector(tiny_data, PCAReconstruction(2), ["1"])
    assert glossary.score_definition(pca).startswith("PCA reconstruction error")
    assert [glossary.score_name(k) for k in ("lstm_ae", "knn", "pca", "analysis")] == [
        "reconstruction error", "distance", "PCA reconstruction error", "score"]


def test_the_percentile_reference_and_the_roles_follow_the_data():
    assert glossary.percentile_reference(same_data=True, labelled=True) == "the training normals"
    assert glossary.percentile_reference(same_data=False, labelled=True) == "the normal beats"
    assert glossary.percentile_reference(same_data=False, labelled=False) == "all beats"
    assert "in the metrics" in glossary.role_text("held-out")
    unlabelled = glossary.role_text("held-out", labelled=False)
    assert "score-only" in unlabelled and "in the metrics" not in unlabelled


def test_the_aami_classes_name_the_annotations_they_are_made_of():
    members = {cls: [s for s, _ in found] for cls, found in glossary.aami_members().items()}
    assert "A" in members["S"] and "V" in members["V"] and "N" in members["N"]
    assert sum(len(v) for v in members.values()) == len({s for v in members.values() for s in v})  # each once
    beats = cut_beats(read_recording(MITDB / "100"), 140)
    symbols = beats.data.origin.symbols()
    made_of = glossary.aami_breakdown(beats.data.labels, symbols)
    assert made_of["S"] == f"A (Atrial premature contraction) {int(np.sum(symbols == 'A')):,}"
    without = glossary.aami_breakdown(beats.data.labels, None)
    assert without["S"].startswith("a (") and "A (Atrial premature contraction)" in without["S"]
