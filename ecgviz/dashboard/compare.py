"""Detectors side by side on the same held-out beats: a table, overlaid ROC/PR curves, and where they disagree."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ecgviz.dashboard import explore, figures
from ecgviz.dashboard.text import plotly_text
from ecgviz.evaluation import intervals
from ecgviz.io.codes import mask_of

# How each detector's threshold is chosen in the second half of the table (its scores have their own units).
RULES = {
    "label-free": "its own label-free threshold (stored with it: p98 of its training normals)",
    "max_f1": "its max-F1 threshold on these beats (uses labels)",
    "youden": "its Youden's J threshold on these beats (uses labels)",
    "same_fpr": "the false-alarm rate of the explorer's current threshold",
}
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


@dataclass(frozen=True)
class Entry:
    """One detector's evaluation on the shared beats, and its stored label-free threshold."""

    name: str
    ev: explore.ExplorerView
    stored_threshold: float


def threshold_for(entry: Entry, rule: str, target_fpr: float | None = None) -> float | None:
    """The threshold `rule` gives this detector; None when it cannot be computed."""
    if rule == "label-free":
        return entry.stored_threshold
    if rule in ("max_f1", "youden"):
        return entry.ev.suggestions.get(rule)
    if rule == "same_fpr":
        normal = np.sort(entry.ev.errors[entry.ev.eval_idx][~entry.ev.is_anomaly]) if entry.ev.labelled else None
        if normal is None or target_fpr is None or not normal.size:
            return None
        # the smallest threshold that flags at most target_fpr of the normals
        allowed = int(np.floor(target_fpr * normal.size + 1e-9))
        return float(normal[-allowed - 1]) if allowed < normal.size else float(np.nextafter(normal[0], -np.inf))
    raise ValueError(f"unknown rule {rule!r}: use one of {tuple(RULES)}")


def same_beats(entries: Sequence[Entry]) -> bool:
    """True when every detector is judged on exactly the same beats."""
    return all(np.array_equal(e.ev.eval_idx, entries[0].ev.eval_idx) for e in entries[1:])


def table(entries: Sequence[Entry], rule: str, target_fpr: float | None = None) -> pd.DataFrame:
    """One row per detector: AUROC and AP with 95 % intervals, and at `rule`'s threshold balanced accuracy, normal
    recall and each abnormal class's recall (with their intervals)."""
    rows = []
    for entry in entries:
        ev = entry.ev
        if not ev.labelled:
            continue
        e, a = ev.errors[ev.eval_idx], ev.is_anomaly
        areas = intervals.bootstrap_areas(e, a, n_boot=300)
        t = threshold_for(entry, rule, target_fpr)
        row = {"detector": entry.name, "AUROC": ev.roc_auc, "AUROC 95% CI": intervals.fmt_interval(areas["auroc"],
                                                                                                 percent=False),
               "AP": ev.average_precision,
               "AP 95% CI": intervals.fmt_interval(areas["average_precision"], percent=False),
               "threshold": t}
        if t is not None:
            m = ev.metrics_at(t)
            ci = intervals.rate_intervals(m)
            row["balanced accuracy"] = m.balanced_accuracy
            row["normal recall"] = f"{explore.percent(m.normal_recall)} {intervals.fmt_interval(ci['normal_recall'])}"
            # the classes the explorer draws (the largest, the rest pooled): a column per label would be thousands
            for name, flagged, total, _ in ev.abnormal_groups(m):
                row[f"{name} recall"] = (f"{explore.percent(flagged / total)} "
                                         f"{intervals.fmt_interval(intervals.wilson(flagged, total))}")
        rows.append(row)
    return pd.DataFrame(rows)


def overlay(entries: Sequence[Entry], kind: str, zoom: bool = False) -> go.Figure:
    """ROC ('roc') or precision-recall ('pr') curves of every detector in one figure; `zoom` shows the corner where
    good detectors differ (few false alarms, most anomalies caught)."""
    fig = go.Figure()
    if kind == "roc":
        fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line={"color": "#bbbbbb", "dash": "dot"},
                        showlegend=False, hoverinfo="skip")
    for n, entry in enumerate(entries):
        ev = entry.ev
        if ev.roc is None:
            continue
        if kind == "roc":
            x, y = figures.thin(*ev.roc)
            label = f"{entry.name} (AUC {ev.roc_auc:.4f})"
        else:
            y, x = figures.thin(*ev.pr)
            label = f"{entry.name} (AP {ev.average_precision:.4f})"
        fig.add_scatter(x=x, y=y, mode="lines", name=plotly_text(label),
                        line={"color": COLORS[n % len(COLORS)], "width": 2})
    titles = {"roc": ("ROC", "normal beats flagged (FPR)", "anomalies caught (TPR)"),
              "pr": ("Precision-recall", "recall (anomalies caught)", "precision")}[kind]
    x_range, y_range = ([-0.005, 0.2], [0.8, 1.005]) if kind == "roc" else ([0.8, 1.005], [0.95, 1.002])
    if not zoom:
        x_range = y_range = [-0.02, 1.02]
    fig.update_layout(title={"text": titles[0]}, xaxis={"title": {"text": titles[1]}, "range": x_range},
                      yaxis={"title": {"text": titles[2]}, "range": y_range}, height=380,
                      margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend={"orientation": "h", "y": -0.2})
    return fig


def disagreements(a: Entry, t_a: float, b: Entry, t_b: float) -> dict[str, np.ndarray]:
    """Beat indices on the shared evaluated beats that `a` flags and `b` passes, and the reverse; each list sorted
    by how far the flagging detector is above its threshold (relative), clearest first."""
    common = np.intersect1d(a.ev.eval_idx, b.ev.eval_idx)
    fa, fb = a.ev.errors[common] > t_a, b.ev.errors[common] > t_b
    out = {}
    for key, mask, ev, t in (("a_only", fa & ~fb, a.ev, t_a), ("b_only", fb & ~fa, b.ev, t_b)):
        idx = common[mask]
        margin = (ev.errors[idx] - t) / max(abs(t), 1e-12)
        out[key] = idx[np.argsort(-margin, kind="stable")]
    return out


def disagreement_counts(a: Entry, t_a: float, b: Entry, t_b: float,
                        labels: np.ndarray | None, normal_labels: Sequence[str]) -> Mapping[str, int]:
    """How many of each disagreement are right: a flags an anomaly b misses, or a false alarm b avoids."""
    d = disagreements(a, t_a, b, t_b)
    if labels is None:
        return {k: len(v) for k, v in d.items()}
    anomaly = ~mask_of(labels, normal_labels)
    return {"a_only": len(d["a_only"]), "a_only_anomalies": int(anomaly[d["a_only"]].sum()),
            "b_only": len(d["b_only"]), "b_only_anomalies": int(anomaly[d["b_only"]].sum())}


def fpr_at(ev: explore.ExplorerView, threshold: float) -> float | None:
    """Share of evaluated normals flagged at `threshold`."""
    m = ev.metrics_at(threshold)
    return None if m is None or m.normal_recall is None else 1.0 - m.normal_recall

