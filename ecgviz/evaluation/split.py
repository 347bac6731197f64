"""Who trains and who is judged: normal beats split train/validation/test; every other beat is an anomaly."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ecgviz.errors import SplitError, UserError
from ecgviz.evaluation import duplicates
from ecgviz.io.codes import encode

if TYPE_CHECKING:
    from ecgviz.io.data import BeatData

DEFAULT_FRACTIONS = (0.85, 0.075, 0.075)
# "seed": the pooled normals shuffled and cut by fractions; "files": train on one file's normals, judge another file
SPLIT_MODES = ("seed", "files")
ROLES = ("train", "validation", "held-out", "not used")


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
    mode: str = "seed"
    files: tuple[str, ...] = ()  # mode "files": (training file, evaluation file)

    def eval_indices(self) -> tuple[np.ndarray, np.ndarray]:
        """held_out() with an is-anomaly flag per index."""
        idx = self.held_out()
        return idx, np.isin(idx, self.anomalies)

    def held_out(self) -> np.ndarray:
        """Sorted indices the metrics are computed on (held-out normals and anomalies)."""
        return np.union1d(self.test, self.anomalies)

    def roles(self, eval_idx: np.ndarray | None = None) -> np.ndarray:
        """Role (n_beats,) of every beat: train, validation, held-out (`eval_idx`, default held_out()) or not used."""
        out = np.full(self.n_beats, ROLES[3], dtype=object)
        out[self.held_out() if eval_idx is None else np.asarray(eval_idx, dtype=np.int64)] = ROLES[2]
        out[self.train] = ROLES[0]
        out[self.val] = ROLES[1]
        return out

    def describe(self) -> str:
        """One line on how the beats were divided."""
        if not self.n_beats:  # a detector fitted without labels (a recording's analysis): no beat was held out
            return "none: fitted to every beat without their labels"
        if self.mode == "files":
            return f"normals of {self.files[0]} for training, {self.files[1]} for evaluation"
        return "seeded {:.0%} / {:.1%} / {:.1%} split of the normals (seed {})".format(*self.fractions, self.seed)

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
            "mode": self.mode,
            "files": list(self.files),
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
            mode=_mode(d.get("mode", "seed")),
            files=tuple(str(f) for f in d.get("files", ())),
        )


def own_split(split: Split | None, n_beats: int, same_data: bool) -> Split | None:
    """The model's split when it applies to a data set of `n_beats` (the very data it was made on), else None."""
    return split if same_data and split is not None and split.n_beats == n_beats else None


def evaluated_beats(split: Split | None, n_beats: int, normal_labels: Sequence[str]) -> np.ndarray:
    """Sorted indices of the beats a model is judged on, given its split on this data (see own_split) or None.

    On the model's own data its training and validation beats would flatter it: with the split's normal labels
    exactly its held-out beats (the metrics stored with it), with other normal labels every beat it never trained
    or early-stopped on. On other data (`split` None), every beat.
    """
    if split is None:
        return np.arange(n_beats)
    same = tuple(str(k) for k in normal_labels) == tuple(split.normal_labels)
    return split.held_out() if same else split.unseen()


def _mode(mode: object) -> str:
    if mode not in SPLIT_MODES:
        raise UserError(f"split mode {mode!r} is not one of {SPLIT_MODES}")
    return str(mode)


def _normal_mask(labels, normal_labels, n_beats):
    if labels is None:
        if n_beats is None:
            raise SplitError("unlabelled data needs n_beats")
        return np.ones(n_beats, bool), ()
    codes, names = encode(labels)
    normal_labels = tuple(str(x) for x in normal_labels)
    missing = [x for x in normal_labels if x not in names]
    if not normal_labels or missing:
        raise SplitError(f"normal label(s) {missing or '(none chosen)'} not found among the labels")
    return np.isin(codes, [names.index(x) for x in normal_labels]), normal_labels


def _cut(normal: np.ndarray, groups: np.ndarray | None, sizes: Sequence[int], rng) -> list[np.ndarray]:
    """Shuffle the normals by duplicate group and cut them into parts of about `sizes` beats; copies stay together."""
    if groups is None:
        perm = rng.permutation(normal)
        bounds = np.cumsum(sizes)[:-1]
        return [np.sort(p) for p in np.split(perm, bounds)]
    g = np.asarray(groups, dtype=np.int64)[normal]
    ids = np.unique(g)  # for distinct beats these are the normal indices themselves: the same shuffle as without
    perm = rng.permutation(ids)
    size = np.bincount(np.searchsorted(ids, g), minlength=len(ids))[np.searchsorted(ids, perm)]
    ends = np.searchsorted(np.cumsum(size), np.cumsum(sizes)[:-1], side="left") + 1
    parts = np.split(perm, ends)
    return [np.sort(normal[np.isin(g, p)]) for p in parts]


def _drop_copies(anomalies: np.ndarray, seen: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
    """Leave out evaluation beats identical to a beat the model trained or early-stopped on."""
    if groups is None or not len(anomalies):
        return anomalies
    g = np.asarray(groups, dtype=np.int64)
    return anomalies[~np.isin(g[anomalies], g[seen])]


def make_split(
    labels: np.ndarray | None,
    normal_labels: Sequence[str],
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    n_beats: int | None = None,
    groups: np.ndarray | None = None,
) -> Split:
    """Shuffle the normal beats with `seed` and cut them by `fractions`; unlabelled data counts as all normal.

    `groups` (see ecgviz.evaluation.duplicates.groups) keeps identical beats on one side: copies go to the same
    part, and an anomaly identical to a training or validation beat is left out of evaluation.
    """
    if len(fractions) != 3 or min(fractions) < 0 or not np.isclose(sum(fractions), 1.0):
        raise SplitError(f"fractions must be three non-negative numbers summing to 1, got {tuple(fractions)}")
    is_normal, normal_labels = _normal_mask(labels, normal_labels, n_beats)
    n_beats = len(is_normal)
    normal = np.flatnonzero(is_normal)
    if len(normal) < 3:
        raise SplitError(f"need at least 3 normal beats to split, found {len(normal)}")
    n_train = max(1, round(fractions[0] * len(normal)))
    n_val = max(1, round(fractions[1] * len(normal)))
    n_train = min(n_train, len(normal) - n_val - (1 if fractions[2] > 0 else 0))
    train, val, test = _cut(normal, groups, [n_train, n_val, len(normal) - n_train - n_val],
                            np.random.default_rng(seed))
    if not len(train) or not len(val):
        raise SplitError("too few distinct normal beats to split (copies of one beat stay together)")
    return Split(
        normal_labels=normal_labels,
        train=_frozen(train),
        val=_frozen(val),
        test=_frozen(test),
        anomalies=_frozen(_drop_copies(np.flatnonzero(~is_normal), np.r_[train, val], groups)),
        seed=int(seed),
        fractions=tuple(float(f) for f in fractions),
        n_beats=int(n_beats),
    )


def make_file_split(
    labels: np.ndarray | None,
    sources: np.ndarray,
    normal_labels: Sequence[str],
    train_file: str,
    test_file: str,
    val_fraction: float = 0.1,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> Split:
    """Keep the files as given: train on `train_file`'s normals (a seeded `val_fraction` of them for early
    stopping), evaluate on every beat of `test_file`; other files and `train_file`'s anomalies are not used."""
    codes, names = encode(sources)
    for f in (train_file, test_file):
        if f not in names:
            raise SplitError(f"file {f!r} is not part of the data (files: {', '.join(names)})")
    if train_file == test_file:
        raise SplitError("choose two different files: one to train on and one to evaluate on")
    if not 0 < val_fraction < 1:
        raise SplitError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    is_normal, normal_labels = _normal_mask(labels, normal_labels, len(codes))
    normal = np.flatnonzero(is_normal & (codes == names.index(train_file)))
    if len(normal) < 2:
        raise SplitError(f"{train_file} has {len(normal)} normal beat(s); training needs at least 2")
    n_val = max(1, round(val_fraction * len(normal)))
    train, val = _cut(normal, groups, [len(normal) - n_val, n_val], np.random.default_rng(seed))
    if not len(train) or not len(val):
        raise SplitError(f"too few distinct normal beats in {train_file} to keep some for early stopping")
    in_test = codes == names.index(test_file)
    seen = np.r_[train, val]
    test = _drop_copies(np.flatnonzero(is_normal & in_test), seen, groups)
    anomalies = _drop_copies(np.flatnonzero(~is_normal & in_test), seen, groups)
    if not len(test) and not len(anomalies):
        raise SplitError(f"{test_file} has no beats left to evaluate (all are copies of training beats)")
    n_total = len(train) + len(val)
    return Split(
        normal_labels=normal_labels,
        train=_frozen(train),
        val=_frozen(val),
        test=_frozen(test),
        anomalies=_frozen(anomalies),
        seed=int(seed),
        fractions=(len(train) / n_total, len(val) / n_total, 0.0),
        n_beats=len(codes),
        mode="files",
        files=(str(train_file), str(test_file)),
    )


def protocol_split(data: BeatData, normal_labels: Sequence[str], *, mode: str = "seed",
                   fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0,
                   files: Sequence[str] | None = None) -> Split:
    """The split for `mode` ("seed", or "files" with (training file, evaluation file)); copies never straddle it."""
    groups = duplicates.groups(data.X)
    if mode == "seed":
        return make_split(data.labels, normal_labels, fractions, seed=seed, n_beats=data.n_beats, groups=groups)
    if mode == "files":
        if not files or len(files) != 2:
            raise UserError("split mode 'files' needs a training file and an evaluation file")
        return make_file_split(data.labels, data.sources, normal_labels, files[0], files[1], seed=seed,
                               groups=groups)
    raise UserError(f"unknown split mode {mode!r}: use seed or files")
