"""A recording analysed without labels (ecgviz.analysis), made the session's active data and model, so the explorer,
the recording view and the export work on it; and its summary as the Data page shows it.

The analysis scores each beat by shape and by timing. Timing needs a beat's neighbours, so the model it becomes
scores exactly the beats it was made from (the analysis' own scores); any other beats, which have no neighbours
to judge their timing by, get the shape part alone, as the distance to this recording's median beat.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from ecgviz.dashboard import session
from ecgviz.evaluation.intervals import fmt_interval
from ecgviz.io.codes import encode, tidy
from ecgviz.io.data import BeatData
from ecgviz.io.recording import AAMI_CLASSES, aami_class

if TYPE_CHECKING:  # the analysis stack loads when a recording is analysed, not with every page that names KIND
    from ecgviz.analysis.analyze import Analysis

__all__ = ["KIND", "UNMATCHED", "normal_labels", "report_zip", "summary_view", "with_reference"]

KIND = "analysis"
UNMATCHED = "unmatched"  # the label of a detected beat with no reference beat within the matching tolerance
SCORE_NAME = "shape and timing against this recording (no labels used)"


def with_reference(data: BeatData, symbols: np.ndarray | None) -> BeatData:
    """The cut beats labelled with the AAMI class of their matched reference beat (to evaluate, never to fit)."""
    if symbols is None or data.origin is None:
        return data
    symbol_codes, symbol_names = tidy(*encode(np.asarray(symbols, dtype=object)), key=str)
    label_codes, label_names = tidy(symbol_codes, [aami_class(s) or UNMATCHED for s in symbol_names])
    names = {**AAMI_CLASSES, UNMATCHED: "Detected beat with no reference beat"}
    origin = replace(data.origin, symbol_codes=symbol_codes.astype(np.int16), symbol_names=symbol_names)
    return BeatData.from_codes(X=data.X, label_codes=label_codes, label_names=label_names,
                               class_names={k: v for k, v in names.items() if k in label_names},
                               source_codes=data.source_codes, source_names=data.source_names, rows=data.rows,
                               warnings=data.warnings, origin=origin)


def report_zip(analysis: Analysis) -> bytes:
    """beats.csv, flagged.atr and summary.json, as `python -m ecgviz analyze` writes them, in one zip."""
    from ecgviz.analysis.report import report_files

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, raw in report_files(analysis).items():
            zf.writestr(name, raw)
    return buf.getvalue()


def _clock(seconds: float) -> str:
    from ecgviz.dashboard.recording_view import clock

    return clock(seconds)


def _spans(spans: list, limit: int = 12) -> str:
    text = ", ".join(f"{_clock(a)}-{_clock(b)}" for a, b in spans[:limit])
    return text + (f" and {len(spans) - limit:,} more" if len(spans) > limit else "")


def summary_view(summary: dict) -> dict:
    """What the Data page shows of an analysis: headline counts, the stretches and gaps as times, and (with
    reference annotations) the evaluation as sentences and a per-class table."""
    by_reason = summary.get("flagged_by_reason", {})
    beats, flagged = summary["beats"], summary["flagged"]
    stretches, missed = summary.get("irregular_stretches", []), summary.get("possible_missed_beats", [])
    out = {
        # (label, value, note under it, what it means)
        "counts": [("Flagged", f"{flagged:,}", f"{flagged / beats if beats else 0:.1%} of {beats:,} beats",
                    "beats whose combined score is above the threshold"),
                   ("By " + " / ".join(by_reason), " / ".join(f"{n:,}" for n in by_reason.values()), "beats",
                    "why: the beat's shape differs from the recording's median beat, it comes early, or both"),
                   ("Irregular stretches", f"{len(stretches):,}", f"{sum(b - a for a, b in stretches):,.0f} s",
                    "stretches of RR chaos (atrial fibrillation-like), reported as stretches, not as early beats"),
                   ("Possible missed beats", f"{len(missed):,}", "RR gaps",
                    "RR gaps still long after a second detector searched them: a beat may be hidden there")],
        "stretches": _spans(stretches) if stretches else "",
        "missed": _spans(missed) if missed else "",
        "rule": summary.get("rule", ""),
        "evaluation": None,
    }
    ev = summary.get("evaluation")
    if ev:
        lines = [f"R-peaks: sensitivity {ev['r_peak_sensitivity']:.2%}, positive predictivity "
                 f"{ev['r_peak_positive_predictivity']:.2%} against {ev['reference_beats']:,} reference beats "
                 f"(matched within {ev['match_tolerance_s'] * 1000:.0f} ms)."]
        if ev.get("balanced_accuracy") is not None:
            lines.append(f"Balanced accuracy {ev['balanced_accuracy']:.4f}, 95% CI "
                         f"{fmt_interval(ev.get('balanced_accuracy_ci95'), percent=False)}.")
        if ev.get("auroc") is not None:
            lines.append(f"AUROC {ev['auroc']:.4f}, 95% CI {fmt_interval(ev.get('auroc_ci95'), percent=False)}.")
        lines.append(f"Flags on detections with no reference beat: {ev['flags_on_unmatched_detections']:,}.")
        rows = [{"class": k, "name": AAMI_CLASSES.get(k, k), "beats": v["beats"],
                 "handled right": "passed" if k == "N" else "flagged", "share": v["recall"],
                 "95% CI": fmt_interval(v.get("ci95"))} for k, v in ev.get("class_recall", {}).items()]
        out["evaluation"] = {"lines": lines, "rows": rows}
    return out


def normal_labels(data: session.ActiveData) -> list[str]:
    """The labels that should pass: normal reference beats, and detections no reference beat matches (a flag on
    one of those is a false alarm)."""
    return [k for k in ("N", UNMATCHED) if k in data.labels]
