"""Tests for ecgviz.evaluation.metrics, cross-checked against scikit-learn."""

import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from ecgviz.evaluation import metrics as m

CLASSES = ("2", "3", "10")


@pytest.fixture(scope="module")
def case():
    """Errors with many ties, ~35% anomalies from three abnormal classes."""
    rng = np.random.default_rng(7)
    n = 400
    errors = np.round(rng.gamma(2.0, 1.0, n), 1)
    is_anomaly = rng.random(n) < 0.35
    errors[is_anomaly] += 0.8
    labels = np.where(is_anomaly, rng.choice(CLASSES, n), "1")
    train = rng.gamma(2.0, 1.0, 300)
    return errors, is_anomaly, labels, train


@pytest.fixture(scope="module")
def probe_thresholds(case):
    """Every distinct error, points between them, and both extremes."""
    e = np.unique(case[0])
    return np.unique(np.r_[e, (e[1:] + e[:-1]) / 2, e[0] - 1, np.nextafter(e[0], -np.inf), e[-1] + 1])


@pytest.fixture(scope="module")
def sorted_errors(case):
    return m.SortedErrors(case[0], case[1], case[2])


def _same(value, expected):
    """None matches NaN; numbers must agree to rounding."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return expected is None or math.isnan(expected)
    return expected is not None and math.isclose(value, expected, rel_tol=1e-12, abs_tol=1e-15)


@pytest.mark.parametrize("threshold", [-1.0, 0.5, 1.7, 2.0, 3.3, 5.0, 100.0])
def test_at_threshold_matches_sklearn(case, threshold):
    errors, a, labels, _ = case
    got = m.at_threshold(errors, a, threshold, labels)
    pred = errors > threshold
    np.testing.assert_array_equal(got.confusion, skm.confusion_matrix(a, pred, labels=[False, True]))
    if pred.any():
        assert got.precision == pytest.approx(skm.precision_score(a, pred, zero_division=0), abs=0, rel=1e-12)
    else:
        assert got.precision is None
    assert got.anomaly_recall == pytest.approx(skm.recall_score(a, pred), rel=1e-12)
    assert got.normal_recall == pytest.approx(skm.recall_score(a, pred, pos_label=False), rel=1e-12)
    assert got.f1 == pytest.approx(skm.f1_score(a, pred, zero_division=0), abs=1e-15, rel=1e-12)
    assert got.accuracy == pytest.approx(skm.accuracy_score(a, pred), rel=1e-12)
    assert got.balanced_accuracy == pytest.approx(skm.balanced_accuracy_score(a, pred), rel=1e-12)
    assert (got.n_normal, got.n_anomaly) == (int((~a).sum()), int(a.sum()))
    for k in CLASSES:
        assert got.class_recall[k] == pytest.approx(skm.recall_score(a[labels == k], pred[labels == k]))
        assert got.class_counts[k] == (int(pred[labels == k].sum()), int((labels == k).sum()))
    assert got.class_counts["1"] == (got.fp, got.n_normal)


def test_class_order_is_numeric_and_abnormal_only(case):
    got = m.at_threshold(case[0], case[1], 2.0, case[2])
    assert list(got.class_recall) == ["2", "3", "10"]
    assert list(got.class_counts) == ["1", "2", "3", "10"]


def test_average_precision_matches_sklearn(case):
    errors, a, _, _ = case
    assert m.average_precision(errors, a) == pytest.approx(skm.average_precision_score(a, errors), rel=1e-12)
    assert m.average_precision(np.round(errors), a) == pytest.approx(  # many more ties
        skm.average_precision_score(a, np.round(errors)), rel=1e-12)


def test_each_roc_point_has_the_threshold_that_flags_its_beats(case):
    # scikit-learn flags error >= its thresholds; each point's threshold here flags the same beats by error > t
    errors, a, _, _ = case
    fpr, tpr, thresholds = m.roc_curve(errors, a)
    assert thresholds[-1] < errors.min() and (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    for f, t, thr in zip(fpr, tpr, thresholds, strict=True):
        got = m.at_threshold(errors, a, thr)
        assert (got.anomaly_recall, 1 - got.normal_recall) == pytest.approx((t, f), abs=1e-12)


def test_each_pr_point_has_the_threshold_that_flags_its_beats(case):
    errors, a, _, _ = case
    precision, recall, thresholds = m.pr_curve(errors, a)
    assert (precision[0], recall[0], recall[-1]) == (1.0, 0.0, 1.0) and np.all(np.diff(recall) >= 0)
    for p, r, thr in zip(precision[1:], recall[1:], thresholds[1:], strict=True):
        got = m.at_threshold(errors, a, thr)
        assert (got.precision, got.anomaly_recall) == pytest.approx((p, r), abs=1e-12)
    assert m.at_threshold(errors, a, thresholds[0]).n_flagged == 0
    with pytest.raises(ValueError, match="both"):
        m.pr_curve(errors, np.zeros_like(a))


def test_sorted_errors_at_equals_at_threshold(case, sorted_errors, probe_thresholds):
    errors, a, labels, _ = case
    for t in np.r_[probe_thresholds, -np.inf, np.inf]:
        assert sorted_errors.at(float(t)) == m.at_threshold(errors, a, float(t), labels)


def test_sweep_equals_at_threshold(case, probe_thresholds):
    errors, a, labels, _ = case
    s = m.sweep(errors, a, labels, thresholds=probe_thresholds)
    rates = ("normal_recall", "anomaly_recall", "precision", "f1", "accuracy", "balanced_accuracy")
    for i, t in enumerate(s.thresholds):
        one = m.at_threshold(errors, a, float(t), labels)
        assert (s.tp[i], s.fp[i], s.tn[i], s.fn[i]) == (one.tp, one.fp, one.tn, one.fn)
        for name in rates:
            assert _same(float(getattr(s, name)[i]), getattr(one, name)), name
        assert {k: float(v[i]) for k, v in s.class_recall.items()} == pytest.approx(one.class_recall)


def test_default_grid_spans_both_extremes(case):
    errors, a, labels, _ = case
    s = m.sweep(errors, a, labels, n_thresholds=50)
    assert np.all(np.diff(s.thresholds) > 0)
    assert len(s.thresholds) <= 52
    assert (s.anomaly_recall[0], s.normal_recall[0]) == (1.0, 0.0)
    assert (s.anomaly_recall[-1], s.normal_recall[-1]) == (0.0, 1.0)
    assert all(v[0] == 1.0 and v[-1] == 0.0 for v in s.class_recall.values())


def test_suggestions(case, probe_thresholds):
    errors, a, _, train = case
    got = m.suggest_thresholds(errors, a, train, percentile=97.5)
    assert set(got) == {"max_f1", "youden", "percentile"}
    assert all(type(v) is float for v in got.values())
    full = m.sweep(errors, a, thresholds=probe_thresholds)
    best = m.at_threshold(errors, a, got["max_f1"])
    assert best.f1 == pytest.approx(full.f1.max(), rel=1e-12)
    assert best.f1 >= m.sweep(errors, a).f1.max() - 1e-12
    fpr, tpr, _ = m.roc_curve(errors, a)
    youden = m.at_threshold(errors, a, got["youden"])
    assert youden.anomaly_recall + youden.normal_recall - 1 == pytest.approx(np.max(tpr - fpr), rel=1e-12)
    assert got["percentile"] == np.percentile(train, 97.5)
    assert m.suggest_thresholds(errors, a, train)["percentile"] == np.percentile(train, 99.0)


def test_to_dict_is_json_safe(case):
    d = m.at_threshold(case[0], case[1], 2.0, case[2]).to_dict()
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    assert d["confusion"] == [[d["tn"], d["fp"]], [d["fn"], d["tp"]]]
    assert type(d["tp"]) is int and type(d["f1"]) is float


def test_nothing_flagged_precision_is_undefined_not_zero(case):
    errors, a, _, _ = case
    got = m.at_threshold(errors, a, float(errors.max()))
    # scikit-learn agrees once told that 0/0 is not a number
    assert math.isnan(skm.precision_score(a, np.zeros_like(a), zero_division=np.nan))
    assert (got.n_flagged, got.precision, got.f1, got.anomaly_recall) == (0, None, 0.0, 0.0)
    assert got.to_dict()["precision"] is None
    sweep = m.sweep(errors, a, thresholds=[float(errors.max())])
    assert np.isnan(sweep.precision[0])


def test_no_anomalies():
    errors, a = np.array([0.1, 0.2, 0.2, 0.9]), np.zeros(4, bool)
    got = m.at_threshold(errors, a, 0.15, np.array(["1"] * 4))
    assert (got.anomaly_recall, got.precision, got.f1) == (None, None, None)
    assert got.normal_recall == got.balanced_accuracy == got.accuracy == 0.25
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert got.balanced_accuracy == skm.balanced_accuracy_score(a, errors > 0.15)
    assert got.class_recall == {} and got.class_counts == {"1": (3, 4)}
    json.dumps(got.to_dict(), allow_nan=False)
    assert m.roc_auc(errors, a) is None and m.average_precision(errors, a) is None
    assert set(m.suggest_thresholds(errors, a, errors)) == {"percentile"}
    s = m.sweep(errors, a)
    assert np.isnan(s.anomaly_recall).all() and np.isnan(s.f1).all()
    assert np.array_equal(s.balanced_accuracy, s.normal_recall)


def test_no_normals():
    errors, a = np.array([0.1, 0.2, 0.2, 0.9]), np.ones(4, bool)
    got = m.at_threshold(errors, a, 0.15)
    assert got.normal_recall is None and got.anomaly_recall == got.balanced_accuracy == 0.75
    assert got.precision == 1.0
    assert m.roc_auc(errors, a) is None
    assert m.average_precision(errors, a) == skm.average_precision_score(a, errors) == 1.0
    assert set(m.suggest_thresholds(errors, a, [])) == {"max_f1"}


def test_unlabelled_and_empty():
    got = m.at_threshold([0.3, 0.4], [False, True], 0.35)
    assert got.class_recall == {} and got.class_counts == {}
    empty = m.SortedErrors([], []).at(1.0)
    assert (empty.accuracy, empty.balanced_accuracy, empty.n_flagged) == (None, None, 0)
    assert m.roc_auc([], []) is None


@pytest.mark.parametrize("call", [
    lambda: m.at_threshold([0.1, np.nan], [False, True], 0.5),
    lambda: m.at_threshold([0.1, 0.2], [False, True], float("nan")),
    lambda: m.SortedErrors([0.1], [True, False]),
    lambda: m.sweep([0.1, 0.2], [False, True], labels=["1"]),
])
def test_bad_input_raises(call):
    with pytest.raises(ValueError):
        call()


@st.composite
def beats(draw):
    """Small labelled data sets drawing errors from few values so ties are common."""
    n = draw(st.integers(1, 40))
    errors = draw(st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0, 1.5, 3.0]), min_size=n, max_size=n))
    labels = np.array(draw(st.lists(st.sampled_from(["1", "2", "3"]), min_size=n, max_size=n)))
    thresholds = draw(st.lists(st.floats(-1.0, 4.0), min_size=1, max_size=20))
    return np.array(errors), labels != "1", labels, np.sort(thresholds)


@settings(max_examples=150, deadline=None)
@given(beats())
def test_properties(data):
    errors, a, labels, thresholds = data
    s = m.sweep(errors, a, labels, thresholds=thresholds)
    assert np.all(s.tp + s.fp + s.tn + s.fn == errors.size)
    for rate in (s.anomaly_recall, *s.class_recall.values()):
        assert np.all(np.diff(rate[np.isfinite(rate)]) <= 0)
    assert np.all(np.diff(s.normal_recall[np.isfinite(s.normal_recall)]) >= 0)
    se = m.SortedErrors(errors, a, labels)
    for t in thresholds:
        one = se.at(float(t))
        flagged = sum(f for f, _ in one.class_counts.values())
        assert flagged == one.n_flagged
        assert sum(total for _, total in one.class_counts.values()) == errors.size
        assert sum(one.class_counts[k][0] for k in one.class_recall) == one.tp
        json.dumps(one.to_dict(), allow_nan=False)
