"""Anomaly detectors with one contract: fit on normal beats, score any beats, higher = more abnormal.

Parameters live in ``__init__``; ``fit(normal_beats)`` learns and returns self; learned state ends in ``_``.
Every detector also keeps ``train_scores_``: its scores of the training normals computed without leakage
(a beat never scored by a fit that saw it, where that matters), for the label-free percentile threshold, and
``reconstruct(beats)``: a normal-looking beat to show beside each input (the autoencoder's and PCA's
reconstruction; for kNN the mean of the nearest training normals).

* :class:`LSTMAutoencoder`: the recurrent autoencoder of ``ecgviz.detectors.lstm``; score = reconstruction error.
* :class:`KNNDistance`: mean L1 or L2 distance to the ``k`` nearest training normals (scikit-learn).
* :class:`PCAReconstruction`: squared error after projecting onto the leading principal components.

Baselines (kNN, PCA) save to a plain dict of tensors, numbers and strings (:func:`baseline_state`) and load back
through :func:`baseline_from_state`, which checks every field before building anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ecgviz.errors import UserError

KNN_METRICS = {"l1": "manhattan", "l2": "euclidean"}
# A checkpoint that asks for more than this is hostile or broken, not a real detector.
MAX_STORED_VALUES = 50_000_000


def _beats(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"beats must be a non-empty 2-D array (n, T), got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("beats must all be finite")
    return X


def _check_fitted(det, attr: str) -> None:
    if not hasattr(det, attr):
        raise ValueError(f"{type(det).__name__} is not fitted yet: call fit(normal_beats) first")


class KNNDistance:
    """Mean distance to the k nearest training normals; a beat far from every normal one is abnormal."""

    kind = "knn"

    def __init__(self, k: int = 5, metric: str = "l2"):
        if not isinstance(k, int | np.integer) or isinstance(k, bool) or k < 1:
            raise UserError(f"k must be a positive integer, got {k!r}")
        if metric not in KNN_METRICS:
            raise UserError(f"unknown metric {metric!r}: use one of {tuple(KNN_METRICS)}")
        self.k = int(k)
        self.metric = metric

    @property
    def description(self) -> str:
        """Short human name, e.g. 'kNN-5 (L1)'."""
        return f"kNN-{self.k} ({self.metric.upper()})"

    def params(self) -> dict:
        """The constructor's arguments."""
        return {"k": self.k, "metric": self.metric}

    def fit(self, normal_beats) -> KNNDistance:
        """Index the training normals; their own scores leave each beat out of its neighbours (leave-one-out)."""
        from sklearn.neighbors import NearestNeighbors

        X = _beats(normal_beats)
        if len(X) < self.k + 1:
            raise UserError(f"kNN with k={self.k} needs at least {self.k + 1} normal beats, got {len(X)}")
        self.train_beats_ = X
        self.index_ = NearestNeighbors(n_neighbors=self.k, metric=KNN_METRICS[self.metric]).fit(X)
        # k + 1 neighbours of each training beat include the beat itself at distance 0: drop one zero column.
        # A duplicate beat also sits at distance 0, but dropping either zero leaves the same distances.
        dist, _ = self.index_.kneighbors(X, n_neighbors=self.k + 1)
        self.train_scores_ = dist[:, 1:].mean(axis=1)
        return self

    def score(self, beats) -> np.ndarray:
        """Mean distance (n,) of each beat to its k nearest training normals."""
        _check_fitted(self, "index_")
        dist, _ = self.index_.kneighbors(_beats(beats))
        return dist.mean(axis=1).astype(np.float64)

    def reconstruct(self, beats) -> np.ndarray:
        """Mean (n, T) of each beat's k nearest training normals: the normal shape it is compared with."""
        _check_fitted(self, "index_")
        _, idx = self.index_.kneighbors(_beats(beats))
        return self.train_beats_[idx].mean(axis=1)

    def state(self) -> dict[str, np.ndarray]:
        """Learned arrays to save."""
        _check_fitted(self, "index_")
        return {"train_beats_": self.train_beats_, "train_scores_": np.asarray(self.train_scores_, np.float64)}

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        from sklearn.neighbors import NearestNeighbors

        X = arrays["train_beats_"]
        if len(X) < self.k + 1:
            raise ValueError(f"train_beats_ holds {len(X)} beats, fewer than k + 1 = {self.k + 1}")
        self.train_beats_ = X
        self.index_ = NearestNeighbors(n_neighbors=self.k, metric=KNN_METRICS[self.metric]).fit(X)
        self.train_scores_ = arrays["train_scores_"]


class PCAReconstruction:
    """Squared error (mean over samples) after projecting onto the normals' leading principal components."""

    kind = "pca"

    def __init__(self, n_components: int = 8, folds: int = 5, seed: int = 0):
        for name, value, low in (("n_components", n_components, 1), ("folds", folds, 2)):
            if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < low:
                raise UserError(f"{name} must be an integer >= {low}, got {value!r}")
        self.n_components = int(n_components)
        self.folds = int(folds)
        self.seed = int(seed)

    @property
    def description(self) -> str:
        """Short human name, e.g. 'PCA-8'."""
        return f"PCA-{self.n_components}"

    def params(self) -> dict:
        """The constructor's arguments."""
        return {"n_components": self.n_components, "folds": self.folds, "seed": self.seed}

    @staticmethod
    def _fit_basis(X: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=min(n, X.shape[0] - 1, X.shape[1]), svd_solver="full").fit(X)
        return pca.mean_.astype(np.float32), pca.components_.astype(np.float32)

    @staticmethod
    def _errors(X: np.ndarray, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
        centred = X - mean
        recon = centred @ components.T @ components
        return ((centred - recon) ** 2).mean(axis=1).astype(np.float64)

    def fit(self, normal_beats) -> PCAReconstruction:
        """Fit the basis on every normal; training scores come from bases fitted on the other folds only."""
        X = _beats(normal_beats)
        if len(X) < 2 * self.folds:
            raise UserError(f"PCA with {self.folds} folds needs at least {2 * self.folds} normal beats, got {len(X)}")
        self.mean_, self.components_ = self._fit_basis(X, self.n_components)
        # out-of-fold scores: each training beat is scored by a basis that never saw it
        fold = np.random.default_rng(self.seed).permutation(len(X)) % self.folds
        scores = np.empty(len(X))
        for f in range(self.folds):
            mean, comps = self._fit_basis(X[fold != f], self.n_components)
            scores[fold == f] = self._errors(X[fold == f], mean, comps)
        self.train_scores_ = scores
        return self

    def score(self, beats) -> np.ndarray:
        """Mean squared reconstruction error (n,)."""
        _check_fitted(self, "components_")
        return self._errors(_beats(beats), self.mean_, self.components_)

    def reconstruct(self, beats) -> np.ndarray:
        """Projection (n, T) of each beat onto the normal subspace."""
        _check_fitted(self, "components_")
        centred = _beats(beats) - self.mean_
        return centred @ self.components_.T @ self.components_ + self.mean_

    def state(self) -> dict[str, np.ndarray]:
        """Learned arrays to save."""
        _check_fitted(self, "components_")
        return {"mean_": self.mean_, "components_": self.components_,
                "train_scores_": np.asarray(self.train_scores_, np.float64)}

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        mean, comps = arrays["mean_"], arrays["components_"]
        if mean.ndim != 1 or comps.ndim != 2 or comps.shape[1] != mean.shape[0] or comps.shape[0] < 1:
            raise ValueError(f"mean_ {tuple(mean.shape)} and components_ {tuple(comps.shape)} do not fit together")
        self.mean_, self.components_, self.train_scores_ = mean, comps, arrays["train_scores_"]


class LSTMAutoencoder:
    """The recurrent autoencoder as a detector: trains on normal beats, scores by reconstruction error."""

    kind = "lstm_ae"

    def __init__(self, model_config=None, train_config=None, val_fraction: float = 0.08, error: str | None = None):
        if not 0.0 < val_fraction < 1.0:
            raise UserError(f"val_fraction must be between 0 and 1, got {val_fraction}")
        self.model_config = model_config
        self.train_config = train_config
        self.val_fraction = float(val_fraction)
        self.error = error  # None: the pipeline's default for the training loss

    @property
    def description(self) -> str:
        """Short human name."""
        from ecgviz.detectors.config import ModelConfig

        cfg = self.model_config or ModelConfig()
        return f"LSTM autoencoder (embedding {cfg.embedding_dim})"

    def fit(self, normal_beats, val_beats=None, on_epoch=None, stop=None) -> LSTMAutoencoder:
        """Train; without `val_beats` a seeded `val_fraction` of the normals decides early stopping."""
        from ecgviz.detectors.config import DEFAULT_ERROR, TrainConfig
        from ecgviz.detectors.reconstruction import reconstruction_errors
        from ecgviz.detectors.train import train

        X = _beats(normal_beats)
        config = self.train_config or TrainConfig()
        if val_beats is None:
            if len(X) < 3:
                raise UserError(f"the autoencoder needs at least 3 normal beats, got {len(X)}")
            perm = np.random.default_rng(config.seed).permutation(len(X))
            n_val = max(1, round(self.val_fraction * len(X)))
            X, val_beats = X[np.sort(perm[n_val:])], X[np.sort(perm[:n_val])]
        result = train(X, _beats(val_beats), self.model_config, config, on_epoch=on_epoch, stop=stop)
        self.result_ = result
        self.model_, self.normalisation_ = result.model, result.normalisation

        self.loss_ = self.error or (DEFAULT_ERROR if config.loss == "l1" else config.loss)
        # in-sample: the model barely overfits its normals (train and validation loss differ by ~2 %)
        self.train_scores_ = reconstruction_errors(self.model_, X, loss=self.loss_, normalisation=self.normalisation_)
        return self

    @classmethod
    def from_model(cls, model, normalisation: tuple[float, float], loss: str) -> LSTMAutoencoder:
        """Wrap an already trained RecurrentAutoencoder (e.g. a checkpoint's)."""
        det = cls(model_config=model.config)
        det.model_, det.normalisation_, det.loss_ = model, tuple(normalisation), loss
        return det

    def score(self, beats) -> np.ndarray:
        """Reconstruction error (n,) in normalised units."""
        from ecgviz.detectors.reconstruction import reconstruction_errors

        _check_fitted(self, "model_")
        return reconstruction_errors(self.model_, _beats(beats), loss=self.loss_, normalisation=self.normalisation_)

    def reconstruct(self, beats) -> np.ndarray:
        """Reconstructed beats (n, T) in the data's units."""
        from ecgviz.detectors.reconstruction import reconstruct

        _check_fitted(self, "model_")
        return reconstruct(self.model_, _beats(beats), loss=self.loss_, normalisation=self.normalisation_)


BASELINES: dict[str, type] = {"knn": KNNDistance, "pca": PCAReconstruction}
# what each baseline stores: name -> (ndim, dtype)
_ARRAYS = {"knn": {"train_beats_": (2, np.float32), "train_scores_": (1, np.float64)},
           "pca": {"mean_": (1, np.float32), "components_": (2, np.float32), "train_scores_": (1, np.float64)}}


def baseline_state(det) -> dict[str, Any]:
    """A fitted baseline as a plain dict (kind, params, tensors) that ``torch.load(weights_only=True)`` reads."""
    import torch

    if det.kind not in BASELINES:
        raise ValueError(f"not a baseline detector: {det.kind!r}")
    return {"kind": det.kind, "params": det.params(),
            "arrays": {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in det.state().items()}}


def baseline_from_state(d: object, seq_len: int):
    """Inverse of :func:`baseline_state`; ValueError naming the field that is wrong."""
    import torch

    if not isinstance(d, dict):
        raise UserError("detector entry is not a dict")
    kind = d.get("kind")
    if kind not in BASELINES:
        raise UserError(f"unknown detector kind {kind!r}: expected one of {tuple(BASELINES)}")
    params = d.get("params")
    if not isinstance(params, dict) or not all(isinstance(v, int | float | str) for v in params.values()):
        raise UserError("detector params must be a dict of numbers and strings")
    det = BASELINES[kind](**params)  # the constructor validates each parameter (TypeError for unknown ones)
    arrays_in = d.get("arrays")
    if not isinstance(arrays_in, dict):
        raise UserError("detector arrays missing")
    arrays = {}
    for name, (ndim, dtype) in _ARRAYS[kind].items():
        t = arrays_in.get(name)
        if not isinstance(t, torch.Tensor):
            raise UserError(f"detector array {name} is missing")
        if t.ndim != ndim or t.numel() > MAX_STORED_VALUES or t.numel() == 0:
            raise UserError(f"detector array {name} has shape {tuple(t.shape)}, expected {ndim} dimension(s)")
        a = t.detach().cpu().numpy().astype(dtype, copy=True)
        if not np.isfinite(a).all():
            raise UserError(f"detector array {name} holds NaN or infinite values")
        if ndim == 2 and a.shape[1] != seq_len:
            raise UserError(f"detector array {name} has beats of {a.shape[1]} samples, the checkpoint {seq_len}")
        arrays[name] = a
    det._restore(arrays)
    return det


def make(kind: str, **params):
    """A detector by kind name ('lstm_ae', 'knn', 'pca') with its parameters."""
    table = {**BASELINES, "lstm_ae": LSTMAutoencoder}
    if kind not in table:
        raise UserError(f"unknown detector {kind!r}: use one of {tuple(table)}")
    return table[kind](**params)


def kind_of(model) -> str:
    """'lstm_ae' for a bare RecurrentAutoencoder or the wrapper, else the detector's kind."""
    return getattr(model, "kind", "lstm_ae")


def describe(model) -> str:
    """Human name of a checkpoint's model or a detector."""
    if kind_of(model) == "lstm_ae" and not isinstance(model, LSTMAutoencoder):
        return f"LSTM autoencoder (embedding {model.config.embedding_dim})"
    return model.description
