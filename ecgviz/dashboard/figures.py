"""Plotly figure builders for the dashboard: arrays in, figures out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from ecgviz.dashboard.text import plotly_text

NORMAL_COLOR = "#1f77b4"
# warm, mutually distinct colours so abnormal classes stand apart from the blue normal class
ABNORMAL_COLORS = ("#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#7f7f7f")
THRESHOLD_COLOR = "#111111"
_MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}
# curves are drawn with at most this many points: enough for a smooth line, small enough to resend on every slider step
MAX_CURVE_POINTS = 400
# (x range, y range) of the corner where good detectors differ: few false alarms, most anomalies caught
ZOOM = {"roc": ([-0.005, 0.2], [0.8, 1.005]), "pr": ([0.8, 1.005], [0.95, 1.002])}
FULL_RANGE = [-0.02, 1.02]
TITLE_CHARS, TITLE_SIZE = 38, 16.0  # characters of a class preview's title that fit a third of a 1400 px page


@dataclass(frozen=True)
class HistogramBins:
    """Error counts per group over shared bin edges, computed once so a threshold step only redraws bars."""

    edges: np.ndarray  # (k + 1,)
    counts: Mapping[str, np.ndarray]  # group name -> (k,) int64
    colors: Mapping[str, str]

    @property
    def centers(self) -> np.ndarray:
        """Middle of each bin."""
        return (self.edges[:-1] + self.edges[1:]) / 2


def histogram_bins(
    errors: np.ndarray,
    groups: Mapping[str, np.ndarray],
    colors: Mapping[str, str] | None = None,
    n_bins: int = 80,
) -> HistogramBins:
    """Bin every group's errors over one common range; groups map a name to a boolean mask or index array."""
    errors = np.asarray(errors, dtype=np.float64)
    finite = errors[np.isfinite(errors)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi <= lo:  # a single distinct value still needs a visible bar
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, n_bins + 1)
    counts = {name: np.histogram(errors[np.asarray(sel)], bins=edges)[0] for name, sel in groups.items()}
    palette = dict(colors or {})
    for i, name in enumerate(groups):
        palette.setdefault(name, ABNORMAL_COLORS[i % len(ABNORMAL_COLORS)])
    return HistogramBins(edges=edges, counts=counts, colors=palette)


def _scatter(x, y, **props) -> dict:
    return {"type": "scatter", "x": x, "y": y, **props}


def _figure(traces: list[dict], layout: dict) -> go.Figure:
    # Validation costs more than everything else in a slider step, and these specs are fixed by this module:
    # tests/test_figures.py validates every builder's output instead.
    return go.Figure(data=traces, layout=layout, _validate=False)


def thin(*arrays: np.ndarray, max_points: int = MAX_CURVE_POINTS) -> tuple[np.ndarray, ...]:
    """Keep about max_points evenly spaced points (always the first and last) of equally long arrays."""
    n = len(arrays[0])
    if n <= max_points:
        return tuple(np.asarray(a) for a in arrays)
    idx = np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))
    return tuple(np.asarray(a)[idx] for a in arrays)


def _curve_figure(x, y, point, *, title, x_title, y_title, name, diagonal: bool,
                  ranges: tuple[list, list] = (FULL_RANGE, FULL_RANGE)) -> go.Figure:
    x, y = thin(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    traces = []
    if diagonal:
        traces.append(_scatter([0, 1], [0, 1], mode="lines", line={"color": "#bbbbbb", "dash": "dot"},
                               showlegend=False, hoverinfo="skip"))
    traces.append(_scatter(x, y, mode="lines", name=name, line={"color": NORMAL_COLOR, "width": 2}, showlegend=False))
    if point is not None:
        marker = {"size": 12, "color": ABNORMAL_COLORS[0], "line": {"color": "white", "width": 1}}
        traces.append(_scatter([point[0]], [point[1]], mode="markers", name="operating point", marker=marker,
                               showlegend=False,
                               hovertemplate="current threshold<br>(%{x:.3f}, %{y:.3f})<extra></extra>"))
    layout = {
        "title": {"text": title},
        "xaxis": {"title": {"text": x_title}, "range": ranges[0]},
        "yaxis": {"title": {"text": y_title}, "range": ranges[1]},
        "margin": _MARGIN,
        "height": 340,
    }
    return _figure(traces, layout)


def roc_figure(fpr: np.ndarray, tpr: np.ndarray, auc: float | None, point: tuple[float, float] | None,
               zoom: bool = False) -> go.Figure:
    """ROC curve with the operating point (false positive rate, true positive rate) of the current threshold;
    `zoom` shows the corner of few false alarms."""
    title = "ROC" if auc is None else f"ROC (AUC {auc:.3f})"
    return _curve_figure(fpr, tpr, point, title=title, x_title="normal beats flagged (FPR)",
                         y_title="anomalies caught (TPR)", name="ROC", diagonal=True,
                         ranges=ZOOM["roc"] if zoom else (FULL_RANGE, FULL_RANGE))


def pr_figure(precision: np.ndarray, recall: np.ndarray, ap: float | None,
              point: tuple[float, float] | None, zoom: bool = False) -> go.Figure:
    """Precision-recall curve with the operating point (recall, precision) of the current threshold; `zoom` shows
    the corner of high recall."""
    title = "Precision-recall" if ap is None else f"Precision-recall (AP {ap:.3f})"
    return _curve_figure(recall, precision, point, title=title, x_title="recall (anomalies caught)",
                         y_title="precision", name="PR", diagonal=False,
                         ranges=ZOOM["pr"] if zoom else (FULL_RANGE, FULL_RANGE))


def confusion_figure(confusion: np.ndarray) -> go.Figure:
    """2x2 confusion matrix [[tn, fp], [fn, tp]] as an annotated heatmap, true class on rows."""
    cm = np.asarray(confusion, dtype=np.int64)
    # colour by the share of each true class, so the small normal row is as readable as the large anomaly row
    rows = np.maximum(cm.sum(axis=1, keepdims=True), 1)
    share = cm / rows
    text = [[f"{cm[i, j]:,}<br>{share[i, j]:.1%}" for j in range(2)] for i in range(2)]
    trace = {
        "type": "heatmap",
        "z": share,
        "zmin": 0.0,
        "zmax": 1.0,
        "x": ["passed as normal", "flagged"],
        "y": ["normal", "anomaly"],
        "text": text,
        "texttemplate": "%{text}",
        "textfont": {"size": 15},
        "colorscale": [[0.0, "#f7fbff"], [1.0, "#2b6cb0"]],
        "showscale": False,
        "hovertemplate": "true %{y}, %{x}: %{text} of the row<extra></extra>",
    }
    layout = {
        "title": {"text": "Confusion matrix"},
        "xaxis": {"title": {"text": "verdict"}, "side": "bottom"},
        "yaxis": {"title": {"text": "true class"}, "autorange": "reversed"},
        "margin": _MARGIN,
        "height": 340,
    }
    return _figure([trace], layout)


def beat_figure(original: np.ndarray, reconstruction: np.ndarray, *, title: str = "",
                color: str = NORMAL_COLOR) -> go.Figure:
    """A beat and its reconstruction overlaid, the gap between them shaded."""
    original = np.asarray(original, dtype=np.float64)
    reconstruction = np.asarray(reconstruction, dtype=np.float64)
    t = np.arange(original.size)
    traces = [
        _scatter(t, original, name="original", mode="lines", line={"color": color, "width": 2}),
        # fill to the previous trace shades the difference wherever the two curves part
        _scatter(t, reconstruction, name="reconstruction", mode="lines",
                 line={"color": "#2ca02c", "width": 2, "dash": "dash"}, fill="tonexty",
                 fillcolor="rgba(214, 39, 40, 0.25)"),
    ]
    layout = {
        "title": {"text": plotly_text(title)},
        "xaxis": {"title": {"text": "sample"}},
        "yaxis": {"title": {"text": "amplitude"}},
        "legend": {"orientation": "h", "y": -0.2},
        "margin": _MARGIN,
        "height": 360,
    }
    return _figure(traces, layout)


def class_preview(beats: np.ndarray, *, title: str = "", color: str = NORMAL_COLOR, n_examples: int = 5,
                  seed: int = 0) -> go.Figure:
    """Mean beat with a +/-1 standard deviation band and a few individual beats of one class; `title` is plain text."""
    beats = np.asarray(beats, dtype=np.float64)
    t = np.arange(beats.shape[1]) if beats.ndim == 2 else np.arange(0)
    traces = []
    if beats.shape[0]:
        mean, std = beats.mean(axis=0), beats.std(axis=0)
        rng = np.random.default_rng(seed)
        picks = np.sort(rng.choice(beats.shape[0], size=min(n_examples, beats.shape[0]), replace=False))
        for k, i in enumerate(picks):
            traces.append(_scatter(t, beats[i], mode="lines", line={"color": "#999999", "width": 1}, opacity=0.6,
                                   name="examples", legendgroup="examples", showlegend=k == 0, hoverinfo="skip"))
        # the band is the area between mean+std and mean-std: draw the upper edge, then fill the lower one to it
        traces.append(_scatter(t, mean + std, mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip"))
        traces.append(_scatter(t, mean - std, mode="lines", line={"width": 0}, fill="tonexty",
                               fillcolor=_rgba(color, 0.25), name="±1 std"))
        traces.append(_scatter(t, mean, mode="lines", line={"color": color, "width": 3}, name="mean"))
    layout = {
        # a third of the page is narrow: a long class name gets a smaller font rather than running past the edge
        "title": {"text": plotly_text(title),
                  "font": {"size": max(9.0, TITLE_SIZE * min(1.0, TITLE_CHARS / max(len(title), 1)))}},
        "xaxis": {"title": {"text": "sample"}},
        "yaxis": {"title": {"text": "amplitude"}},
        "legend": {"orientation": "h", "y": -0.25},
        "margin": _MARGIN,
        "height": 300,
    }
    return _figure(traces, layout)


def loss_curves(history: Sequence[Mapping[str, float]], best_epoch: int | None = None) -> go.Figure:
    """Train and validation loss per epoch; the best epoch is marked when known."""
    epochs = np.array([h["epoch"] for h in history], dtype=np.int64)
    traces = []
    for key, name, color in (("train_loss", "train", NORMAL_COLOR), ("val_loss", "validation", ABNORMAL_COLORS[1])):
        values = np.array([_as_float(h.get(key)) for h in history], dtype=np.float64)
        traces.append(_scatter(epochs, values, name=name, mode="lines+markers", line={"color": color}))
    layout = {
        "title": {"text": "Loss per epoch"},
        "xaxis": {"title": {"text": "epoch"}, "tickformat": "d", **({"dtick": 1} if len(epochs) <= 10 else {})},
        "yaxis": {"title": {"text": "loss"}},
        "legend": {"orientation": "h", "y": -0.25},
        "margin": _MARGIN,
        "height": 320,
    }
    if best_epoch is not None:
        # a trace, not a layout shape, so the legend names the line
        finite = [v for t in traces for v in t["y"] if np.isfinite(v)]
        low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
        traces.append(_scatter([best_epoch, best_epoch], [low, high], name=f"best epoch ({best_epoch})", mode="lines",
                               line={"color": "#2ca02c", "dash": "dot", "width": 1.5}, hoverinfo="name"))
    return _figure(traces, layout)


def _as_float(value) -> float:
    return float("nan") if value is None else float(value)


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r}, {g}, {b}, {alpha})"
