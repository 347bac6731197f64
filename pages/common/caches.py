"""Results computed once and shared: the start-up model, each (model, data) pair's errors, the explorer's
ExplorerView, the chart's base and the quality check, keyed by content ids so sessions that share them agree.

The errors, the ExplorerView and the chart base are cache_resource, not cache_data: cache_data unpickles a fresh copy
on every call, which at a million beats costs more than a slider step may take. Nothing writes to them (the errors
are made read-only).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from ecgviz.dashboard import config, explore, session
from pages.common.state import active_data, active_model, normal_labels


@st.cache_resource(max_entries=4, show_spinner="Loading the model…")
def _load_file_model(path: str, mtime_ns: int) -> session.ActiveModel:
    # shared between sessions: read-only, and keyed by mtime so a replaced file is reread
    return session.model_from_path(path, source="shipped")


def default_model() -> session.ActiveModel | None:
    """The start-up checkpoint (shipped unless overridden), or None when it is missing."""
    path = config.default_checkpoint_path()
    if not path.is_file():
        return None
    return _load_file_model(str(path.resolve()), path.stat().st_mtime_ns)


@st.cache_resource(max_entries=8, show_spinner="Scoring every beat…")
def errors_of(model_id: str, data_fp: str, _model: session.ActiveModel, _data: session.ActiveData) -> np.ndarray:
    """Every beat's error under a model, keyed by content ids only (the objects themselves are not hashed)."""
    # errors only: a million beats' reconstructions would be 560 MB; the viewer asks for one (reconstruction())
    errors = session.scores(_model, _data)
    errors.flags.writeable = False
    return errors


@st.cache_resource(max_entries=16, show_spinner=False)
def evaluation_of(model_id: str, data_fp: str, normals: tuple[str, ...], names: str, _model: session.ActiveModel,
                  _data: session.ActiveData, _errors: np.ndarray) -> explore.ExplorerView:
    """The explorer's ExplorerView of one model's errors with these normal labels and class names."""
    return session.explorer_view(_model, _data, normals, _errors)


def scores() -> np.ndarray:
    """Errors of the active data's beats under the active model, computed once per pair."""
    model, data = active_model(), active_data()
    return errors_of(model.id, data.fingerprint, model, data)


def evaluation(model: session.ActiveModel | None = None) -> explore.ExplorerView:
    """The explorer's view of `model` (default: the active one) on the active data with the chosen normal labels."""
    model, data = model or active_model(), active_data()
    errors = errors_of(model.id, data.fingerprint, model, data)
    return evaluation_of(model.id, data.fingerprint, normal_labels(), data.names_key, model, data, errors)


@st.cache_data(max_entries=64, show_spinner=False)
def _reconstruction(model_id: str, data_fp: str, index: int, _model: session.ActiveModel,
                    _data: session.ActiveData) -> np.ndarray:
    return session.reconstruction(_model, _data, index)


def reconstruction(index: int) -> np.ndarray:
    """The active model's reconstruction of one beat of the active data."""
    model, data = active_model(), active_data()
    return _reconstruction(model.id, data.fingerprint, int(index), model, data)


@st.cache_resource(max_entries=16, show_spinner=False)
def _chart_base(model_id: str, data_fp: str, normals: tuple[str, ...], names: str, lo: float, hi: float,
                step: float, _ev: explore.ExplorerView):
    from ecgviz.dashboard import livechart

    # `names` (the class display names' id) is in the key: the chart shows them, and a rename must reach it
    return livechart.chart_base(_ev, explore.SliderRange(lo, hi, step))


def chart_base(ev: explore.ExplorerView, rng: explore.SliderRange):
    """The live chart's data (livechart.ChartBase) for the active model, data and normals, once per slider range."""
    model, data = active_model(), active_data()
    return _chart_base(model.id, data.fingerprint, normal_labels(), data.names_key, rng.lo, rng.hi, rng.step, ev)


@st.cache_data(max_entries=16, show_spinner=False)
def _quality(model_id: str, data_fp: str, normals: tuple[str, ...], _model: session.ActiveModel,
             _data: session.ActiveData, _ev: explore.ExplorerView):
    from ecgviz.pipeline.protocol import assess

    idx = _ev.eval_idx if _ev.is_anomaly is None else _ev.eval_idx[~_ev.is_anomaly]
    auroc = _ev.roc_auc if _ev.labelled else None
    idx = idx[np.linspace(0, len(idx) - 1, min(len(idx), 2000)).astype(int)]  # a sample is enough for variances
    return assess(_model.ckpt, _data.data.X[idx], auroc)


def model_quality(model: session.ActiveModel, ev: explore.ExplorerView | None = None):
    """The model's quality check: on the explorer's held-out normal beats when given, else as stored."""
    from ecgviz.evaluation import quality

    if ev is not None:
        data = active_data()
        return _quality(model.id, data.fingerprint, normal_labels(), model, data, ev)
    return quality.from_metrics(model.card.metrics)
