"""Workspace sync: this session's work is kept in a server-side workspace named in the URL, so a reload or a second
tab finds it; values read from the workspace here, written to it through push()."""

from __future__ import annotations

import functools
import os

import streamlit as st

from ecgviz.dashboard import jobs, workspace
from pages.common import keys, memory

_STORE_ENV = (workspace.ROOT_ENV, workspace.IDLE_HOURS_ENV, workspace.MB_EACH_ENV, workspace.MB_TOTAL_ENV,
              workspace.UNLOAD_S_ENV)


@functools.cache
def _store(*config: str) -> workspace.WorkspaceStore:
    return workspace.store_from_env()


def store() -> workspace.WorkspaceStore:
    """The server's workspace store (one per configuration, so tests may point it elsewhere)."""
    return _store(*(os.environ.get(k, "") for k in _STORE_ENV))


def current_workspace() -> workspace.Workspace:
    """This session's workspace: the one named in the URL if it still exists, else a new one (put in the URL)."""
    memory.ensure_janitor(store)
    ws = st.session_state.get(keys.WORKSPACE)
    wanted = st.query_params.get(keys.WS_PARAM)
    if ws is not None and ws.closed:  # unloaded while no page used it: look its id up again (reread from disk)
        wanted, ws = wanted or ws.id, None
        st.session_state.pop(keys.WORKSPACE, None)
    if ws is None or (wanted and wanted != ws.id):
        found = store().get(wanted)
        if found is None and ws is None:
            found = store().new()
        if found is not None:
            ws = st.session_state[keys.WORKSPACE] = found
            st.session_state.pop(keys.WS_SEEN, None)
    if st.query_params.get(keys.WS_PARAM) != ws.id:
        st.query_params[keys.WS_PARAM] = ws.id
    ws.touch()
    store().attach(ws, memory.session_id())
    return ws


def workspace_of_session() -> workspace.Workspace | None:
    """The workspace this session holds (None before the first run's set-up)."""
    return st.session_state.get(keys.WORKSPACE)


def is_stale(ws: workspace.Workspace) -> bool:
    """True when another tab (or a finished job) changed the workspace since this session last read it."""
    return bool(ws.revision) and st.session_state.get(keys.WS_SEEN) != ws.revision


def pull(ws: workspace.Workspace) -> None:
    """Adopt what the workspace holds (after a reload, or a change made in another tab)."""
    if ws.data is not None:
        st.session_state[keys.DATA] = ws.data
    if ws.model is not None or ws.revision:
        st.session_state[keys.MODEL] = ws.model
        if ws.model is not None and ws.model.source != "baseline":
            st.session_state[keys.PRIMARY] = ws.model
    if ws.threshold is not None and ws.threshold != st.session_state.get(keys.THRESHOLD):
        st.session_state[keys.THRESHOLD] = ws.threshold
        st.session_state[keys.THRESHOLD_REVISION] = int(st.session_state.get(keys.THRESHOLD_REVISION, 0)) + 1
        st.session_state.pop(keys.THRESHOLD_BOX, None)
    if ws.normals is not None and ws.normals != st.session_state.get(keys.NORMALS):
        st.session_state[keys.NORMALS] = list(ws.normals)
        st.session_state.pop(keys.NORMALS_WIDGET, None)
    st.session_state[keys.JOB] = ws.job
    st.session_state[keys.JOB_ADOPTED] = ws.job_adopted
    st.session_state[keys.WS_SEEN] = ws.revision


def push(**values) -> None:
    """Write plain values to the workspace, and remember that this session has seen the result."""
    ws = workspace_of_session()
    if ws is not None:
        ws.update(**values)
        st.session_state[keys.WS_SEEN] = ws.revision


def seen(ws: workspace.Workspace | None) -> None:
    """Remember that this session holds the workspace's current revision (after changing it itself)."""
    st.session_state[keys.WS_SEEN] = ws.revision if ws is not None else None


def start_job(job) -> None:
    """Start a training job and keep it in the workspace, where a reload or another tab finds it.

    Raises jobs.JobRefused (a UserError, shown as an error) when this workspace already trains, or the server
    runs as many jobs as it allows.
    """
    ws = workspace_of_session()
    owner = ws.id if ws is not None else f"session:{memory.session_id()}"
    # the client (its address; None on localhost) caps the jobs of one visitor's many tabs
    st.session_state[keys.JOB] = jobs.slots().start(owner, job, client=st.context.ip_address)
    st.session_state[keys.JOB_ADOPTED] = False
    push(job=job, job_adopted=False)


def form_value(key: str, default):
    """A Model page setting as last submitted in this workspace, else `default`."""
    ws = workspace_of_session()
    return ws.form.get(key, default) if ws is not None else default


def remember_form(**values) -> None:
    """Keep Model page settings (form values, the open tab) in the workspace."""
    ws = workspace_of_session()
    if ws is not None:
        push(form={**ws.form, **values})
