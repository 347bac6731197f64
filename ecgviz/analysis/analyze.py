"""One recording in, its abnormal beats out: detect, cut, score shape and timing, flag, all without labels.

The rule (measured in docs/recordings.md, "Analyze a recording"): a beat is flagged when its shape score reaches
SHAPE_LIMIT or its RR interval is at least PREMATURE shorter than the local median RR. Both are put on one scale,
score = max(shape_score / SHAPE_LIMIT, rhythm_score / PREMATURE), flagged when score > 1, so one number ranks the
beats and the reason says which part (shape, timing or both) raised it. The recording's reference annotations, if
any, are matched to the detected beats only to evaluate.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ecgviz.analysis.evaluate import evaluate, reference_symbols
from ecgviz.analysis.rhythm import PREMATURE, Rhythm, rhythm
from ecgviz.analysis.rpeaks import Detection, detect
from ecgviz.analysis.shape import SHAPE_LIMIT, TemplateDistance, beat_windows
from ecgviz.errors import DataError
from ecgviz.io.recording import Recording, read_recording
from ecgviz.signal.beats import Beats, cut_beats

__all__ = ["COLUMNS", "REASONS", "RULE", "THRESHOLD", "Analysis", "analyze"]

THRESHOLD = 1.0
RULE = (f"flagged when max(shape_score / {SHAPE_LIMIT:g}, rhythm_score / {PREMATURE:g}) > {THRESHOLD:g}: the beat "
        f"differs from the recording's median beat by more than {SHAPE_LIMIT:g} lower-tail spreads, or comes at least "
        f"{PREMATURE:.0%} earlier than the local median RR")
REASONS = ("shape", "timing", "both")
COLUMNS = ("sample", "time_s", "symbol", "rr_prev_ms", "rr_next_ms", "shape_score", "rhythm_score", "score",
           "flagged", "reason")
Progress = Callable[[float, str], None]


@dataclass(frozen=True, eq=False)
class Analysis:
    """Every cut beat of one lead with its scores, flags and reasons; `summary` holds the counts and evaluation."""

    recording: Recording
    beats: Beats
    detection: Detection
    rhythm: Rhythm  # per detected R-peak (beats.peaks), cut or not
    shape_score: np.ndarray  # (n,) per cut beat
    rhythm_score: np.ndarray
    score: np.ndarray
    flagged: np.ndarray
    reason: np.ndarray  # (n,) object: "shape", "timing", "both" or "" (not flagged)
    symbols: np.ndarray | None  # (n,) reference symbol ('' unmatched); None without annotations
    summary: dict = field(default_factory=dict)

    @property
    def samples(self) -> np.ndarray:
        """R-peak sample of each cut beat."""
        return self.beats.peaks[self.beats.kept]

    def table(self):
        """One row per cut beat, in time order, with the columns of COLUMNS (a pandas DataFrame)."""
        import pandas as pd

        kept, fs = self.beats.kept, self.recording.fs
        n = len(kept)
        return pd.DataFrame({
            "sample": self.samples,
            "time_s": np.round(self.samples / fs, 4),
            "symbol": self.symbols if self.symbols is not None else np.full(n, "", dtype=object),
            "rr_prev_ms": np.round(self.rhythm.rr_prev[kept] * 1000, 1),
            "rr_next_ms": np.round(self.rhythm.rr_next[kept] * 1000, 1),
            "shape_score": np.round(self.shape_score, 4),
            "rhythm_score": np.round(self.rhythm_score, 4),
            "score": np.round(self.score, 4),
            "flagged": self.flagged,
            "reason": self.reason,
        }, columns=list(COLUMNS))


def combine(shape_score: np.ndarray, rhythm_score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(score, flagged, reason) from the two scores by the documented rule."""
    by_shape = shape_score / SHAPE_LIMIT
    by_timing = rhythm_score / PREMATURE
    score = np.maximum(by_shape, by_timing)
    shape_hit, timing_hit = by_shape > THRESHOLD, by_timing > THRESHOLD
    reason = np.full(len(score), "", dtype=object)
    reason[shape_hit] = "shape"
    reason[timing_hit] = "timing"
    reason[shape_hit & timing_hit] = "both"
    return score, shape_hit | timing_hit, reason


def _spans(pairs, fs: float) -> list[list[float]]:
    return [[round(float(a) / fs, 3), round(float(b) / fs, 3)] for a, b in pairs]


def analyze(recording: Recording | str | os.PathLike[str], *, lead: str | None = None, fs: float | None = None,
            progress: Progress | None = None) -> Analysis:
    """Analyse one lead of a recording (a Recording, or a path read with `lead` / `fs`) without using labels."""
    t0 = time.perf_counter()
    say = progress or (lambda _f, _m: None)
    if isinstance(recording, Recording):
        if lead is not None and lead != recording.lead:
            raise DataError(f"{recording.record}: lead {lead!r} is not loaded (this recording holds "
                            f"{recording.lead!r}); read it again with that lead")
        rec = recording
    else:
        say(0.0, "reading the recording")
        rec = read_recording(recording, lead=lead, fs=fs)
    say(0.1, "finding R-peaks")
    detection = detect(rec.signal, rec.fs)
    if len(detection.peaks) < 2:
        raise DataError(f"{rec.record}: found {len(detection.peaks)} R-peak(s) in lead {rec.lead} "
                        f"({rec.duration_s:.1f} s); a recording needs at least two beats")
    say(0.4, "cutting beats")
    beats = cut_beats(rec, peaks=detection.peaks, peak_source="sleepecg + gqrs in long RR gaps")
    say(0.7, "scoring shape and timing")
    kept = beats.kept
    rr = np.diff(beats.peaks) / rec.fs
    windows = beat_windows(beats.filtered, beats.peaks[kept], np.r_[np.nan, rr][kept], np.r_[rr, np.nan][kept],
                           rec.fs)
    shape_score = TemplateDistance().fit(windows).decision_scores_
    del windows
    normal = np.zeros(len(beats.peaks), dtype=bool)  # beats not cut cannot vouch for the rhythm around them
    normal[kept] = shape_score <= SHAPE_LIMIT
    timing = rhythm(beats.peaks / rec.fs, normal)
    rhythm_score = timing.score[kept]
    score, flagged, reason = combine(shape_score, rhythm_score)
    symbols = None
    if rec.ann_samples is not None and len(rec.ann_samples):
        symbols = reference_symbols(beats.peaks[kept], rec.ann_samples, rec.ann_symbols, rec.fs)
    say(0.9, "summarising")
    counts = {r: int((reason == r).sum()) for r in REASONS}
    summary = {
        "record": rec.record, "lead": rec.lead, "leads": list(rec.leads), "fs": rec.fs,
        "duration_s": round(rec.duration_s, 3), "beats": len(kept), "flagged": int(flagged.sum()),
        "flagged_by_reason": counts, "threshold": THRESHOLD, "rule": RULE,
        "shape_limit": SHAPE_LIMIT, "premature": PREMATURE,
        "detection": {**detection.counts(), **{f"dropped_{k}": v for k, v in beats.dropped_counts().items()}},
        "possible_missed_beats": _spans(detection.missed_gaps, rec.fs),
        "irregular_stretches": _spans([(beats.peaks[a], beats.peaks[b]) for a, b in timing.stretches], rec.fs),
        "irregular_beats": int(timing.irregular[kept].sum()),
        "evaluation": None,
    }
    if symbols is not None:
        summary["evaluation"] = evaluate(detection.peaks, beats.peaks[kept], symbols, score, flagged, THRESHOLD,
                                         rec.ann_samples, rec.fs)
    summary["seconds"] = round(time.perf_counter() - t0, 3)
    say(1.0, "done")
    return Analysis(rec, beats, detection, timing, shape_score, rhythm_score, score, flagged, reason, symbols,
                    summary)
