"""Streamlit glue for the detectors beside the active model: baselines fitted on the active data, their
evaluations, and the 95 % intervals of the areas (cached, so a slider step never recomputes them)."""

from __future__ import annotations

import hashlib

import streamlit as st

from ecgviz.dashboard import baseline_models, explore, session
from ecgviz.errors import USER_ERRORS
from pages.common.keys import BASELINES, PRIMARY
from pages.common.state import active_data, active_model, normal_labels


@st.cache_data(max_entries=16, show_spinner="Computing 95% intervals…")
def _area_intervals(model_id: str, data_fp: str, normals: tuple[str, ...], _ev: explore.ExplorerView) -> dict:
    from ecgviz.evaluation import intervals

    if not _ev.labelled:
        return {"auroc": None, "average_precision": None}
    return intervals.bootstrap_areas(_ev.errors[_ev.eval_idx], _ev.is_anomaly)


def area_intervals(ev: explore.ExplorerView) -> dict:
    """Bootstrap 95 % intervals of AUROC and AP for the active model (cached: ~1 s for 2,300 beats)."""
    model, data = active_model(), active_data()
    return _area_intervals(model.id, data.fingerprint, normal_labels(), ev)


@st.cache_resource(max_entries=4, show_spinner="Fitting the baselines (kNN, PCA)…")
def _fit_baselines(data_fp: str, normals: tuple[str, ...], split_key: str, names: str, _data: session.ActiveData,
                   _split) -> list[session.ActiveModel]:
    # shared between sessions (the built-in data is the same for everyone); the models are read-only
    return baseline_models.fit_baselines(_data, list(normals), _split)


def baselines(fit: bool = False) -> list[session.ActiveModel]:
    """Baselines fitted on the active data and normal labels (same split as the primary model); [] until fitted."""
    data = active_data()
    normals = normal_labels()
    primary = st.session_state.get(PRIMARY) or active_model()
    try:
        split = baseline_models.baseline_split(data, normals, primary) if normals and data.data.has_labels else None
    except USER_ERRORS:  # e.g. too few normal beats to split: no baselines, and the explorer says why elsewhere
        split = None
    if split is None:
        return []
    key = (data.fingerprint, normals, hashlib.sha256(repr(split.to_dict()).encode()).hexdigest()[:12],
           data.names_key)
    held = st.session_state.get(BASELINES)
    if held is not None and held[0] == key:
        return held[1]
    if not fit:
        return []
    models = _fit_baselines(*key, data, split)
    st.session_state[BASELINES] = (key, models)
    return models


def detector_choices() -> list[session.ActiveModel]:
    """The primary model and the fitted baselines, the active one included."""
    primary = st.session_state.get(PRIMARY) or active_model()
    out = [primary] if primary is not None else []
    out += [b for b in baselines() if b.id not in {m.id for m in out}]
    active = active_model()
    if active is not None and active.id not in {m.id for m in out}:
        out.insert(0, active)
    return out
