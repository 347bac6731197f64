"""How a label-free analysis compares with a recording's reference annotations (used for nothing else).

Detected beats are matched one to one with the annotated beats within MATCH_S. The figures: R-peak sensitivity and
positive predictivity; per AAMI class the share handled right (normal beats passed, the others flagged) with
Wilson intervals; balanced accuracy and AUROC of the combined score with bootstrap intervals; and the flags raised
on detections that match no annotated beat, per reference beat.
"""

from __future__ import annotations

import numpy as np

from ecgviz.analysis.rpeaks import match
from ecgviz.evaluation.intervals import bootstrap_areas, rate_intervals, wilson
from ecgviz.evaluation.metrics import at_threshold, roc_auc
from ecgviz.io.recording import aami_class

__all__ = ["MATCH_S", "NARROW_MS", "WIDE_MS", "evaluate", "qrs_widths", "reference_symbols", "wide_reference"]

MATCH_S = 0.15  # the usual tolerance for matching a detected beat with an annotated one (ANSI/AAMI EC57)
# A reference for recordings without annotations: QRS width around each beat gqrs finds, as the span holding the
# central 90 % of the band-passed signal's slope energy within 150 ms of the beat. On the MIT-BIH 208 excerpt the
# widths fall in two groups (narrow 30-50 ms, wide 100-140 ms); beats in between (fusion-like) are left out.
NARROW_MS, WIDE_MS = 80.0, 100.0
_WIDTH_HALF_S = 0.15


def qrs_widths(x: np.ndarray, fs: float, peaks: np.ndarray) -> np.ndarray:
    """QRS width (ms) around each peak: the span of the central 90 % of slope energy within 150 ms."""
    from ecgviz.signal.beats import filter_ecg

    slope = np.gradient(filter_ecg(np.asarray(x, dtype=np.float64), fs).astype(np.float64)) ** 2
    half = round(_WIDTH_HALF_S * fs)
    out = np.full(len(peaks), np.nan)
    for i, p in enumerate(np.asarray(peaks, dtype=np.int64)):
        part = slope[max(0, p - half):p + half]
        total = np.cumsum(part)
        if len(part) and total[-1] > 0:
            lo, hi = np.searchsorted(total / total[-1], [0.05, 0.95])
            out[i] = (hi - lo) / fs * 1000.0
    return out


def wide_reference(x: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """(samples, is_wide) of the beats gqrs finds whose QRS is clearly narrow (< NARROW_MS) or wide (>= WIDE_MS)."""
    from wfdb import processing

    peaks = np.asarray(processing.gqrs_detect(sig=np.nan_to_num(np.asarray(x, dtype=np.float64)), fs=fs),
                       dtype=np.int64)
    width = qrs_widths(x, fs, peaks)
    clear = (width < NARROW_MS) | (width >= WIDE_MS)
    return peaks[clear], width[clear] >= WIDE_MS


def reference_symbols(kept_peaks: np.ndarray, ann_samples: np.ndarray, ann_symbols, fs: float) -> np.ndarray:
    """Annotation symbol of each cut beat ('' where no annotated beat lies within MATCH_S)."""
    order = np.argsort(ann_samples, kind="stable")
    ref = np.asarray(ann_samples, dtype=np.int64)[order]
    symbols = np.asarray(ann_symbols, dtype=object)[order]
    ref_to_det, _ = match(kept_peaks, ref, round(MATCH_S * fs))
    out = np.full(len(kept_peaks), "", dtype=object)
    hit = ref_to_det >= 0
    out[ref_to_det[hit]] = symbols[hit]
    return out


def _round(ci):
    return None if ci is None else [round(ci[0], 4), round(ci[1], 4)]


def evaluate(all_peaks: np.ndarray, kept_peaks: np.ndarray, symbols: np.ndarray, score: np.ndarray,
             flagged: np.ndarray, threshold: float, ann_samples: np.ndarray, fs: float) -> dict:
    """The figures above as a JSON-ready dict; `symbols` as from reference_symbols, `score` > threshold flags."""
    ref = np.sort(np.asarray(ann_samples, dtype=np.int64))
    ref_to_det, det_hit = match(np.sort(all_peaks), ref, round(MATCH_S * fs))
    classes = np.array([aami_class(s) or "" for s in symbols], dtype=object)
    matched = classes != ""
    out: dict = {
        "reference_beats": len(ref), "match_tolerance_s": MATCH_S,
        "r_peak_sensitivity": round(float((ref_to_det >= 0).mean()), 4) if len(ref) else None,
        "r_peak_positive_predictivity": round(float(det_hit.mean()), 4) if len(det_hit) else None,
        "reference_beats_cut": int(matched.sum()),
        "flags_on_unmatched_detections": int((flagged & ~matched).sum()),
    }
    out["unmatched_flags_per_reference_beat"] = (round(out["flags_on_unmatched_detections"] / len(ref), 4)
                                                 if len(ref) else None)
    s, c = np.asarray(score, dtype=np.float64)[matched], classes[matched].astype(str)
    is_anomaly = c != "N"
    if not len(s):
        return out
    m = at_threshold(s, is_anomaly, threshold, labels=c)
    ci = rate_intervals(m)
    per_class = {}
    for k, (hit, total) in m.class_counts.items():
        right = total - hit if k == "N" else hit  # normal beats are handled right when passed
        per_class[k] = {"beats": total, "recall": round(right / total, 4), "ci95": _round(wilson(right, total))}
    out.update({
        "balanced_accuracy": None if m.balanced_accuracy is None else round(m.balanced_accuracy, 4),
        "balanced_accuracy_ci95": _round(ci["balanced_accuracy"]),
        "auroc": None, "auroc_ci95": None, "class_recall": per_class,
    })
    if is_anomaly.any() and not is_anomaly.all():
        out["auroc"] = round(float(roc_auc(s, is_anomaly)), 4)
        out["auroc_ci95"] = _round(bootstrap_areas(s, is_anomaly)["auroc"])
    return out
