import numpy as np
import pytest

from ecgviz.evaluation.split import Split, SplitError, make_split


@pytest.fixture(scope="module")
def labels():
    return np.array(["1"] * 200 + ["2"] * 30 + ["3"] * 10)


def test_fractions_and_disjoint(labels):
    s = make_split(labels, ["1"], seed=3)
    assert (len(s.train), len(s.val), len(s.test)) == (170, 15, 15)
    parts = [s.train, s.val, s.test, s.anomalies]
    assert sum(len(p) for p in parts) == len(labels)
    assert len(np.unique(np.concatenate(parts))) == len(labels)
    assert set(labels[s.anomalies]) == {"2", "3"}
    assert set(labels[np.concatenate([s.train, s.val, s.test])]) == {"1"}


def test_seed_reproducible_and_changes(labels):
    a, b, c = make_split(labels, ["1"], seed=1), make_split(labels, ["1"], seed=1), make_split(labels, ["1"], seed=2)
    assert np.array_equal(a.train, b.train) and np.array_equal(a.test, b.test)
    assert not np.array_equal(a.test, c.test)


def test_several_normal_labels(labels):
    s = make_split(labels, ["1", "3"], seed=0)
    assert len(s.anomalies) == 30
    assert len(s.train) + len(s.val) + len(s.test) == 210


def test_eval_indices_never_include_training_beats(labels):
    s = make_split(labels, ["1"], seed=0)
    idx, is_anomaly = s.eval_indices()
    assert not np.intersect1d(idx, np.concatenate([s.train, s.val])).size
    assert is_anomaly.sum() == 40 and (~is_anomaly).sum() == 15
    assert np.array_equal(labels[idx] != "1", is_anomaly)


def test_dict_round_trip(labels):
    s = make_split(labels, ["1"], fractions=(0.7, 0.2, 0.1), seed=5)
    t = Split.from_dict(s.to_dict())
    for name in ("train", "val", "test", "anomalies"):
        assert np.array_equal(getattr(s, name), getattr(t, name))
    assert (t.seed, t.fractions, t.normal_labels, t.n_beats) == (5, (0.7, 0.2, 0.1), ("1",), 240)


def test_unlabelled_counts_every_beat_as_normal():
    s = make_split(None, ["1"], n_beats=40, seed=0)
    assert len(s.anomalies) == 0 and len(s.train) + len(s.val) + len(s.test) == 40


@pytest.mark.parametrize(
    ("normal", "fractions", "match"),
    [(["9"], (0.85, 0.075, 0.075), "not found"), ([], (0.85, 0.075, 0.075), "none chosen"),
     (["1"], (0.5, 0.2, 0.2), "summing to 1")],
)
def test_bad_requests(labels, normal, fractions, match):
    with pytest.raises(SplitError, match=match):
        make_split(labels, normal, fractions)


def test_unseen_is_everything_but_train_and_val(labels):
    s = make_split(labels, ["1"], seed=0)
    assert np.array_equal(s.unseen(), np.sort(np.concatenate([s.test, s.anomalies])))
