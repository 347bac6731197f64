"""Detectors: one estimator contract, scores cross-checked against scikit-learn, leakage-free training scores,
safe save/load."""

import io

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.neighbors import NearestNeighbors

from ecgviz.checkpoint.store import CheckpointError, load_checkpoint, save_checkpoint, to_bytes, to_dict
from ecgviz.detectors.autoencoder import LSTMAutoencoder
from ecgviz.detectors.baselines import KNNDistance, PCAReconstruction
from ecgviz.evaluation.split import protocol_split
from ecgviz.pipeline.protocol import evaluate, fit_detector, score_beats
from tests.conftest import TINY_TRAIN
from tests.helpers import synthetic_beats


@pytest.fixture(scope="module")
def beats():
    X, labels = synthetic_beats(n_normal=80, n_anomaly=20, length=24)
    return X, labels


@pytest.mark.parametrize("metric", ["l1", "l2"])
def test_knn_score_is_mean_distance_to_k_nearest_normals(beats, metric):
    X, labels = beats
    normal, query = X[labels == "1"][:60], X[60:]
    det = KNNDistance(k=3, metric=metric).fit(normal)
    assert det.fit(normal) is det
    ord_ = 1 if metric == "l1" else 2
    dist = np.linalg.norm(query[:, None, :].astype(np.float64) - normal[None].astype(np.float64), ord=ord_, axis=2)
    expected = np.sort(dist, axis=1)[:, :3].mean(axis=1)
    np.testing.assert_allclose(det.decision_function(query), expected, rtol=1e-5)
    # higher = more abnormal
    assert det.decision_function(X[labels != "1"]).min() > np.median(det.decision_function(normal))


def test_knn_training_scores_leave_each_beat_out(beats):
    X, labels = beats
    normal = X[labels == "1"]
    det = KNNDistance(k=4, metric="l2").fit(normal)
    for i in (0, 17, 55):
        others = np.delete(normal, i, axis=0)
        nn = NearestNeighbors(n_neighbors=4).fit(others)
        assert det.decision_scores_[i] == pytest.approx(nn.kneighbors(normal[i:i + 1])[0].mean(), rel=1e-5)
    # scoring the training beats in-sample would count each beat's zero distance to itself
    assert (det.decision_function(normal) < det.decision_scores_).all()


def test_knn_duplicate_training_beat_scores_zero_against_its_copy(beats):
    X, labels = beats
    normal = np.vstack([X[labels == "1"], X[:1]])  # beat 0 twice
    det = KNNDistance(k=1).fit(normal)
    assert det.decision_scores_[0] == 0.0 and det.decision_scores_[-1] == 0.0


def test_pca_matches_sklearn_and_scores_out_of_fold(beats):
    X, labels = beats
    normal = X[labels == "1"]
    det = PCAReconstruction(n_components=3, folds=4).fit(normal)
    pca = PCA(n_components=3).fit(normal)
    recon = pca.inverse_transform(pca.transform(X))
    np.testing.assert_allclose(det.reconstruct(X), recon, atol=1e-4)
    np.testing.assert_allclose(det.decision_function(X), ((X - recon) ** 2).mean(axis=1), rtol=1e-3, atol=1e-7)
    # each training beat is scored by a basis fitted without it: worse than in-sample on average
    assert det.decision_scores_.mean() > det.decision_function(normal).mean()


def test_parameters_are_checked():
    with pytest.raises(ValueError, match="k must be"):
        KNNDistance(k=0)
    with pytest.raises(ValueError, match="unknown metric"):
        KNNDistance(metric="cosine")
    with pytest.raises(ValueError, match="n_components"):
        PCAReconstruction(n_components=0)
    with pytest.raises(ValueError, match="unknown error measure"):
        LSTMAutoencoder(error="l3")
    with pytest.raises(NotFittedError, match="not fitted"):
        KNNDistance().decision_function(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="at least 6"):
        KNNDistance(k=5).fit(np.zeros((5, 3)))


@pytest.mark.parametrize("detector", [KNNDistance(k=3, metric="l1"), PCAReconstruction(n_components=2),
                                      LSTMAutoencoder(train_config=TINY_TRAIN, error="mse")])
def test_every_detector_is_a_scikit_learn_estimator(detector, beats):
    X, labels = beats
    params = detector.get_params()
    twin = clone(detector)  # rebuilt from get_params alone: the parameters are the whole configuration
    assert twin.get_params() == params and twin is not detector
    with pytest.raises(NotFittedError):
        twin.decision_function(X)
    normal = X[labels == "1"]
    assert twin.fit(normal) is twin
    assert twin.decision_scores_.shape[0] <= len(normal) and np.isfinite(twin.decision_scores_).all()
    scores = twin.decision_function(X)
    assert scores.shape == (len(X),) and scores.dtype == np.float64
    assert np.median(scores[labels != "1"]) > np.median(scores[labels == "1"])  # higher = more abnormal
    assert twin.reconstruct(X[:3]).shape == (3, X.shape[1])
    assert twin.get_params() == params  # fitting never changes a parameter


@pytest.mark.parametrize(("kind", "detector"), [("knn", KNNDistance(k=3, metric="l1")),
                                                ("pca", PCAReconstruction(n_components=2))])
def test_baseline_checkpoint_round_trip(tiny_data, tmp_path, kind, detector):
    ckpt = fit_detector(tiny_data, detector, ["1"])
    assert ckpt.kind == kind and ckpt.metrics["auroc"] is not None
    back = load_checkpoint(save_checkpoint(ckpt, tmp_path / f"{kind}.pt"))
    assert back.kind == kind and back.detector.get_params() == ckpt.detector.get_params()
    np.testing.assert_array_equal(score_beats(back, tiny_data.X), score_beats(ckpt, tiny_data.X))
    np.testing.assert_array_equal(back.detector.decision_scores_, ckpt.detector.decision_scores_)
    assert back.threshold == ckpt.threshold and np.array_equal(back.split.test, ckpt.split.test)
    assert ckpt.threshold == np.percentile(ckpt.detector.decision_scores_, 98.0)
    # a plain dict a weights-only loader reads
    torch.load(io.BytesIO(to_bytes(ckpt)), weights_only=True)
    assert evaluate(back, tiny_data).auroc == ckpt.metrics["auroc"]


def test_damaged_baseline_checkpoints_are_refused(tiny_data):
    ckpt = fit_detector(tiny_data, KNNDistance(k=3), ["1"])
    d = to_dict(ckpt)

    def refused(mutate, match):
        bad = {**d, "detector": {**d["detector"], "arrays": dict(d["detector"]["arrays"])}}
        mutate(bad)
        buf = io.BytesIO()
        torch.save(bad, buf)
        with pytest.raises(CheckpointError, match=match):
            load_checkpoint(buf.getvalue(), name="bad.pt")

    refused(lambda b: b["detector"].update(kind="svm"), "unknown detector kind")
    refused(lambda b: b["detector"].update(params={"k": -1, "metric": "l1"}), "k must be")
    refused(lambda b: b["detector"]["arrays"].pop("train_beats_"), "train_beats_ is missing")
    refused(lambda b: b["detector"]["arrays"].update(train_beats_=torch.zeros(10, 5)), "5 samples")
    refused(lambda b: b["detector"]["arrays"].update(train_beats_=torch.full((10, 24), float("nan"))), "NaN")


def test_the_autoencoder_owns_its_normalisation_and_error(tiny_data, tiny_ckpt):
    det = tiny_ckpt.detector
    assert det.measure == tiny_ckpt.loss == "l1_trim"
    normal = tiny_data.X[tiny_ckpt.split.train]
    # the data's units do not matter to a detector that normalises by its training beats' mean and std
    scaled = LSTMAutoencoder(det.model_config, TINY_TRAIN).fit(normal * 10.0 + 3.0,
                                                             val_beats=tiny_data.X[tiny_ckpt.split.val] * 10.0 + 3.0)
    mean, std = scaled.normalisation_
    assert (mean, std) == pytest.approx((det.normalisation_[0] * 10 + 3, det.normalisation_[1] * 10), rel=1e-4)
    np.testing.assert_allclose(scaled.decision_function(tiny_data.X * 10.0 + 3.0), score_beats(tiny_ckpt, tiny_data.X),
                               rtol=1e-3)
    # the training beats' in-sample errors are the threshold's reference
    np.testing.assert_allclose(det.decision_scores_, det.decision_function(normal))
    assert tiny_ckpt.threshold == pytest.approx(np.percentile(det.decision_scores_, 98.0))


def test_the_autoencoder_keeps_some_normals_for_early_stopping_when_given_none(tiny_data, tiny_ckpt):
    normal = tiny_data.X[tiny_ckpt.split.train]
    det = LSTMAutoencoder(model_config=tiny_ckpt.detector.model_config, train_config=TINY_TRAIN).fit(normal)
    assert det.decision_scores_.shape == (len(normal) - round(0.08 * len(normal)),)


def test_baselines_share_the_autoencoders_split(tiny_data, tiny_ckpt):
    ckpt = fit_detector(tiny_data, PCAReconstruction(2), ["1"], split=tiny_ckpt.split)
    assert np.array_equal(ckpt.split.train, tiny_ckpt.split.train)
    assert protocol_split(tiny_data, ["1"]).n_beats == tiny_data.n_beats


def test_trimmed_l1_error_leaves_out_the_largest_residuals():
    from ecgviz.detectors.config import TRIM_FRACTION
    from ecgviz.detectors.reconstruction import beat_error

    rng = np.random.default_rng(0)
    x, r = rng.normal(size=(6, 140, 1)), rng.normal(size=(6, 140, 1))
    k = round(TRIM_FRACTION * 140)
    residual = np.sort(np.abs(r - x)[..., 0], axis=1)
    expected = residual[:, : 140 - k].sum(axis=1)
    got = beat_error(torch.from_numpy(r), torch.from_numpy(x), "l1_trim").numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert k == 3
    # on a short beat nothing is left out: plain L1
    np.testing.assert_allclose(beat_error(torch.from_numpy(r[:, :20]), torch.from_numpy(x[:, :20]), "l1_trim"),
                               beat_error(torch.from_numpy(r[:, :20]), torch.from_numpy(x[:, :20]), "l1"))
