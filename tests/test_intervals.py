"""95 % intervals: Wilson cross-checked by hand and against scipy/statsmodels-style formulas, bootstrap against
scikit-learn."""

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from ecgviz.evaluation import intervals


def test_wilson_matches_the_formula():
    for k, n in ((0, 10), (3, 10), (213, 219), (2081, 2081)):
        z = 1.959963984540054
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        lo, hi = intervals.wilson(k, n)
        assert lo == pytest.approx(max(0.0, centre - half), abs=1e-9)
        assert hi == pytest.approx(min(1.0, centre + half), abs=1e-9)
    assert intervals.wilson(0, 0) is None


def test_bootstrap_is_seeded_and_brackets_sklearn():
    rng = np.random.default_rng(3)
    a = rng.random(600) < 0.8
    s = rng.normal(size=600) + 1.5 * a
    ci = intervals.bootstrap_areas(s, a, n_boot=400)
    assert ci == intervals.bootstrap_areas(s, a, n_boot=400)
    auc, ap = skm.roc_auc_score(a, s), skm.average_precision_score(a, s)
    assert ci["auroc"][0] < auc < ci["auroc"][1]
    assert ci["average_precision"][0] < ap < ci["average_precision"][1]
    # the resampled areas are scikit-learn's: the ranks' AUROC checked on one resample with ties (the AP is
    # metrics.average_precision, checked against scikit-learn in test_metrics)
    t = np.round(s, 1)
    assert intervals._auroc_many(t[~a][None], t[a][None])[0] == pytest.approx(skm.roc_auc_score(a, t), rel=1e-12)
    # fewer beats, wider interval
    small = intervals.bootstrap_areas(s[:60], a[:60], n_boot=400)
    assert small["auroc"][1] - small["auroc"][0] > ci["auroc"][1] - ci["auroc"][0]


def test_one_class_has_no_area_interval():
    assert intervals.bootstrap_areas([1.0, 2.0], [True, True]) == {"auroc": None, "average_precision": None}


def test_caveats_name_small_classes_and_prevalence():
    notes = intervals.caveats(30, 2081, {"2": 1767, "5": 24}, {"5": "Unclassified"})
    assert "normal (30 beats)" in notes[0] and "Unclassified (24 beats)" in notes[0]
    assert "Prevalence 98.6%" in notes[1] and "inflates" in notes[1]
    assert intervals.caveats(500, 100) == ["Prevalence 16.7% of evaluated beats are anomalies."]


def test_balanced_accuracy_interval_matches_a_resampling_bootstrap():
    rng = np.random.default_rng(1)
    a = np.r_[np.zeros(200, bool), np.ones(800, bool)]
    flagged = np.r_[rng.random(200) < 0.05, rng.random(800) < 0.9]
    tn, tp = int((~flagged[~a]).sum()), int(flagged[a].sum())
    lo, hi = intervals.balanced_accuracy_interval(tn, 200, tp, 800)
    # the same figure by resampling beats within each class
    boot = []
    for _ in range(3000):
        f0 = rng.choice(flagged[~a], 200)
        f1 = rng.choice(flagged[a], 800)
        boot.append(skm.balanced_accuracy_score(np.r_[np.zeros(200), np.ones(800)], np.r_[f0, f1]))
    assert lo == pytest.approx(np.percentile(boot, 2.5), abs=0.004)
    assert hi == pytest.approx(np.percentile(boot, 97.5), abs=0.004)
    assert lo < ((tn / 200) + (tp / 800)) / 2 < hi
    assert intervals.balanced_accuracy_interval(0, 0, 3, 4) is None


def test_paired_auroc_difference():
    rng = np.random.default_rng(2)
    a = rng.random(500) < 0.7
    good = rng.normal(size=500) + 2.0 * a
    worse = good + rng.normal(size=500)
    point, (lo, hi) = intervals.paired_auroc_difference(good, worse, a, n_boot=300)
    assert point == pytest.approx(skm.roc_auc_score(a, good) - skm.roc_auc_score(a, worse), rel=1e-12)
    assert 0 < lo < point < hi
    same, (lo, hi) = intervals.paired_auroc_difference(good, good, a, n_boot=50)
    assert same == lo == hi == 0.0
