"""Beats that occur more than once (in two files, or twice in one): found so they never straddle the split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def groups(X: np.ndarray) -> np.ndarray:
    """Group id (n,) per beat: the index of the first beat with exactly the same samples."""
    X = np.ascontiguousarray(np.asarray(X, dtype=np.float32))
    if X.ndim != 2:
        raise ValueError(f"beats must be a 2-D array (n, T), got shape {X.shape}")
    if not len(X):
        return np.zeros(0, dtype=np.int64)
    # +0.0 for -0.0, so the two zeros compare equal as they do as numbers
    rows = (X + np.float32(0.0)).view(np.dtype((np.void, X.dtype.itemsize * X.shape[1]))).ravel()
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    return first[inverse.ravel()].astype(np.int64)


@dataclass(frozen=True)
class Duplicates:
    """Copies among the beats: every group of identical beats with more than one member."""

    groups: np.ndarray  # (n,) group id per beat (index of its first copy)
    sets: tuple[np.ndarray, ...]  # indices of each group with copies, in order of first occurrence

    @property
    def n_extra(self) -> int:
        """Beats that are a copy of an earlier one."""
        return int(sum(len(s) - 1 for s in self.sets))

    def describe(self, sources: np.ndarray, rows: np.ndarray, limit: int = 3) -> list[str]:
        """'TRAIN.arff row 5 = TEST.arff row 17' for the first `limit` groups."""
        out = []
        for members in self.sets[:limit]:
            out.append(" = ".join(f"{sources[i]} row {int(rows[i])}" for i in members[:4])
                       + (" = …" if len(members) > 4 else ""))
        return out


def find(X: np.ndarray) -> Duplicates:
    """Every group of identical beats in X."""
    g = groups(X)
    ids, counts = np.unique(g, return_counts=True)
    multi = ids[counts > 1]
    sets = tuple(np.flatnonzero(g == i) for i in multi)
    return Duplicates(groups=g, sets=sets)
