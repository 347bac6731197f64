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


def areas_table(entries: Sequence[Entry], n_boot: int = 300) -> pd.DataFrame:
    """One row per detector: AUROC and AP, each with its 95 % interval in the same cell (whatever the threshold)."""
    rows = []
    for entry in entries:
        ev = entry.ev
        if not ev.labelled:
            continue
        areas = intervals.bootstrap_areas(ev.errors[ev.eval_idx], ev.is_anomaly, n_boot=n_boot)
        rows.append({"detector": entry.name,
                     "AUROC": f"{ev.roc_auc:.4f} {intervals.fmt_interval(areas['auroc'], percent=False)}",
                     "AP": f"{ev.average_precision:.4f} "
                           f"{intervals.fmt_interval(areas['average_precision'], percent=False)}"})
    return pd.DataFrame(rows)


def threshold_table(entries: Sequence[Entry], rule: str, target_fpr: float | None = None) -> pd.DataFrame:
    """One row per detector at `rule`'s threshold: balanced accuracy, normal recall and each drawn abnormal group's
    recall, rates with their 95 % intervals."""
    rows = []
    for entry in entries:
        ev = entry.ev
        if not ev.labelled:
            continue
        t = threshold_for(entry, rule, target_fpr)
        row = {"detector": entry.name, "threshold": t}
        if t is not None:
            m = ev.metrics_at(t)
            ci = intervals.rate_intervals(m)
            row["balanced accuracy"] = (f"{m.balanced_accuracy:.4f} "
                                        f"{intervals.fmt_interval(ci['balanced_accuracy'], percent=False)}")
            row["normal recall"] = f"{explore.percent(m.normal_recall)} {intervals.fmt_interval(ci['normal_recall'])}"
            # the classes the explorer draws (the largest, the rest pooled): a column per label would be thousands
            for name, flagged, total, _ in ev.abnormal_groups(m):
                row[f"{name} recall"] = (f"{explore.percent(flagged / total)} "
                                         f"{intervals.fmt_interval(intervals.wilson(flagged, total))}")
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Verdict:
    """The paired bootstrap of AUROC(a) - AUROC(b) on the beats both are judged on, in words."""

    a: str
    b: str
    difference: float
    interval: tuple[float, float]

    @property
    def significant(self) -> bool:
        """True when the 95 % interval of the difference leaves out 0."""
        return self.interval[0] > 0 or self.interval[1] < 0

    def detail(self) -> str:
        """The verdict without the names: 'better by +0.0200 AUROC (95% CI ...)' or 'no significant difference ...'."""
        ci = f"[{self.interval[0]:+.4f}, {self.interval[1]:+.4f}]"
        if not self.significant:
            return f"no significant difference (AUROC difference {self.difference:+.4f}, 95% CI {ci} holds 0)"
        word = "higher" if self.difference > 0 else "lower"
        return f"AUROC {word} by {abs(self.difference):.4f} (95% CI of the difference {ci})"

    def text(self) -> str:
        """The verdict with both names, e.g. 'kNN-5 (L1) vs PCA-8: AUROC higher by 0.0200 (95% CI ...)'."""
        return f"{self.a} vs {self.b}: {self.detail()}"


def verdicts(entries: Sequence[Entry], n_boot: int = intervals.N_BOOT) -> list[Verdict]:
    """The detector with the highest AUROC against each other one, each pair on the beats both are judged on."""
    judged = [e for e in entries if e.ev.labelled]
    if len(judged) < 2:
        return []
    best = max(judged, key=lambda e: e.ev.roc_auc)
    out = []
    for other in judged:
        if other is best:
            continue
        common, ia, ib = np.intersect1d(best.ev.eval_idx, other.ev.eval_idx, return_indices=True)
        y = best.ev.is_anomaly[ia]
        if not len(common) or y.all() or not y.any() or not np.array_equal(y, other.ev.is_anomaly[ib]):
            continue
        diff, ci = intervals.paired_auroc_difference(best.ev.errors[common], other.ev.errors[common], y,
                                                     n_boot=n_boot)
        out.append(Verdict(best.name, other.name, diff, ci))
    return out


def summary(found: Sequence[Verdict]) -> str | None:
    """One sentence on who wins, from the paired verdicts of the best detector against the others."""
    if not found:
        return None
    best = found[0].a
    beaten = [v.b for v in found if v.significant and v.difference > 0]
    tied = [v.b for v in found if not v.significant]
    if not beaten:
        return (f"No clear winner: {best} has the highest AUROC, but the difference to every other detector is within "
                "what resampling the beats produces (paired bootstrap, 95%).")
    if not tied:
        return f"{best} is the best detector here: its AUROC is significantly higher than every other's."
    return (f"{best} has the highest AUROC: significantly above {', '.join(beaten)}, but not distinguishable from "
            f"{', '.join(tied)}.")


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
    x_range, y_range = figures.ZOOM[kind] if zoom else (figures.FULL_RANGE, figures.FULL_RANGE)
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

