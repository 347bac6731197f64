"""What this session works with, read and changed: the active data, model, normal labels and threshold.

Every change is written through to the session's workspace (pages.common.sync), where a reload or another tab
finds it.
"""

from __future__ import annotations

import streamlit as st

from ecgviz.dashboard import session
from ecgviz.dashboard.text import plain
from ecgviz.errors import CheckpointError
from pages.common import keys, memory, sync
from pages.common.keys import JOB, NORMALS  # noqa: F401 (the keys pages read most, at hand as state.NORMALS)


def active_data() -> session.ActiveData:
    """The data set of this session."""
    return st.session_state[keys.DATA]


def active_model() -> session.ActiveModel | None:
    """The model of this session, if any."""
    return st.session_state.get(keys.MODEL)


def normal_labels() -> tuple[str, ...]:
    """The labels counted as normal."""
    return tuple(st.session_state.get(keys.NORMALS) or ())


def threshold() -> float | None:
    """The chosen threshold, if a model set one."""
    return st.session_state.get(keys.THRESHOLD)


def threshold_revision() -> int:
    """How many times the threshold was set from outside the chart: the chart adopts the value when it changes."""
    return int(st.session_state.get(keys.THRESHOLD_REVISION, 0))


def running_job():
    """This workspace's training job while it runs, else None."""
    job = st.session_state.get(keys.JOB)
    return job if job is not None and not job.state().finished else None


def set_data(data: session.ActiveData, files: list[tuple[str, bytes]] | None = None) -> None:
    """Make `data` active and pick sensible normal labels for it; the same beats again change nothing.

    `files` (uploads) are kept in the workspace, so a reload can load them again.
    """
    current = st.session_state.get(keys.DATA)
    if current is not None and (current.fingerprint, current.name) == (data.fingerprint, data.name):
        # e.g. removing a broken file from a selection re-sends the good one: keep the chosen normal labels
        return
    st.session_state[keys.DATA] = data
    st.session_state[keys.NORMALS] = session.default_normal_labels(data, active_model())
    st.session_state.pop(keys.NORMALS_WIDGET, None)
    ws = sync.workspace_of_session()
    if ws is not None:
        ws.set_data(data, files)
        sync.push(normals=list(st.session_state[keys.NORMALS]))
    memory.release_soon()  # the old beats are freed once this run ends; the janitor then returns their pages


def set_normals(labels: list[str]) -> None:
    """The labels counted as normal, kept in the workspace."""
    st.session_state[keys.NORMALS] = list(labels)
    sync.push(normals=list(labels))


def set_class_names(data: session.ActiveData) -> None:
    """Adopt the same beats under other class display names (normal labels and models stay)."""
    st.session_state[keys.DATA] = data


def set_model(model: session.ActiveModel) -> None:
    """Make `model` active after checking it fits the data (CheckpointError otherwise); adopt its threshold."""
    model.card.check_fits(active_data().data.length)
    st.session_state[keys.MODEL] = model
    if model.source != "baseline":
        st.session_state[keys.PRIMARY] = model
    ws = sync.workspace_of_session()
    if ws is not None:
        ws.set_model(model)
    set_threshold(float(model.card.threshold))


def set_threshold(value: float) -> None:
    """The one threshold every page uses; the explorer's slider and number box resync from it."""
    st.session_state[keys.THRESHOLD] = float(value)
    st.session_state[keys.THRESHOLD_REVISION] = threshold_revision() + 1
    st.session_state.pop(keys.THRESHOLD_BOX, None)
    sync.push(threshold=float(value))


def remember_threshold(value: float) -> None:
    """A threshold set by the chart's slider (already shown there): kept in the workspace, no resync."""
    st.session_state[keys.THRESHOLD] = float(value)
    sync.push(threshold=float(value))


def notify(message: str) -> None:
    """Show `message` (plain text) as a success box on the next run."""
    st.session_state[keys.NOTICE] = message


def show_notice() -> None:
    """Show (once) a message left by notify()."""
    message = st.session_state.pop(keys.NOTICE, None)
    if message:
        st.success(plain(message), icon=":material/check_circle:")


def normal_names(data: session.ActiveData) -> str:
    """Normal labels as readable text."""
    return ", ".join(f"{data.class_name(k)} ({k})" for k in normal_labels()) or "none chosen"


def adopt_finished_training() -> None:
    """Once a background job has finished, activate its model (once), whichever page is open."""
    job = st.session_state.get(keys.JOB)
    if job is None or st.session_state.get(keys.JOB_ADOPTED) or job.state().status != "done":
        return
    st.session_state[keys.JOB_ADOPTED] = True
    ws = sync.workspace_of_session()
    if ws is not None and not ws.adopt_job():
        sync.pull(ws)  # another tab of this workspace adopted it first: take its model as it left it
        return
    sync.seen(ws)
    model = job.result
    if model is None:
        return
    try:
        set_model(model)
        notify(f"Model '{model.name}' trained, saved as {model.path.name if model.path else model.name} "
               "and activated.")
    except CheckpointError as exc:
        notify(f"Model '{model.name}' was saved but not activated: {exc}")
