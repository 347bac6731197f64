"""What the dashboard's words mean, said once: a detector's score with its unit, the reference of the percentile
threshold, a beat's split role, and which MIT-BIH annotations make up each AAMI class."""

from __future__ import annotations

import functools
from collections.abc import Mapping

import numpy as np

from ecgviz.detectors.config import TRIM_FRACTION
from ecgviz.io.recording import AAMI_CLASSES, aami_class

# the autoencoder scales each beat by the training beats' mean and standard deviation before scoring it; the
# baselines measure the beats as loaded (UCR sets and cut recordings are z-normalised per beat)
_UNIT = "in standard deviations of the training beats"
_RAW = "in the beats' own amplitude units"


def score_name(kind: str) -> str:
    """What a detector's score is called on the pages."""
    return {"lstm_ae": "reconstruction error", "knn": "distance", "pca": "PCA reconstruction error"}.get(kind, "score")


def score_definition(ckpt) -> str:
    """One sentence: how a checkpoint's detector scores a beat, and in which unit (higher = more abnormal)."""
    detector, length = ckpt.detector, ckpt.seq_len
    if ckpt.kind == "knn":
        return (f"Distance: the mean {detector.metric.upper()} distance from a beat to its {detector.k} nearest "
                f"training normals, over its {length} samples {_RAW}; higher is more abnormal.")
    if ckpt.kind == "pca":
        return (f"PCA reconstruction error: the squared difference between a beat and its projection onto the "
                f"normals' leading principal components, over its {length} samples {_RAW} (squared); higher is "
                "more abnormal.")
    if ckpt.kind != "lstm_ae":  # a detector that says what its scores are
        return f"Score: {detector.measure}; higher is more abnormal."
    error = detector.measure
    if error == "mse":
        how = f"the mean of the squared differences between a beat and its reconstruction over its {length} samples"
        unit = f"{_UNIT}, squared"
    else:
        trimmed = (f", leaving out its largest {TRIM_FRACTION:.0%} (the {round(TRIM_FRACTION * length)} largest "
                   "differences, often one spike)") if error == "l1_trim" else ""
        how = f"the sum over a beat's {length} samples of |beat - reconstruction|{trimmed}"
        unit = _UNIT
    return f"Reconstruction error: {how}, {unit}; higher is more abnormal."


def percentile_reference(same_data: bool, labelled: bool) -> str:
    """Whose errors the percentile threshold is taken over."""
    if same_data:
        return "the training normals"
    return "the normal beats" if labelled else "all beats"


def role_text(role: str, labelled: bool = True) -> str:
    """What a beat's split role means for the figures (score-only data has no figures to be in)."""
    held = ("a held-out beat (the model never trained on it; in the metrics)" if labelled
            else "a beat the model never trained on (no labels, so no metrics: score-only mode)")
    return {"train": "a training beat (the model learned from it; not in the metrics)",
            "validation": "a validation beat (used for early stopping; not in the metrics)",
            "held-out": held,
            "not used": "not used (neither trained on nor in the metrics)"}.get(role, role)


@functools.cache
def _symbol_names() -> dict[str, str]:
    """MIT-BIH beat symbols with their meaning (wfdb's annotation table), for the symbols that are beats."""
    from wfdb.io.annotation import ann_label_table

    return {str(s): str(d) for s, d in zip(ann_label_table["symbol"], ann_label_table["description"], strict=True)
            if aami_class(str(s))}


def aami_members() -> dict[str, list[tuple[str, str]]]:
    """AAMI class -> [(MIT-BIH symbol, its meaning)] of the annotations the class is made of."""
    out: dict[str, list[tuple[str, str]]] = {k: [] for k in AAMI_CLASSES}
    for symbol, meaning in _symbol_names().items():
        out[aami_class(symbol)].append((symbol, meaning))
    return out


def aami_breakdown(labels: np.ndarray, symbols: np.ndarray | None) -> Mapping[str, str]:
    """Per AAMI class present, the MIT-BIH annotations behind its beats with their counts, e.g.
    'A (Atrial premature contraction) 33'; classes without symbols list what they would be made of."""
    members = aami_members()
    names = _symbol_names()
    out = {}
    for cls in sorted(set(np.asarray(labels, dtype=object).tolist()) & set(AAMI_CLASSES)):
        if symbols is not None:
            found, counts = np.unique(np.asarray(symbols, dtype=object)[np.asarray(labels, dtype=object) == cls],
                                      return_counts=True)
            out[cls] = ", ".join(f"{s} ({names.get(str(s), 'beat')}) {int(n):,}" for s, n in zip(found, counts,
                                                                                                  strict=True))
        else:
            out[cls] = ", ".join(f"{s} ({m})" for s, m in members[cls])
    return out
