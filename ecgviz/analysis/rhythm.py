"""Timing of each beat against its neighbours: prematurity, compensatory pause, and irregular (AF-like) stretches.

Label-free by construction: every figure compares a beat's RR intervals with the local median RR of the same
recording, so a slow and a fast heart are judged alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["IRREGULAR_DIFF", "PREMATURE", "Rhythm", "irregular_mask", "local_median", "rhythm"]

HALF_WINDOW = 8  # beats each side in the local median RR: ~15 s at rest, short enough to follow rate changes
PREMATURE = 0.15  # a beat is early when its RR is at least 15 % shorter than the local median RR
# Irregular stretches: in a window of IRREGULAR_WINDOW beats, the median of |RR - previous RR| / median RR over
# the pairs of intervals between normally shaped beats (an interval into or out of an ectopic beat is skipped, so
# frequent PVCs do not count as chaos). Sinus rhythm, also sinus arrhythmia and record 208's ectopy, stays below
# 0.06; random RRs with a coefficient of variation of 0.1 (mild atrial fibrillation) give about 0.09.
IRREGULAR_WINDOW = 32
IRREGULAR_DIFF = 0.08
MIN_PAIRS = 12  # fewer usable pairs in a window (runs of ectopic beats) say nothing about the underlying rhythm
MIN_IRREGULAR_S = 30.0  # a shorter irregular run is left to the per-beat timing score


def local_median(values: np.ndarray, half: int = HALF_WINDOW) -> np.ndarray:
    """Centred running median over 2 * half + 1 values (fewer at the ends)."""
    import pandas as pd

    v = pd.Series(np.asarray(values, dtype=np.float64))
    return v.rolling(2 * half + 1, center=True, min_periods=1).median().to_numpy()


@dataclass(frozen=True, eq=False)
class Rhythm:
    """Per-beat RR intervals (seconds; NaN at the ends), the local median RR and the timing score."""

    rr_prev: np.ndarray
    rr_next: np.ndarray
    median_rr: np.ndarray
    score: np.ndarray  # prematurity: 1 - rr_prev / median_rr; > PREMATURE is early; 0 inside irregular stretches
    irregular: np.ndarray  # bool: the beat lies in an irregular (AF-like) stretch
    stretches: tuple[tuple[int, int], ...]  # (first, last) beat index of each irregular stretch


def _window_irregularity(rr: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Median relative successive RR difference in each window of IRREGULAR_WINDOW pairs (NaN: too few usable)."""
    med = np.median(rr)
    diff = np.abs(np.diff(rr)) / med
    diff[~(usable[1:] & usable[:-1])] = np.nan
    if len(diff) < IRREGULAR_WINDOW:
        return np.zeros(0)
    view = np.lib.stride_tricks.sliding_window_view(diff, IRREGULAR_WINDOW)
    enough = np.isfinite(view).sum(axis=1) >= MIN_PAIRS
    out = np.full(len(view), np.nan)
    with np.errstate(all="ignore"):
        out[enough] = np.nanmedian(view[enough], axis=1)
    return out


def irregular_mask(times_s: np.ndarray, normal: np.ndarray | None = None
                   ) -> tuple[np.ndarray, tuple[tuple[int, int], ...]]:
    """Beats in irregular stretches of at least MIN_IRREGULAR_S seconds, and those stretches as beat ranges.

    `normal` marks the beats of normal shape (default: all); intervals touching any other beat are not used.
    """
    t = np.asarray(times_s, dtype=np.float64)
    mask = np.zeros(len(t), dtype=bool)
    if len(t) < IRREGULAR_WINDOW + 3:
        return mask, ()
    normal = np.ones(len(t), dtype=bool) if normal is None else np.asarray(normal, dtype=bool)
    rr = np.diff(t)
    # interval i runs from beat i to i + 1; it is usable when both ends and the beat before are normal
    usable = normal[1:] & normal[:-1]
    usable[1:] &= normal[:-2]
    level = _window_irregularity(rr, usable)
    # window j holds differences j..j + W - 1, which touch beats j..j + W + 1
    hot = np.flatnonzero(np.nan_to_num(level, nan=0.0) > IRREGULAR_DIFF)
    cover = np.zeros(len(t) + 1, dtype=np.int64)
    np.add.at(cover, hot, 1)
    np.add.at(cover, np.minimum(hot + IRREGULAR_WINDOW + 2, len(t)), -1)
    mask = np.cumsum(cover)[:len(t)] > 0
    stretches = []
    edges = np.flatnonzero(np.diff(np.r_[0, mask.astype(np.int8), 0]))
    for first, stop in zip(edges[::2], edges[1::2], strict=True):
        if t[stop - 1] - t[first] >= MIN_IRREGULAR_S:
            stretches.append((int(first), int(stop - 1)))
        else:
            mask[first:stop] = False
    return mask, tuple(stretches)


def rhythm(times_s: np.ndarray, normal: np.ndarray | None = None) -> Rhythm:
    """RR before/after each beat, the local median RR, prematurity and the irregular stretches (see irregular_mask)."""
    t = np.asarray(times_s, dtype=np.float64)
    rr = np.diff(t)
    rr_prev = np.r_[np.nan, rr]
    rr_next = np.r_[rr, np.nan]
    med_rr = local_median(rr) if len(rr) else np.zeros(0)
    # a beat's reference is the median around the interval that ends at it
    median_rr = np.r_[med_rr[:1], med_rr] if len(rr) else np.full(len(t), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = 1.0 - rr_prev / median_rr
    score = np.nan_to_num(score, nan=0.0)
    irregular, stretches = irregular_mask(t, normal)
    score[irregular] = 0.0  # in AF-like chaos "early" carries no meaning; the stretch is reported instead
    return Rhythm(rr_prev, rr_next, median_rr, score, irregular, stretches)
