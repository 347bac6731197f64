"""View-model layer: evaluation set, suggestions, beat choice, slider range."""

from __future__ import annotations

import numpy as np
import pytest

from ecgviz.dashboard import beat_picker, explore
from ecgviz.evaluation import metrics
from ecgviz.evaluation.split import make_split
from ecgviz.io.data import label_order

NAMES = {"1": "Normal", "2": "PVC", "3": "SVE"}


@pytest.fixture(scope="module")
def beats():
    rng = np.random.default_rng(3)
    labels = np.array(["1"] * 80 + ["2"] * 15 + ["3"] * 5)
    errors = np.where(labels == "1", rng.normal(10, 1, 100), rng.normal(16, 2, 100))
    return errors, labels


def test_foreign_data_is_evaluated_in_full(beats):
    errors, labels = beats
    ev = explore.explorer_view(errors, labels, NAMES, ["1"])
    assert ev.labelled and ev.n_excluded == 0
    assert np.array_equal(ev.eval_idx, np.arange(100))
    assert ev.abnormal_labels == ("2", "3")
    m = ev.metrics_at(12.0)
    expected = metrics.at_threshold(errors, labels != "1", 12.0, labels)
    assert (m.tp, m.fp, m.tn, m.fn) == (expected.tp, expected.fp, expected.tn, expected.fn)
    assert ev.roc_auc == pytest.approx(metrics.roc_auc(errors, labels != "1"))
    # percentile reference = all normal beats when the model never saw this data
    assert ev.suggestions["percentile"] == pytest.approx(np.percentile(errors[labels == "1"], 98))
    assert set(ev.suggestions) == {"max_f1", "youden", "percentile"}
    assert sum(c.sum() for c in ev.bins.counts.values()) == 100
    assert set(ev.bins.counts) == {"Normal", "PVC", "SVE"}


def test_the_models_own_training_beats_are_left_out(beats):
    errors, labels = beats
    split = make_split(labels, ["1"], seed=0)
    ev = explore.explorer_view(errors, labels, NAMES, ["1"], split=split, same_data=True)
    seen = set(split.train.tolist()) | set(split.val.tolist())
    assert ev.n_excluded == len(seen)
    assert not seen & set(ev.eval_idx.tolist())
    assert ev.metrics_at(0.0).n_normal == len(split.test)
    assert ev.suggestions["percentile"] == pytest.approx(np.percentile(errors[split.train], 98))
    # the split of other data is ignored
    other = explore.explorer_view(errors, labels, NAMES, ["1"], split=split, same_data=False)
    assert other.n_excluded == 0


def test_recall_curves_have_normal_and_each_abnormal_class(beats):
    errors, labels = beats
    ev = explore.explorer_view(errors, labels, NAMES, ["1"])
    curves = ev.recall_curves()
    assert list(curves) == ["Normal", "PVC", "SVE"]
    assert len(curves["PVC"]) == len(ev.sweep.thresholds)
    assert set(ev.curve_colors()) == set(curves)


def test_unlabelled_data_gives_a_score_only_evaluation(beats):
    errors, _ = beats
    ev = explore.explorer_view(errors, None, {}, [])
    assert not ev.labelled and ev.metrics_at(10.0) is None
    assert ev.n_flagged(10.0) == int((errors > 10.0).sum())
    assert list(ev.bins.counts) == [explore.ALL_BEATS]
    assert set(ev.suggestions) == {"percentile"}
    assert ev.recall_curves() == {}


def test_only_normals_chosen_means_no_metrics(beats):
    errors, labels = beats
    ev = explore.explorer_view(errors, labels, NAMES, ["1", "2", "3"])
    assert not ev.labelled and ev.roc is None
    assert ev.abnormal_labels == ()


def test_label_order_is_numeric_aware():
    assert label_order(np.array(["10", "2", "b", "1", "a"])) == ["1", "2", "10", "a", "b"]


@pytest.mark.parametrize("mode", beat_picker.PICK_MODES)
def test_pick_beat_modes(beats, mode):
    errors, labels = beats
    i = beat_picker.pick_beat(errors, labels, "2", mode, threshold=15.0, seed=4, row=7)
    if mode == "by row":
        assert i == 6
        return
    assert labels[i] == "2"
    pvc = np.flatnonzero(labels == "2")
    if mode == "most anomalous":
        assert errors[i] == errors[pvc].max()
    elif mode == "nearest the threshold":
        assert abs(errors[i] - 15.0) == np.abs(errors[pvc] - 15.0).min()
    else:  # random: stable for one seed so a slider move does not change the beat
        assert i == beat_picker.pick_beat(errors, labels, "2", mode, threshold=99.0, seed=4)


def test_pick_beat_edge_cases(beats):
    errors, labels = beats
    assert beat_picker.pick_beat(errors, labels, "9", "most anomalous", threshold=0) is None
    assert beat_picker.pick_beat(errors, None, None, "most anomalous", threshold=0) == int(np.argmax(errors))
    assert beat_picker.pick_beat(errors, labels, None, "by row", threshold=0, row=10_000) == 99
    with pytest.raises(ValueError, match="unknown beat choice"):
        beat_picker.pick_beat(errors, labels, "1", "sideways", threshold=0)


def test_slider_range_is_round_and_covers_everything():
    r = explore.slider_range(np.array([3.21, 57.9]), extra=[60.3])
    assert r.lo <= 3.21 and r.hi >= 60.3
    assert r.step == pytest.approx(0.1)
    assert r.lo == pytest.approx(3.2) and r.hi == pytest.approx(60.3)
    assert r.clamp(100) == r.hi and r.clamp(-1) == r.lo
    flat = explore.slider_range(np.array([5.0, 5.0]))
    assert flat.lo < 5.0 < flat.hi


def test_verdict_and_percent():
    assert beat_picker.verdict(2.0, 1.0) == "flagged" and beat_picker.verdict(1.0, 1.0) == "passed"
    assert explore.percent(0.9734) == "97.3%" and explore.percent(None) == "undefined"


def test_metrics_payload_matches_the_metrics_at_the_threshold(beats):
    import json

    errors, labels = beats
    ev = explore.explorer_view(errors, labels, NAMES, ["1"])
    doc = json.loads(explore.metrics_payload(ev, 12.5, {"model": "m"}))
    expected = metrics.at_threshold(errors, labels != "1", 12.5, labels).to_dict()
    assert doc["metrics"] == expected
    assert doc["threshold"] == 12.5 and doc["model"] == "m" and doc["n_beats"] == 100
    assert doc["n_flagged_all_beats"] == doc["n_flagged_held_out"] == int((errors > 12.5).sum())
    assert doc["metrics"]["n_flagged"] == doc["n_flagged_held_out"]
    unlabelled = json.loads(explore.metrics_payload(explore.explorer_view(errors, None, {}, []), 12.5))
    assert unlabelled["metrics"] is None and unlabelled["n_flagged_all_beats"] == doc["n_flagged_all_beats"]


def test_slider_range_ends_are_written_as_whole_steps():
    r = explore.slider_range(np.array([5.83, 142.71]))
    assert (r.lo, r.hi, r.step) == (5.8, 142.8, 0.2)
    assert repr(r.lo) == "5.8"
    tiny = explore.slider_range(np.array([0.0012345, 0.0098765]))
    assert float(f"{tiny.lo:.12g}") == tiny.lo and tiny.lo <= 0.0012345 and tiny.hi >= 0.0098765
