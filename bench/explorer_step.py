"""Threshold explorer, server side: what one slider step costs before Streamlit sends it.

One step is what the explorer fragment (pages/explorer.py) computes when the threshold reaches it: the metrics
(SortedErrors.at), the threshold chart's data (ecgviz.dashboard.livechart, its evaluation-wide part cached as the page
caches it), the four plotly figures, the beat it shows, and the JSON Streamlit makes of each (json.dumps for the
chart's data; st.plotly_chart calls plotly.tools.return_figure_from_figure_or_data, then plotly.io.to_json).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import plotly.io
import plotly.tools

from ecgviz.dashboard import beat_picker, config, explore, figures, livechart
from ecgviz.io.codes import as_text
from ecgviz.io.data import ECG5000_CLASS_NAMES


@dataclass(frozen=True)
class Scene:
    """What the explorer page holds for one data set: errors, labels, beats and the ExplorerView built from them."""

    errors: np.ndarray
    labels: np.ndarray
    beat: Callable[[int], tuple[np.ndarray, np.ndarray]]  # index -> (original, reconstruction)
    ev: explore.ExplorerView
    chart_base: livechart.ChartBase
    prepare_s: float  # explore.explorer_view and livechart.chart_base: paid once per data set, not per step


def make_scene(errors, labels, beat, class_names=ECG5000_CLASS_NAMES, normal_labels=("1",), split=None) -> Scene:
    """Build the ExplorerView the way the dashboard does (pages/common/caches.py via session.explorer_view)."""
    started = time.perf_counter()
    ev = explore.explorer_view(errors, labels, class_names, normal_labels, split=split, same_data=split is not None,
                          percentile=95.0)
    base = livechart.chart_base(ev, explore.slider_range(ev.errors))
    return Scene(np.asarray(errors, np.float64), as_text(labels), beat, ev, base,
                 time.perf_counter() - started)


def ecg5000_scene() -> Scene:
    """The dashboard's start: the shipped model's errors on the bundled ECG5000 beats, its split left out."""
    from ecgviz.dashboard import session

    model, data = session.model_from_path(config.default_checkpoint_path(), source="shipped"), session.builtin_data()
    errors, recon = session.scores(model, data), model.ckpt.detector.reconstruct(data.data.X)
    X = data.data.X
    return make_scene(errors, data.data.labels, lambda i: (X[i], recon[i]), data.data.class_names,
                      split=model.ckpt.split)


def synthetic_scene(base: Scene, n: int, seed: int = 0) -> Scene:
    """n beats resampled from a real scene, errors jittered by ~5 %: the same shape of data at any size."""
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(base.errors), n)
    errors = base.errors[pick] * np.exp(0.05 * rng.standard_normal(n))
    return make_scene(errors, base.labels[pick], lambda i: base.beat(int(pick[i])), base.ev.class_names)


def step(scene: Scene, t: float, mode: str = beat_picker.PICK_MODES[0]) -> list:
    """What one slider step builds, in the page's order: the threshold chart's data, then the plotly Figures."""
    ev = scene.ev
    m = ev.metrics_at(t)
    # the chart's evaluation-wide part is cached by the page (pages/common/caches.chart_base); a step adds the threshold
    figs = [livechart.chart_data(scene.chart_base, t, revision=1)]
    if m is not None:
        fpr = 1.0 - m.normal_recall
        figs.append(figures.roc_figure(*ev.roc, ev.roc_auc, (fpr, m.anomaly_recall)))
        figs.append(figures.pr_figure(*ev.pr, ev.average_precision, (m.anomaly_recall, m.precision)))
        figs.append(figures.confusion_figure(m.confusion))
    label = ev.abnormal_labels[0] if ev.abnormal_labels else None
    i = beat_picker.pick_beat(scene.errors, scene.labels, label, mode, threshold=t)
    if i is not None:
        original, recon = scene.beat(i)
        verdict = beat_picker.verdict(float(scene.errors[i]), t)
        color = ev.colors.get(str(scene.labels[i]), figures.NORMAL_COLOR)
        figs.append(figures.beat_figure(original, recon, title=f"Beat {i + 1:,} ({verdict})", color=color))
    return figs


def serialise(fig) -> str:
    """The JSON Streamlit sends: the chart component's data, or st.plotly_chart's spec for a figure."""
    if isinstance(fig, dict):
        return json.dumps(fig)
    return plotly.io.to_json(plotly.tools.return_figure_from_figure_or_data(fig, validate_figure=True),
                             validate=False)


def _pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def time_steps(scene: Scene, n_steps: int = 50, engine: str | None = None) -> dict:
    """ms per step (build and serialise) over thresholds spread across the slider's range."""
    rng = explore.slider_range(scene.ev.errors)
    # a slider moves along its grid; spread the steps over the range, where the suggestions and errors lie
    thresholds = np.round(np.linspace(rng.lo, rng.hi, n_steps + 2)[1:-1] / rng.step) * rng.step
    previous = plotly.io.json.config.default_engine
    if engine is not None:
        plotly.io.json.config.default_engine = engine
    try:
        for fig in step(scene, float(thresholds[0])):  # warm-up: first-use imports and caches
            serialise(fig)
        build, ser, total, cpu, size = [], [], [], [], 0
        for t in thresholds:
            cpu_started, started = time.process_time(), time.perf_counter()
            figs = step(scene, float(t))
            built = time.perf_counter()
            specs = [serialise(f) for f in figs]
            done = time.perf_counter()
            cpu.append((time.process_time() - cpu_started) * 1e3)
            build.append((built - started) * 1e3)
            ser.append((done - built) * 1e3)
            total.append((done - started) * 1e3)
            size = max(size, sum(map(len, specs)))
    finally:
        plotly.io.json.config.default_engine = previous
    return {
        "n_beats": len(scene.errors),
        "steps": len(total),
        "p50_ms": statistics.median(total),
        "p95_ms": _pct(total, 95),
        "cpu_p50_ms": statistics.median(cpu),  # CPU time: what the step costs with the machine to itself
        "build_p50_ms": statistics.median(build),
        "serialise_p50_ms": statistics.median(ser),
        "json_bytes": size,
        "prepare_s": scene.prepare_s,
        "json_engine": engine or previous,
    }
