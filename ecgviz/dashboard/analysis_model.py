"""The analysis of a recording as the session's model: a detector that gives the analysed beats the analysis' own
scores, and adopt(), which makes the beats and that detector the active data and model.

Kept apart from recording_analysis, which the pages import to draw: a detector is an estimator, and its base
class brings scikit-learn, a second of start-up a page that only shows an analysis does not need.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ecgviz.analysis.analyze import RULE, THRESHOLD, Analysis
from ecgviz.analysis.rhythm import PREMATURE
from ecgviz.analysis.shape import SHAPE_LIMIT, TemplateDistance
from ecgviz.checkpoint.store import Checkpoint
from ecgviz.dashboard import session
from ecgviz.dashboard.recording_analysis import KIND, SCORE_NAME, report_zip, with_reference
from ecgviz.dashboard.recordings import from_beats
from ecgviz.detectors.base import Detector
from ecgviz.evaluation.split import Split
from ecgviz.signal.recording_files import RecordingSource


class RecordingScores(Detector):
    """The analysis as a detector: its own beats get its scores and reasons, other beats the shape part alone."""

    kind = KIND

    def __init__(self, analysis: Analysis, X: np.ndarray):
        self.record, self.lead = analysis.recording.record, analysis.recording.lead
        self.X_ = X  # the beats these scores belong to (shared with the active data, not a copy)
        self.by_shape_ = np.asarray(analysis.shape_score, dtype=np.float64) / SHAPE_LIMIT
        self.by_timing_ = np.asarray(analysis.rhythm_score, dtype=np.float64) / PREMATURE
        self.scores_ = np.asarray(analysis.score, dtype=np.float64)
        self.summary = dict(analysis.summary)
        self.shape_ = TemplateDistance().fit(X)  # for beats that are not these
        self.report = b""  # the report files as one zip (report_zip), for a download

    @property
    def description(self) -> str:
        """In a few words."""
        return f"Analysis of {self.record} (lead {self.lead}): shape and timing, no labels"

    @property
    def measure(self) -> str:
        """What the scores are."""
        return SCORE_NAME

    def get_params(self, deep: bool = True) -> dict:
        """None: it is made from an analysis, not fitted from parameters."""
        return {}

    def _own(self, X: np.ndarray) -> bool:
        return X is self.X_ or (np.shape(X) == self.X_.shape and np.array_equal(X, self.X_))

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """The analysis' scores for its own beats; for other beats, the shape part on the same scale."""
        if self._own(X):
            return self.scores_.copy()
        return self.shape_.decision_function(np.asarray(X, dtype=np.float32)) / SHAPE_LIMIT

    def reconstruct(self, X: np.ndarray) -> np.ndarray:
        """What each beat is compared with: the recording's median beat."""
        return np.broadcast_to(self.shape_.template_, np.shape(X)).astype(np.float32)

    def reasons(self, X: np.ndarray, threshold: float) -> np.ndarray:
        """Why each beat scores above `threshold`: 'shape', 'timing' or 'both' ('' below it)."""
        if not self._own(X):
            out = np.full(len(X), "", dtype=object)
            out[self.decision_function(X) > threshold] = "shape"
            return out
        shape, timing = self.by_shape_ > threshold, self.by_timing_ > threshold
        out = np.full(len(self.scores_), "", dtype=object)
        out[shape], out[timing], out[shape & timing] = "shape", "timing", "both"
        return out


def adopt(analysis: Analysis, source: RecordingSource | None, name: str) -> tuple[session.ActiveData,
                                                                                  session.ActiveModel]:
    """The analysed beats as active data (labelled by the reference annotations, if any) and the analysis as the
    model that scores them, with its label-free threshold."""
    beats = replace(analysis.beats, data=with_reference(analysis.beats.data, analysis.symbols))
    data = from_beats(beats, source, name)
    detector = RecordingScores(analysis, data.data.X)
    empty = np.zeros(0, dtype=np.int64)
    # no split: nothing was fitted on labels, so every beat is evaluated (n_beats 0 marks "no split")
    split = Split(normal_labels=(), train=empty, val=empty, test=empty, anomalies=empty, n_beats=0, mode="none")
    rec = analysis.recording
    ckpt = Checkpoint(detector=detector, split=split, data_fingerprint=data.fingerprint,
                      seq_len=data.data.length, threshold=THRESHOLD,
                      threshold_rule=RULE, class_names=dict(data.class_names),
                      name=f"Analysis of {rec.record}, lead {rec.lead}", data_sources=(name,))
    detector.report = report_zip(analysis)
    model = session.ActiveModel(ckpt=ckpt, id=f"{KIND}-{data.fingerprint[:16]}", name=ckpt.name, source=KIND)
    return data, model
