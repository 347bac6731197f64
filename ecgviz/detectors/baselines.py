"""Two baselines the autoencoder is measured against, both fitted in seconds on the training normals.

* :class:`KNNDistance`: mean L1 or L2 distance to the ``k`` nearest training normals (scikit-learn).
* :class:`PCAReconstruction`: squared error after projecting onto the leading principal components.

Their ``decision_scores_`` are computed without leakage (no training beat is scored by a fit that saw it). They
save to a plain dict of tensors, numbers and strings (:meth:`Baseline.checkpoint_fields`) and load back through
:func:`from_state`, which checks every field before building anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from ecgviz.detectors.base import Detector, as_beats
from ecgviz.errors import UserError

KNN_METRICS = {"l1": "manhattan", "l2": "euclidean"}
# A checkpoint that asks for more than this is hostile or broken, not a real detector.
MAX_STORED_VALUES = 50_000_000


class Baseline(Detector):
    """A detector whose learned state is a few arrays, stored under the checkpoint's `detector` entry."""

    scores_note = " (out-of-sample scores)"
    # the learned arrays as stored: name -> (ndim, dtype); the training scores are stored as train_scores_
    ARRAYS: ClassVar[dict[str, tuple[int, Any]]] = {}

    def state(self) -> dict[str, np.ndarray]:
        """Learned arrays to save, under their stored names."""
        self.check_fitted()
        arrays = {name: getattr(self, name) for name in self.ARRAYS if name != "train_scores_"}
        return {**arrays, "train_scores_": self.decision_scores_}

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        raise NotImplementedError

    def checkpoint_fields(self) -> dict:
        """Format 2: a `detector` entry (kind, params, tensors) that ``torch.load(weights_only=True)`` reads."""
        import torch

        arrays = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=self.ARRAYS[k][1]))
                  for k, v in self.state().items()}
        return {"format_version": 2, "detector": {"kind": self.kind, "params": self.get_params(), "arrays": arrays},
                "state_dict": {}, "model_config": {}, "normalisation": [0.0, 1.0], "loss": self.kind}


class KNNDistance(Baseline):
    """Mean distance to the k nearest training normals; a beat far from every normal one is abnormal."""

    kind = "knn"
    ARRAYS: ClassVar = {"train_beats_": (2, np.float32), "train_scores_": (1, np.float64)}

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

    def _index(self, X: np.ndarray) -> None:
        from sklearn.neighbors import NearestNeighbors

        self.train_beats_ = X
        self.index_ = NearestNeighbors(n_neighbors=self.k, metric=KNN_METRICS[self.metric]).fit(X)

    def fit(self, X, y=None) -> KNNDistance:
        """Index the training normals; their own scores leave each beat out of its neighbours (leave-one-out)."""
        X = as_beats(X)
        if len(X) < self.k + 1:
            raise UserError(f"kNN with k={self.k} needs at least {self.k + 1} normal beats, got {len(X)}")
        self._index(X)
        # k + 1 neighbours of each training beat include the beat itself at distance 0: drop one zero column.
        # A duplicate beat also sits at distance 0, but dropping either zero leaves the same distances.
        dist, _ = self.index_.kneighbors(X, n_neighbors=self.k + 1)
        self.decision_scores_ = dist[:, 1:].mean(axis=1)
        return self

    def decision_function(self, X) -> np.ndarray:
        """Mean distance (n,) of each beat to its k nearest training normals."""
        self.check_fitted()
        dist, _ = self.index_.kneighbors(as_beats(X))
        return dist.mean(axis=1).astype(np.float64)

    def reconstruct(self, X) -> np.ndarray:
        """Mean (n, T) of each beat's k nearest training normals: the normal shape it is compared with."""
        self.check_fitted()
        _, idx = self.index_.kneighbors(as_beats(X))
        return self.train_beats_[idx].mean(axis=1)

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        X = arrays["train_beats_"]
        if len(X) < self.k + 1:
            raise ValueError(f"train_beats_ holds {len(X)} beats, fewer than k + 1 = {self.k + 1}")
        self._index(X)
        self.decision_scores_ = arrays["train_scores_"]


class PCAReconstruction(Baseline):
    """Squared error (mean over samples) after projecting onto the normals' leading principal components."""

    kind = "pca"
    ARRAYS: ClassVar = {"mean_": (1, np.float32), "components_": (2, np.float32), "train_scores_": (1, np.float64)}

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

    def fit(self, X, y=None) -> PCAReconstruction:
        """Fit the basis on every normal; training scores come from bases fitted on the other folds only."""
        X = as_beats(X)
        if len(X) < 2 * self.folds:
            raise UserError(f"PCA with {self.folds} folds needs at least {2 * self.folds} normal beats, got {len(X)}")
        self.mean_, self.components_ = self._fit_basis(X, self.n_components)
        # out-of-fold scores: each training beat is scored by a basis that never saw it
        fold = np.random.default_rng(self.seed).permutation(len(X)) % self.folds
        scores = np.empty(len(X))
        for f in range(self.folds):
            mean, comps = self._fit_basis(X[fold != f], self.n_components)
            scores[fold == f] = self._errors(X[fold == f], mean, comps)
        self.decision_scores_ = scores
        return self

    def decision_function(self, X) -> np.ndarray:
        """Mean squared reconstruction error (n,)."""
        self.check_fitted()
        return self._errors(as_beats(X), self.mean_, self.components_)

    def reconstruct(self, X) -> np.ndarray:
        """Projection (n, T) of each beat onto the normal subspace."""
        self.check_fitted()
        centred = as_beats(X) - self.mean_
        return centred @ self.components_.T @ self.components_ + self.mean_

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        mean, comps = arrays["mean_"], arrays["components_"]
        if mean.ndim != 1 or comps.ndim != 2 or comps.shape[1] != mean.shape[0] or comps.shape[0] < 1:
            raise ValueError(f"mean_ {tuple(mean.shape)} and components_ {tuple(comps.shape)} do not fit together")
        self.mean_, self.components_, self.decision_scores_ = mean, comps, arrays["train_scores_"]


BASELINES: dict[str, type[Baseline]] = {"knn": KNNDistance, "pca": PCAReconstruction}


def from_state(d: object, seq_len: int) -> Baseline:
    """The detector a checkpoint's `detector` entry holds; UserError naming the field that is wrong."""
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
    for name, (ndim, dtype) in det.ARRAYS.items():
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
