"""What every detector is: a scikit-learn estimator fitted on normal beats whose scores rise with abnormality.

Parameters live in ``__init__`` (``get_params``/``set_params`` and ``sklearn.base.clone`` work as usual);
``fit(normal_beats)`` learns and returns self; learned state ends in ``_``; ``decision_function(beats)`` gives one
score per beat, higher = more abnormal, and ``decision_scores_`` holds the training beats' scores for the
label-free percentile threshold. ``reconstruct(beats)`` gives a normal-looking beat to show beside each input.
Each detector writes itself into a checkpoint with ``checkpoint_fields()``.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted


def as_beats(X) -> np.ndarray:
    """Beats as a float32 (n, T) array; ValueError for another shape, an empty array or a value that is not finite."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"beats must be a non-empty 2-D array (n, T), got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("beats must all be finite")
    return X


class Detector(BaseEstimator):
    """The contract every detector follows; subclasses set `kind` and implement the methods below."""

    kind = ""
    # True when reconstructions come out of a trained network, which can collapse to one flat shape (the quality
    # check looks for that); a neighbour mean or a linear projection cannot
    learned_reconstruction = False
    # how `decision_scores_` were made, said beside the percentile threshold taken from them
    scores_note = ""
    # True when scoring runs a network over every beat: seconds for a long recording, where the others take a moment
    slow_to_score = False
    # (mean, std) applied to beats before scoring; the baselines score beats as they are
    normalisation_: tuple[float, float] = (0.0, 1.0)

    @property
    def description(self) -> str:
        """Short human name, e.g. 'kNN-5 (L1)'."""
        raise NotImplementedError

    @property
    def short_name(self) -> str:
        """The name on a narrow tile: the description unless a subclass has a shorter one."""
        return self.description

    @property
    def measure(self) -> str:
        """What the scores are (and so the threshold): the detector's kind unless it offers several measures."""
        return self.kind

    def fit(self, X, y=None, **fit_params) -> Detector:
        """Learn from normal beats X (n, T); `y` is ignored (every beat given is normal)."""
        raise NotImplementedError

    def decision_function(self, X) -> np.ndarray:
        """Abnormality score (n,) of each beat: higher = more abnormal."""
        raise NotImplementedError

    def reconstruct(self, X) -> np.ndarray:
        """The normal-looking beat (n, T) each score compares a beat with."""
        raise NotImplementedError

    def reasons(self, X, threshold: float) -> np.ndarray | None:
        """Why each beat scores above `threshold` ('' below it), for detectors whose score has named parts;
        None for a single score."""
        return None

    def check_fitted(self) -> None:
        """NotFittedError (a ValueError) unless fit has run or the detector was loaded fitted."""
        check_is_fitted(self)

    def training_record(self) -> dict:
        """JSON-safe facts about the fit, kept as a checkpoint's train_config."""
        return {"detector": self.kind, "params": self.get_params()}

    def fit_history(self) -> tuple[dict, ...]:
        """Per-epoch losses of an iterative fit; none for a fit in one step."""
        return ()

    def resume_state(self) -> dict:
        """What a later fit needs to continue this one (an optimizer's state); empty when it cannot be continued."""
        return {}

    def checkpoint_fields(self) -> dict:
        """The checkpoint fields that hold this fitted detector: tensors, numbers, text and lists only."""
        raise NotImplementedError
