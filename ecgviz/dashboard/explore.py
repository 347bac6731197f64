"""View model for the dashboard: what to evaluate, which beat to show, slider ranges; no UI code."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ecgviz.dashboard import figures
from ecgviz.dashboard.classes import ClassView, class_view
from ecgviz.evaluation import intervals, metrics
from ecgviz.evaluation.split import evaluated_beats, own_split
from ecgviz.io.codes import as_text, encode
from ecgviz.io.data import label_key

ALL_BEATS = "All beats"


@dataclass(frozen=True)
class ExplorerView:
    """Everything the threshold explorer derives once per (model, data, normal labels); a slider step reads it."""

    errors: np.ndarray  # (n,) every beat
    eval_idx: np.ndarray  # beats the metrics are computed on (the model's training beats are left out)
    is_anomaly: np.ndarray | None  # (len(eval_idx),) None when the data has no labels
    eval_labels: np.ndarray | None
    reference_errors: np.ndarray  # normal beats the percentile suggestion is taken from
    normal_labels: tuple[str, ...]
    abnormal_labels: tuple[str, ...]
    class_names: Mapping[str, str]  # label -> the data's name for it (what exports write)
    colors: Mapping[str, str]  # label -> colour; ALL_BEATS when unlabelled
    view: ClassView | None  # display names and the groups drawn (normals, largest classes, the rest); None unlabelled
    bins: figures.HistogramBins
    sorted_errors: metrics.SortedErrors | None
    sweep: metrics.Sweep | None
    suggestions: Mapping[str, float]
    n_excluded: int  # beats left out because the model trained or early-stopped on them
    percentile: float  # of reference_errors, for the "percentile" suggestion
    roles: np.ndarray  # (n,) train / validation / held-out / not used, per beat
    group_recall: Mapping[str, np.ndarray]  # group name -> its recall along sweep.thresholds (normals: passed)
    eval_group: np.ndarray | None  # (len(eval_idx),) each evaluated beat's index in view.groups(); None unlabelled

    @property
    def labelled(self) -> bool:
        """True when metrics can be computed (labels present, both classes evaluated)."""
        return self.sorted_errors is not None

    @functools.cached_property
    def _curves(self) -> tuple:
        # scikit-learn draws them, and is a second of start-up: worked out when a page first shows them, after
        # the threshold chart, which needs none of it
        if not self.labelled:
            return None, None, None, None
        e = self.errors[self.eval_idx]
        fpr, tpr, _ = metrics.roc_curve(e, self.is_anomaly)
        precision, recall, _ = metrics.pr_curve(e, self.is_anomaly)
        return ((fpr, tpr), (precision, recall), metrics.roc_auc(e, self.is_anomaly),
                metrics.average_precision(e, self.is_anomaly))

    @property
    def roc(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(fpr, tpr) of the evaluated beats; None without labels of both kinds."""
        return self._curves[0]

    @property
    def pr(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(precision, recall) of the evaluated beats; None without labels of both kinds."""
        return self._curves[1]

    @property
    def roc_auc(self) -> float | None:
        """Area under the ROC curve; None without labels of both kinds."""
        return self._curves[2]

    @property
    def average_precision(self) -> float | None:
        """Average precision; None without labels of both kinds."""
        return self._curves[3]

    def name(self, label: str) -> str:
        """Display name of a label (it follows the chosen normals: see classes.class_view)."""
        return self.view.name(label) if self.view is not None else self.class_names.get(label, f"Class {label}")

    def abnormal_groups(self, m: metrics.Metrics) -> list[tuple[str, int, int, tuple[str, ...]]]:
        """(name, flagged, total, labels) of each abnormal group drawn: the largest classes, then the pooled rest."""
        out = []
        for name, kind, _, labels in self.view.groups() if self.view is not None else ():
            counts = [m.class_counts[k] for k in labels if k in m.class_recall]
            if kind == "anomaly" and counts:
                out.append((name, sum(f for f, _ in counts), sum(t for _, t in counts), labels))
        return out

    def metrics_at(self, threshold: float) -> metrics.Metrics | None:
        """Metrics at one threshold (O(log n)); None for unlabelled data."""
        return None if self.sorted_errors is None else self.sorted_errors.at(threshold)

    def outcomes(self, threshold: float) -> np.ndarray:
        """TP/FP/TN/FN (n,) of the evaluated beats at `threshold`, '' elsewhere (all '' without labels)."""
        from ecgviz.pipeline import export  # pandas: imported once a table is asked for, not for the first chart

        return export.outcomes(len(self.errors), threshold, self.errors, self.eval_idx, self.is_anomaly)

    def beat_table(self, data, threshold: float, **kwargs):
        """The export's per-beat table, with split roles and outcomes: the explorer's counts follow from it."""
        from ecgviz.pipeline import export

        return export.beat_table(data, self.errors, threshold, roles=self.roles, outcome=self.outcomes(threshold),
                                 class_names=dict(self.class_names), **kwargs)

    def caveats(self) -> list[str]:
        """What makes the figures uncertain or flattering (small classes, prevalence)."""
        if self.sorted_errors is None:
            return []
        m = self.sorted_errors.at(float("inf"))
        held = {k: t for k, (_, t) in m.class_counts.items() if k in m.class_recall}
        return intervals.caveats(m.n_normal, m.n_anomaly, held, {k: self.name(k) for k in held})

    def n_flagged(self, threshold: float) -> int:
        """Beats of the whole data set above the threshold."""
        return int(np.count_nonzero(self.errors > threshold))

    def recall_curves(self) -> dict[str, np.ndarray]:
        """Normal recall and each drawn abnormal group's recall across the sweep's thresholds."""
        return dict(self.group_recall)

    def curve_colors(self) -> dict[str, str]:
        """Colours for recall_curves keys."""
        return {name: color for name, _, color, _ in (self.view.groups() if self.view is not None else ())}


def evaluation_beats(n_beats: int, labels: np.ndarray | None, normal_labels: Sequence[str], split,
                     same_data: bool) -> tuple[np.ndarray, np.ndarray]:
    """(indices to evaluate, indices of reference normals) for a model on a data set.

    The beats evaluated follow split.evaluated_beats. On the model's own data its training normals are the
    percentile reference, as for the label-free threshold stored in a checkpoint; elsewhere the chosen normals.
    """
    own = own_split(split, n_beats, same_data)
    idx = evaluated_beats(own, n_beats, normal_labels)
    if own is not None:
        return idx, np.asarray(own.train, dtype=np.int64)
    if labels is None:
        return idx, idx
    return idx, np.flatnonzero(np.isin(labels, list(normal_labels)))


def explorer_view(errors: np.ndarray, labels: np.ndarray | None, class_names: Mapping[str, str],
             normal_labels: Sequence[str], *, split=None, same_data: bool = False, n_bins: int = 80,
             percentile: float = 98.0) -> ExplorerView:
    """Build the ExplorerView: held-out beats, sorted errors, sweep, curves, suggestions, histogram bins."""
    errors = np.asarray(errors, dtype=np.float64)
    idx, ref = evaluation_beats(len(errors), labels, normal_labels, split, same_data)
    e = errors[idx]
    own = own_split(split, len(errors), same_data)
    if own is not None:
        roles = own.roles(idx)
    else:
        roles = np.full(len(errors), "not used", dtype=object)
        roles[idx] = "held-out"
    if labels is None:
        return _unlabelled(errors, idx, e, errors[ref], n_bins, len(errors) - len(idx), percentile, roles)
    labels = as_text(labels)
    lab = labels[idx]
    normal_labels = tuple(str(k) for k in normal_labels)
    codes, names = encode(labels)
    counts = dict(zip(names, np.bincount(codes, minlength=len(names)).tolist(), strict=True))
    view = class_view({k: counts[k] for k in sorted(counts, key=label_key)}, class_names, normal_labels)
    # per evaluated beat, the index of its group in view.groups(): one pass over codes, whatever the class count
    groups = view.groups()
    group_of = {k: g for g, (*_, members) in enumerate(groups) for k in members}
    eval_codes, eval_names = encode(lab)
    beat_group = np.array([group_of.get(k, -1) for k in eval_names], dtype=np.int64)[eval_codes] if len(lab) else \
        np.zeros(0, dtype=np.int64)
    chosen, present = set(normal_labels), set(eval_names)
    is_anomaly = ~np.isin(eval_codes, [i for i, k in enumerate(eval_names) if k in chosen])
    abnormal = tuple(sorted((k for k in counts if k not in chosen and k in present), key=label_key))
    masks = {name: beat_group == g for g, (name, *_) in enumerate(groups)}
    masks = {name: mask for name, mask in masks.items() if mask.any()}
    bins = figures.histogram_bins(e, masks, {name: color for name, _, color, _ in groups}, n_bins=n_bins)
    both = bool(is_anomaly.any()) and bool((~is_anomaly).any())
    sorted_errors = metrics.SortedErrors(e, is_anomaly, lab) if both else None
    reference = errors[ref]
    sweep = None
    group_recall: dict[str, np.ndarray] = {}
    if both:
        sweep = sorted_errors.sweep(n_thresholds=300, classes=view.shown)
        for name, kind, _, members in groups:
            if name not in masks:
                continue
            if kind == "normal":
                group_recall[name] = sweep.normal_recall
            elif len(members) == 1:
                group_recall[name] = sweep.class_recall[members[0]]
            else:  # the pooled classes: one curve for all their beats
                pooled = np.sort(e[masks[name]])
                group_recall[name] = metrics.n_above(pooled, sweep.thresholds) / pooled.size
    suggestions = metrics.suggest_thresholds(e, is_anomaly, reference, percentile) if e.size else {}
    return ExplorerView(
        errors=errors, eval_idx=idx, is_anomaly=is_anomaly, eval_labels=lab, reference_errors=reference,
        normal_labels=normal_labels, abnormal_labels=abnormal, class_names=dict(class_names), colors=view.colors,
        view=view, bins=bins, sorted_errors=sorted_errors, sweep=sweep, suggestions=suggestions,
        n_excluded=len(errors) - len(idx), percentile=percentile,
        roles=roles, group_recall=group_recall, eval_group=beat_group,
    )


def _unlabelled(errors, idx, e, reference, n_bins, n_excluded, percentile, roles) -> ExplorerView:
    colors = {ALL_BEATS: figures.NORMAL_COLOR}
    bins = figures.histogram_bins(e, {ALL_BEATS: np.ones(e.size, bool)}, colors, n_bins=n_bins)
    suggestions = metrics.suggest_thresholds(e, np.zeros(e.size, bool), reference, percentile) if reference.size else {}
    return ExplorerView(
        errors=errors, eval_idx=idx, is_anomaly=None, eval_labels=None, reference_errors=reference,
        normal_labels=(), abnormal_labels=(), class_names={}, colors=colors, view=None, bins=bins,
        sorted_errors=None, sweep=None, suggestions=suggestions, n_excluded=n_excluded, percentile=percentile,
        roles=roles, group_recall={},
        eval_group=None,
    )


@dataclass(frozen=True)
class SliderRange:
    """Bounds and step for the threshold slider."""

    lo: float
    hi: float
    step: float

    def clamp(self, value: float) -> float:
        """Value forced into [lo, hi]."""
        return float(min(max(value, self.lo), self.hi))


def _nice_step(span: float, target_steps: int = 1000) -> float:
    # 1, 2 or 5 times a power of ten keeps slider labels short
    raw = span / target_steps
    power = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 5.0, 10.0):
        if raw <= m * power:
            return m * power
    return 10.0 * power


def slider_range(errors: np.ndarray, extra: Sequence[float] = ()) -> SliderRange:
    """Range covering every error (and any extra values, e.g. a checkpoint's threshold), on a round grid."""
    values = np.concatenate([np.asarray(errors, dtype=np.float64).ravel(), np.asarray(extra, dtype=np.float64)])
    values = values[np.isfinite(values)]
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    if hi <= lo:
        lo, hi = lo - 1.0, hi + 1.0
    step = _nice_step(hi - lo)
    # rounded to the step's decimals: the browser's slider counts steps from lo in decimal, so lo and hi
    # must be exact multiples of the step as written (5.8, not 5.800000000000001)
    digits = max(0, 1 - math.floor(math.log10(step)))
    return SliderRange(lo=round(math.floor(lo / step) * step, digits), hi=round(math.ceil(hi / step) * step, digits),
                       step=step)


def percent(x: float | None) -> str:
    """'97.3%', or 'undefined' (e.g. precision with nothing flagged)."""
    return "undefined" if x is None else f"{100 * x:.1f}%"


def metrics_payload(ev: ExplorerView, threshold: float, extra: Mapping | None = None,
                    areas: Mapping | None = None) -> bytes:
    """JSON bytes: the metrics at `threshold` (None for unlabelled data) with 95 % intervals, flag counts,
    suggestions, caveats and `extra`; `areas` are AUROC/AP intervals already computed (else bootstrapped here)."""
    m = ev.metrics_at(threshold)
    bands: dict = {}
    if m is not None:
        if areas is None:
            areas = intervals.bootstrap_areas(ev.errors[ev.eval_idx], ev.is_anomaly)
        bands = {"auroc": areas.get("auroc"), "average_precision": areas.get("average_precision"),
                 **intervals.rate_intervals(m),
                 "method": f"Wilson score for rates; stratified percentile bootstrap ({intervals.N_BOOT} resamples, "
                           "seed 0) for AUROC and AP"}
    held = ev.errors[ev.eval_idx] > threshold
    info = {
        "threshold": float(threshold),
        # the held-out count first: the explorer's; the count over every beat says that it includes training beats
        "n_flagged_held_out": int(np.count_nonzero(held)),
        "n_held_out": len(ev.eval_idx),
        "n_beats": len(ev.errors),
        "n_flagged_all_beats": ev.n_flagged(threshold),
        "n_evaluated": len(ev.eval_idx),
        "n_left_out_as_training_beats": int(ev.n_excluded),
        "normal_labels": list(ev.normal_labels),
        "roc_auc": ev.roc_auc,
        "average_precision": ev.average_precision,
        "suggested_thresholds": {k: float(v) for k, v in ev.suggestions.items()},
        "prevalence": None if m is None else m.n_anomaly / max(m.n_normal + m.n_anomaly, 1),
        "intervals_95": bands,
        "caveats": ev.caveats(),
        "class_names": dict(ev.class_names),
        **dict(extra or {}),
    }
    if m is not None:
        from ecgviz.pipeline import export

        return export.metrics_json(m, info)
    return json.dumps({"metrics": None, **info}, indent=2, allow_nan=False).encode("utf-8")
