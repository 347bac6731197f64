"""What the browser draws for the threshold: histogram, recall curves and exact counts at every slider position.

The threshold slider's figure is drawn in the browser, so a slider step redraws one line there instead of
waiting for the server. The browser can only do that honestly if it gets the counts, not estimates: the
slider moves on a fixed grid (lo + i * step), so the number of beats of each group above every grid value
is computed here, once per evaluation, and the browser looks its counts up. Off-grid thresholds (typed in
the number box, or a suggestion) come with their own exact counts in ``at``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ecgviz.dashboard import figures
from ecgviz.dashboard.explore import ALL_BEATS, ExplorerView, SliderRange
from ecgviz.evaluation import metrics

# Slider positions are capped: a range of 1,000 steps (explore.slider_range) gives ~1,000 grid values.
MAX_GRID = 5_000


def _groups(ev: ExplorerView) -> list[tuple[str, str, str, np.ndarray]]:
    """(name, kind, colour, sorted errors) of every group the readout and recall curves show."""
    e = ev.errors[ev.eval_idx]
    if ev.eval_group is None or ev.view is None:
        return [(ALL_BEATS, "all", figures.NORMAL_COLOR, np.sort(e))]
    groups = []
    for g, (name, kind, color, _) in enumerate(ev.view.groups()):
        errors = e[ev.eval_group == g]
        if errors.size:
            groups.append((name, kind, color, np.sort(errors)))
    return groups


def grid(rng: SliderRange) -> np.ndarray:
    """Every value the slider can take, computed as the browser computes them (lo + i * step)."""
    n = min(round((rng.hi - rng.lo) / rng.step), MAX_GRID - 1) + 1
    return rng.lo + np.arange(n) * rng.step


def _numbers(values: np.ndarray) -> list[float]:
    # 7 significant digits: far below a pixel, and a third of the JSON of full doubles
    return [float(f"{v:.7g}") for v in np.asarray(values, dtype=np.float64)]


@dataclass(frozen=True)
class ChartBase:
    """The part of the payload that depends on the evaluation only, built once; a slider step adds the threshold."""

    payload: Mapping  # JSON-safe: range, histogram, curves, per-group counts on the slider grid
    sorted_groups: tuple[np.ndarray, ...]  # each group's sorted errors, for exact counts at off-grid thresholds


def chart_base(ev: ExplorerView, rng: SliderRange, *, title: str = "Reconstruction error per class") -> ChartBase:
    """Everything the browser-side chart needs except the threshold: computed once per evaluation and range."""
    groups = _groups(ev)
    g = grid(rng)
    hist = {
        "edges": _numbers(ev.bins.edges),
        "series": [{"name": name, "color": ev.bins.colors.get(name, figures.NORMAL_COLOR),
                    "counts": [int(c) for c in counts]} for name, counts in ev.bins.counts.items()],
    }
    curves = None
    if ev.sweep is not None:
        x, *ys = figures.thin(ev.sweep.thresholds, *ev.recall_curves().values())
        colors = ev.curve_colors()
        curves = {"x": _numbers(x), "series": [{"name": name, "color": colors.get(name), "y": _numbers(y)}
                                               for name, y in zip(ev.recall_curves(), ys, strict=True)]}
    payload = {
        "title": title,
        "range": {"lo": rng.lo, "hi": rng.hi, "step": rng.step, "n": len(g)},
        "hist": hist,
        "curves": curves,
        "groups": [{"name": name, "kind": kind, "color": color, "total": int(s.size),
                    "above": metrics.n_above(s, g).tolist()} for name, kind, color, s in groups],
    }
    return ChartBase(payload=payload, sorted_groups=tuple(s for *_, s in groups))


def chart_data(base: ChartBase, threshold: float, *, revision: int, log_y: bool = False) -> dict:
    """The payload at `threshold`; `revision` changes whenever the server (not the chart) set the threshold."""
    return {**base.payload, "threshold": float(threshold), "revision": int(revision), "log_y": bool(log_y),
            "at": [int(metrics.n_above(s, threshold)) for s in base.sorted_groups]}

