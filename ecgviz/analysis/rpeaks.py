"""R-peaks that lose no beat: sleepecg over the whole lead, wfdb's gqrs over every long RR gap, gaps reported.

sleepecg is fast and exact on regular rhythms (record 100: 2,273 of 2,273 reference beats) but skips beats with a
wide QRS complex when they come often (MIT-BIH 208 excerpt: 31 beats gqrs finds, nearly all wide). A skipped beat
leaves an RR gap of about twice the local median, so the second detector only needs to look there: gqrs runs over
each long gap with some context around it. That costs little on any recording (gqrs over a whole 24-hour lead
would take about two minutes), and a beat it finds is kept when it sits at least MIN_SEPARATION_S from its
neighbours. Gaps still long afterwards are returned as possible missed beats.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecgviz.analysis.rhythm import local_median

__all__ = ["Detection", "detect", "match"]

SEARCH_GAP = 1.5  # RR gaps this many times the local median RR are searched by the second detector
REPORT_GAP = 1.8  # gaps still this long afterwards are reported as possible missed beats
MIN_SEPARATION_S = 0.2  # a found beat this close to a known one is the same beat (or a T wave)
CONTEXT_S = 5.0  # signal before a gap that gqrs sees first, so its thresholds settle on this recording
REFINE_S = 0.06  # a found beat moves to the largest deflection this close, where sleepecg places R-peaks


@dataclass(frozen=True, eq=False)
class Detection:
    """Merged R-peaks (sorted int64 samples), where each came from, and the gaps that may hide missed beats."""

    peaks: np.ndarray
    added: np.ndarray  # bool per peak: found by the second detector in a long gap
    searched_gaps: int
    missed_gaps: np.ndarray  # (g, 2) int64: the peaks before and after each gap still long

    def counts(self) -> dict[str, int]:
        """Detections per source and the gaps that may hide beats."""
        return {"peaks": len(self.peaks), "primary": int((~self.added).sum()), "added_in_gaps": int(self.added.sum()),
                "gaps_searched": self.searched_gaps, "possible_missed_beats": len(self.missed_gaps)}


def _long_gaps(peaks: np.ndarray, factor: float) -> np.ndarray:
    """Indices i where peaks[i + 1] - peaks[i] exceeds factor times the local median RR."""
    if len(peaks) < 3:
        return np.zeros(0, dtype=np.int64)
    rr = np.diff(peaks).astype(np.float64)
    return np.flatnonzero(rr > factor * local_median(rr))


def _stretches(peaks: np.ndarray, gaps: np.ndarray, fs: float, n: int) -> list[tuple[int, int]]:
    """Merged (start, stop) sample ranges covering each gap plus its context."""
    before, after = round(CONTEXT_S * fs), round(0.5 * fs)
    out: list[list[int]] = []
    for i in gaps:
        a, b = max(0, int(peaks[i]) - before), min(n, int(peaks[i + 1]) + after)
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def _second_pass(x: np.ndarray, fs: float, peaks: np.ndarray, gaps: np.ndarray) -> np.ndarray:
    """gqrs's beats inside the long gaps, moved onto their largest deflection, far enough from known beats."""
    from wfdb import processing

    from ecgviz.signal.beats import filter_ecg

    sep, refine = round(MIN_SEPARATION_S * fs), round(REFINE_S * fs)
    found = []
    for a, b in _stretches(peaks, gaps, fs, len(x)):
        part = np.nan_to_num(np.asarray(x[a:b], dtype=np.float64))
        if b - a < round(fs) or np.ptp(part) == 0:
            continue
        hits = np.asarray(processing.gqrs_detect(sig=part, fs=fs), dtype=np.int64)
        if not len(hits):
            continue
        y = np.abs(filter_ecg(part, fs))
        lo, hi = np.maximum(hits - refine, 0), np.minimum(hits + refine + 1, len(y))
        found.append(a + np.array([lo_ + int(np.argmax(y[lo_:hi_])) for lo_, hi_ in zip(lo, hi, strict=True)]))
    if not found:
        return np.zeros(0, dtype=np.int64)
    candidates = np.unique(np.concatenate(found))
    slot = np.searchsorted(peaks, candidates)
    in_gap = np.isin(slot - 1, gaps)
    inner = (slot > 0) & (slot < len(peaks))
    keep = np.zeros(len(candidates), dtype=bool)
    keep[inner] = in_gap[inner] & (candidates[inner] - peaks[slot[inner] - 1] >= sep) & \
        (peaks[slot[inner]] - candidates[inner] >= sep)
    chosen: list[int] = []
    for c in candidates[keep]:  # several beats may fill one gap, but not two within the separation
        if not chosen or c - chosen[-1] >= sep:
            chosen.append(int(c))
    return np.asarray(chosen, dtype=np.int64)


def detect(x: np.ndarray, fs: float) -> Detection:
    """R-peaks of one lead: sleepecg, gqrs in the long RR gaps, and the gaps that remain."""
    from ecgviz.signal.beats import detect_r_peaks

    primary = detect_r_peaks(x, fs)
    gaps = _long_gaps(primary, SEARCH_GAP)
    extra = _second_pass(x, fs, primary, gaps) if len(gaps) else np.zeros(0, dtype=np.int64)
    peaks = np.concatenate([primary, extra])
    added = np.r_[np.zeros(len(primary), bool), np.ones(len(extra), bool)]
    order = np.argsort(peaks, kind="stable")
    peaks, added = peaks[order], added[order]
    still = _long_gaps(peaks, REPORT_GAP)
    missed = np.stack([peaks[still], peaks[still + 1]], axis=1) if len(still) else np.zeros((0, 2), np.int64)
    return Detection(peaks, added, len(gaps), missed)


def match(detected: np.ndarray, reference: np.ndarray, tol: int) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching within `tol` samples: (index into detected or -1 per reference, bool per detection)."""
    detected, reference = np.asarray(detected, np.int64), np.asarray(reference, np.int64)
    ref_to_det = np.full(len(reference), -1, dtype=np.int64)
    det_hit = np.zeros(len(detected), dtype=bool)
    if not len(detected):
        return ref_to_det, det_hit
    # nearest detection on either side; a detection claimed by an earlier reference beat is not reused
    for i, r in enumerate(reference):
        j = int(np.searchsorted(detected, r))
        best = -1
        for k in (j - 1, j, j + 1):
            if 0 <= k < len(detected) and not det_hit[k] and abs(detected[k] - r) <= tol and \
                    (best < 0 or abs(detected[k] - r) < abs(detected[best] - r)):
                best = k
        if best >= 0:
            ref_to_det[i], det_hit[best] = best, True
    return ref_to_det, det_hit
