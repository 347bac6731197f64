"""Who trains and who is judged: normal beats split train/validation/test; every other beat is an anomaly."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

DEFAULT_FRACTIONS = (0.85, 0.075, 0.075)


class SplitError(ValueError):
    """The requested protocol cannot be applied to these labels."""


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.int64)
    a.flags.writeable = False
    return a


@dataclass(frozen=True)
class Split:
    """Indices into one data set; it travels with the model so evaluation never scores a training beat."""

    normal_labels: tuple[str, ...]
    train: np.ndarray  # (n_train,) training normals
    val: np.ndarray  # (n_val,) early-stopping normals
    test: np.ndarray  # (n_test,) held-out normals
    anomalies: np.ndarray  # (n_anom,) every beat whose label is not normal
    seed: int = 0
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS
    n_beats: int = field(default=0)

    def eval_indices(self) -> tuple[np.ndarray, np.ndarray]:
        """Held-out normals then anomalies, with an is-anomaly flag per index."""
        idx = np.concatenate([self.test, self.anomalies])
        is_anomaly = np.concatenate([np.zeros(len(self.test), bool), np.ones(len(self.anomalies), bool)])
        return idx, is_anomaly

    def unseen(self) -> np.ndarray:
        """Every beat the model neither trained nor early-stopped on, whatever is called normal now."""
        return np.setdiff1d(np.arange(self.n_beats), np.union1d(self.train, self.val))

    def to_dict(self) -> dict:
        """Plain lists and scalars, safe for a weights-only checkpoint or JSON."""
        return {
            "normal_labels": list(self.normal_labels),
            "train": self.train.tolist(),
            "val": self.val.tolist(),
            "test": self.test.tolist(),
            "anomalies": self.anomalies.tolist(),
            "seed": int(self.seed),
            "fractions": [float(f) for f in self.fractions],
            "n_beats": int(self.n_beats),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Split:
        """Inverse of :meth:`to_dict`."""
        return cls(
            normal_labels=tuple(str(x) for x in d["normal_labels"]),
            train=_frozen(d["train"]),
            val=_frozen(d["val"]),
            test=_frozen(d["test"]),
            anomalies=_frozen(d["anomalies"]),
            seed=int(d["seed"]),
            fractions=tuple(float(f) for f in d["fractions"]),
            n_beats=int(d["n_beats"]),
        )


def make_split(
    labels: np.ndarray | None,
    normal_labels: Sequence[str],
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    n_beats: int | None = None,
) -> Split:
    """Shuffle the normal beats with `seed` and cut them by `fractions`; unlabelled data counts as all normal."""
    if len(fractions) != 3 or min(fractions) < 0 or not np.isclose(sum(fractions), 1.0):
        raise SplitError(f"fractions must be three non-negative numbers summing to 1, got {tuple(fractions)}")
    if labels is None:
        if n_beats is None:
            raise SplitError("unlabelled data needs n_beats")
        is_normal = np.ones(n_beats, bool)
        normal_labels = ()
    else:
        labels = np.asarray(labels).astype(str)
        normal_labels = tuple(str(x) for x in normal_labels)
        missing = [x for x in normal_labels if x not in set(labels.tolist())]
        if not normal_labels or missing:
            raise SplitError(f"normal label(s) {missing or '(none chosen)'} not found among the labels")
        is_normal = np.isin(labels, normal_labels)
        n_beats = len(labels)
    normal = np.flatnonzero(is_normal)
    if len(normal) < 3:
        raise SplitError(f"need at least 3 normal beats to split, found {len(normal)}")
    perm = np.random.default_rng(seed).permutation(normal)
    n_train = max(1, round(fractions[0] * len(perm)))
    n_val = max(1, round(fractions[1] * len(perm)))
    n_train = min(n_train, len(perm) - n_val - (1 if fractions[2] > 0 else 0))
    return Split(
        normal_labels=normal_labels,
        train=_frozen(np.sort(perm[:n_train])),
        val=_frozen(np.sort(perm[n_train : n_train + n_val])),
        test=_frozen(np.sort(perm[n_train + n_val :])),
        anomalies=_frozen(np.flatnonzero(~is_normal)),
        seed=int(seed),
        fractions=tuple(float(f) for f in fractions),
        n_beats=int(n_beats),
    )
