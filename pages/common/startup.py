"""What app.py does first on every run: find the session's workspace, reread it when another tab changed it, and
give a first visit the built-in data, the start-up model and its threshold."""

from __future__ import annotations

import streamlit as st

from ecgviz.dashboard import session
from ecgviz.dashboard.text import plain
from ecgviz.errors import CheckpointError
from pages.common import caches, keys, state, sync
from pages.common.guard import errors_shown


def init() -> None:
    """Every run: the session's workspace (reread when another tab changed it); built-in defaults on a first run."""
    ws = sync.current_workspace()
    if sync.is_stale(ws):
        sync.pull(ws)
    if ws.note:
        state.notify(ws.note)
        ws.note = ""
    if keys.DATA not in st.session_state:
        st.session_state[keys.DATA] = session.builtin_data()
    if keys.MODEL not in st.session_state:
        model = None
        with errors_shown():
            model = caches.default_model()
        if model is not None:
            try:
                model.card.check_fits(st.session_state[keys.DATA].data.length)
            except CheckpointError as exc:
                st.error(plain(exc))
                model = None
        st.session_state[keys.MODEL] = model
        if model is not None:
            st.session_state[keys.PRIMARY] = model
            st.session_state[keys.THRESHOLD] = float(model.card.threshold)
    if keys.NORMALS not in st.session_state:
        st.session_state[keys.NORMALS] = session.default_normal_labels(state.active_data(), state.active_model())
    if not ws.revision:  # a new workspace starts from this session's defaults
        ws.set_data(state.active_data())
        ws.set_model(state.active_model())
        sync.push(threshold=state.threshold(), normals=list(state.normal_labels()))
