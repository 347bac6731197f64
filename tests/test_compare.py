"""The Compare page's verdict: the paired bootstrap of AUROC differences, said in words."""

from __future__ import annotations

import numpy as np

from ecgviz.dashboard import compare, explore
from ecgviz.evaluation import intervals


def _entry(name: str, errors: np.ndarray, labels: np.ndarray) -> compare.Entry:
    return compare.Entry(name, explore.explorer_view(errors, labels, {}, ["1"]), float(np.median(errors)))


def _scores(seed: int, separation: float, labels: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 1.0, labels.size) + separation * (labels != "1")


def test_a_clearly_better_detector_is_named_with_its_margin_and_interval():
    labels = np.array(["1"] * 300 + ["2"] * 200)
    good, weak = _scores(0, 3.0, labels), _scores(1, 1.0, labels)
    found = compare.verdicts([_entry("weak", weak, labels), _entry("good", good, labels)], n_boot=300)
    assert len(found) == 1 and found[0].a == "good" and found[0].significant
    diff, ci = intervals.paired_auroc_difference(good, weak, labels != "1", n_boot=300)
    assert (found[0].difference, found[0].interval) == (diff, ci)
    assert found[0].text() == (f"good vs weak: AUROC higher by {diff:.4f} (95% CI of the difference "
                               f"[{ci[0]:+.4f}, {ci[1]:+.4f}])")
    assert compare.summary(found) == "good is the best detector here: its AUROC is significantly higher than every " \
                                     "other's."


def test_detectors_the_beats_cannot_tell_apart_get_no_winner():
    labels = np.array(["1"] * 300 + ["2"] * 200)
    a = _scores(2, 2.0, labels)
    b = a + np.random.default_rng(3).normal(0.0, 0.01, a.size)  # the same ranking, up to a few swaps
    found = compare.verdicts([_entry("a", a, labels), _entry("b", b, labels)], n_boot=300)
    assert len(found) == 1 and not found[0].significant
    assert found[0].interval[0] <= 0 <= found[0].interval[1]
    assert "no significant difference" in found[0].text() and "holds 0" in found[0].text()
    assert compare.summary(found).startswith("No clear winner:")


def test_mixed_verdicts_say_who_is_beaten_and_who_is_not():
    labels = np.array(["1"] * 300 + ["2"] * 200)
    best = _scores(4, 3.0, labels)
    twin = best + np.random.default_rng(5).normal(0.0, 0.01, best.size)
    weak = _scores(6, 0.5, labels)
    found = compare.verdicts([_entry(n, s, labels) for n, s in (("best", best), ("twin", twin), ("weak", weak))],
                             n_boot=300)
    assert compare.summary(found) == ("best has the highest AUROC: significantly above weak, but not "
                                      "distinguishable from twin.") or compare.summary(found) == (
        "twin has the highest AUROC: significantly above weak, but not distinguishable from best.")
    assert compare.verdicts([_entry("alone", best, labels)]) == [] and compare.summary([]) is None
