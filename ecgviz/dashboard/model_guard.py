"""A model fitted on other data, checked on the data it now scores: does it flag far more beats than it should, or
does its threshold lie outside these scores altogether? Either way its verdicts here are not to be trusted as
they stand, and the explorer says so with the numbers.

Why: a model does not carry over between recordings. The shipped ECG5000 model flags every beat of MIT-BIH
record 100, and a model fitted on record 100 flags every beat of record 208; no re-windowing repairs that. A
detector meant for rare abnormal beats should flag few of them, so flagging more than MAX_FLAGGED_SHARE of the
beats (beyond the share the labels call abnormal, when there are labels) is the plain sign.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecgviz.checkpoint.files import SHIPPED_CHECKPOINT
from ecgviz.detectors.config import DEFAULT_PERCENTILE

__all__ = ["MAX_FLAGGED_SHARE", "Caution", "check", "model_label"]

MAX_FLAGGED_SHARE = 0.10  # of the beats, over the labelled abnormal share when labels are known


def model_label(name: str, path=None) -> str:
    """How the dashboard names a model in a sentence: the shipped checkpoint as the ECG5000 model it is."""
    from pathlib import Path

    if path is not None and Path(path).resolve() == SHIPPED_CHECKPOINT.resolve():
        return "the shipped ECG5000 model"
    return f"the model '{name}'"


@dataclass(frozen=True)
class Caution:
    """Why a model from elsewhere is not to be trusted on this data, with the numbers and a label-free threshold."""

    model: str  # as model_label() names it
    beats: int
    flagged: int
    threshold: float
    lowest: float
    highest: float
    allowed_share: float  # flagging more than this share of the beats is suspicious
    abnormal_share: float | None  # the share the labels call abnormal, when known
    percentile: float
    reset_to: float  # that percentile of these scores: a threshold set on this data without labels

    @property
    def share(self) -> float:
        """Share of the beats flagged."""
        return self.flagged / self.beats if self.beats else 0.0

    @property
    def reasons(self) -> tuple[str, ...]:
        """'flags too many', 'below every score', 'above every score' (any that hold)."""
        out = []
        if self.share > self.allowed_share:
            out.append("flags too many")
        if self.threshold < self.lowest:
            out.append("below every score")
        elif self.threshold > self.highest:
            out.append("above every score")
        return tuple(out)

    def message(self) -> str:
        """Plain sentences naming the numbers (no Markdown)."""
        first = self.model[0].upper() + self.model[1:]
        parts = [f"{first} was fitted on other data: here it flags {self.flagged:,} of {self.beats:,} beats "
                 f"({self.share:.1%}) at threshold {self.threshold:.4g}."]
        if "flags too many" in self.reasons:
            if self.abnormal_share is None:
                parts.append(f"A detector of rare abnormal beats should flag {MAX_FLAGGED_SHARE:.0%} of them at most.")
            else:
                parts.append(f"The labels call {self.abnormal_share:.1%} of them abnormal; a detector should flag at "
                             f"most about {MAX_FLAGGED_SHARE:.0%} more.")
        if "below every score" in self.reasons:
            parts.append(f"Its threshold lies below every beat's score here ({self.lowest:.4g} to "
                         f"{self.highest:.4g}), so it flags every beat.")
        elif "above every score" in self.reasons:
            parts.append(f"Its threshold lies above every beat's score here ({self.lowest:.4g} to "
                         f"{self.highest:.4g}), so it flags none.")
        parts.append("Its scale does not carry over to this data: fit this data, or re-set the threshold to the "
                     f"{self.percentile:g}th percentile of these scores ({self.reset_to:.4g}, no labels used).")
        return " ".join(parts)


def check(scores: np.ndarray, threshold: float, *, model: str, from_elsewhere: bool,
          abnormal_share: float | None = None, percentile: float = DEFAULT_PERCENTILE) -> Caution | None:
    """A Caution when a model fitted elsewhere flags too many of these beats or its threshold lies outside their
    scores; None for a model fitted on this very data, or one that behaves."""
    scores = np.asarray(scores, dtype=np.float64)
    scores = scores[np.isfinite(scores)]
    if not from_elsewhere or not len(scores):
        return None
    allowed = MAX_FLAGGED_SHARE + (abnormal_share or 0.0)
    caution = Caution(model=model, beats=len(scores), flagged=int((scores > threshold).sum()),
                      threshold=float(threshold), lowest=float(scores.min()), highest=float(scores.max()),
                      allowed_share=allowed, abnormal_share=abnormal_share, percentile=float(percentile),
                      reset_to=float(np.percentile(scores, percentile)))
    return caution if caution.reasons else None


def caution_for(model, data, scores: np.ndarray, threshold: float, normal_labels=()) -> Caution | None:
    """check() for an ActiveModel on an ActiveData: from elsewhere when fitted on other beats; the labelled abnormal
    share (labels and normal labels known) widens the allowance."""
    abnormal = None
    if data.data.has_labels and normal_labels:
        abnormal = float(1.0 - data.data.label_mask(list(normal_labels)).mean())
    return check(scores, threshold, model=model_label(model.name, model.path),
                 from_elsewhere=model.card.data_fingerprint != data.fingerprint, abnormal_share=abnormal)
