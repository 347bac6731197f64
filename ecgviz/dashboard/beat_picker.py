"""Which beat the explorer's viewer shows: picked by class and rule, or stepped through a list of mistakes."""

from __future__ import annotations

import numpy as np

from ecgviz.dashboard.explore import ExplorerView

PICK_MODES = ("most anomalous", "nearest the threshold", "random", "by row")


def pick_beat(errors: np.ndarray, labels: np.ndarray | None, label: str | None, mode: str, *,
              threshold: float, seed: int = 0, row: int = 1) -> int | None:
    """Index of the beat to show: among `label`'s beats (all when None) by mode; 'by row' uses 1-based `row`."""
    errors = np.asarray(errors, dtype=np.float64)
    if mode == "by row":
        return int(min(max(row, 1), len(errors)) - 1) if len(errors) else None
    candidates = np.arange(len(errors)) if labels is None or label is None else np.flatnonzero(labels == label)
    if candidates.size == 0:
        return None
    if mode == "most anomalous":
        return int(candidates[np.argmax(errors[candidates])])
    if mode == "nearest the threshold":
        return int(candidates[np.argmin(np.abs(errors[candidates] - threshold))])
    if mode == "random":
        return int(np.random.default_rng(seed).choice(candidates))
    raise ValueError(f"unknown beat choice {mode!r}: use one of {PICK_MODES}")


# Beat lists the viewer steps through with next/previous: outcome at the threshold, and the order to show them in.
BROWSE_MODES = {"false alarms": "FP", "missed anomalies": "FN"}


def browse(ev: ExplorerView, threshold: float, mode: str) -> np.ndarray:
    """Evaluated beats with that outcome: false alarms (normals above the threshold) highest error first, missed
    anomalies (below it) lowest error first, i.e. the clearest mistakes first."""
    if mode not in BROWSE_MODES:
        raise ValueError(f"unknown list {mode!r}: use one of {tuple(BROWSE_MODES)}")
    out = ev.outcomes(threshold)
    idx = np.flatnonzero(out == BROWSE_MODES[mode])
    order = np.argsort(ev.errors[idx], kind="stable")
    return idx[order[::-1]] if mode == "false alarms" else idx[order]


def step(position: int, n: int, delta: int) -> int:
    """Next/previous position in a list of n, wrapping around; 0 for an empty list."""
    return 0 if n <= 0 else (position + delta) % n


def verdict(error: float, threshold: float) -> str:
    """'flagged' when the error is above the threshold, else 'passed'."""
    return "flagged" if error > threshold else "passed"
