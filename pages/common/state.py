"""Streamlit glue shared by the pages: session state, caches, error display, the sidebar summary."""

from __future__ import annotations

import contextlib
import functools
import os
import runpy
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import streamlit as st

from ecgviz.checkpoint.store import CheckpointError
from ecgviz.dashboard import config, explore, jobs, livechart, session, workspace
from ecgviz.dashboard.jobs import format_seconds
from ecgviz.dashboard.text import plain
from ecgviz.errors import USER_ERRORS
from pages.common import memory

DATA = "active_data"
MODEL = "active_model"
NORMALS = "normal_labels"
THRESHOLD = "threshold"
THRESHOLD_REVISION = "threshold_revision"  # bumped whenever the threshold is set other than by the chart's slider
JOB = "train_job"
THRESHOLD_SLOT = "_sidebar_threshold_slot"
NOTICE = "notice"  # one-shot message shown on the next run (e.g. "model trained and activated")
PRIMARY = "primary_model"  # the last model loaded or trained (not a baseline): what "switch detector" returns to
BASELINES = "baselines"  # (key, [ActiveModel]) fitted on the active data, normal labels and split
WORKSPACE = "workspace"  # this session's server-side workspace (see ecgviz/dashboard/workspace.py)
WS_SEEN = "workspace_revision"  # the workspace revision this session last read or wrote
WS_PARAM = "ws"  # the URL query parameter that names the workspace

_APP = Path(__file__).resolve().parents[2] / "app.py"

config.limit_torch_threads()  # once per server process: this module is imported once


def run_through_app() -> None:
    """Make sure app.py runs first; every page calls this on its first line.

    Streamlit (1.67) decides from the existence of a folder named pages/ that it is in its older multipage mode
    until app.py has called st.navigation: a server whose first visitor opens /data (and every AppTest run) runs
    that page's file on its own, with no set-up, no sidebar and every file in pages/ listed. Here the page then
    runs app.py in its place (same run, so a form submit or click is not lost) and stops; app.py's st.navigation
    clears the flag and runs this page again, properly. tests/test_browser.py opens every page URL on a fresh
    server and tests/test_layout.py shows the Streamlit rule this works around.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        runpy.run_path(str(_APP), run_name="__main__")
        st.stop()


@contextlib.contextmanager
def errors_shown() -> Iterator[None]:
    """Turn any error in the block into st.error, so no traceback reaches the page."""
    try:
        yield
    except USER_ERRORS as exc:
        st.error(plain(str(exc) or type(exc).__name__), icon=":material/error:")
    except Exception as exc:  # the last line of defence: a message, never a stack trace
        st.error(plain(f"Something went wrong ({type(exc).__name__}): {exc}"), icon=":material/error:")


def shows_errors(fn: Callable) -> Callable:
    """errors_shown() around a function: for fragments, whose reruns skip the app's own guard."""
    @functools.wraps(fn)
    def guarded(*args, **kwargs):
        with errors_shown():
            return fn(*args, **kwargs)

    return guarded


@st.cache_resource(max_entries=4, show_spinner="Loading the model…")
def _load_file_model(path: str, mtime_ns: int) -> session.ActiveModel:
    # shared between sessions: read-only, and keyed by mtime so a replaced file is reread
    return session.model_from_path(path, source="shipped")


def default_model() -> session.ActiveModel | None:
    """The start-up checkpoint (shipped unless overridden), or None with a warning when it is missing."""
    path = config.default_checkpoint_path()
    if not path.is_file():
        return None
    return _load_file_model(str(path.resolve()), path.stat().st_mtime_ns)


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
    ws = st.session_state.get(WORKSPACE)
    wanted = st.query_params.get(WS_PARAM)
    if ws is not None and ws.closed:  # unloaded while no page used it: look its id up again (reread from disk)
        wanted, ws = wanted or ws.id, None
        st.session_state.pop(WORKSPACE, None)
    if ws is None or (wanted and wanted != ws.id):
        found = store().get(wanted)
        if found is None and ws is None:
            found = store().new()
        if found is not None:
            ws = st.session_state[WORKSPACE] = found
            st.session_state.pop(WS_SEEN, None)
    if st.query_params.get(WS_PARAM) != ws.id:
        st.query_params[WS_PARAM] = ws.id
    ws.touch()
    store().attach(ws, memory.session_id())
    return ws


def _pull(ws: workspace.Workspace) -> None:
    """Adopt what the workspace holds (after a reload, or a change made in another tab)."""
    if ws.data is not None:
        st.session_state[DATA] = ws.data
    if ws.model is not None or ws.revision:
        st.session_state[MODEL] = ws.model
        if ws.model is not None and ws.model.source != "baseline":
            st.session_state[PRIMARY] = ws.model
    if ws.threshold is not None and ws.threshold != st.session_state.get(THRESHOLD):
        st.session_state[THRESHOLD] = ws.threshold
        st.session_state[THRESHOLD_REVISION] = threshold_revision() + 1
        st.session_state.pop("thr_number", None)
    if ws.normals is not None and ws.normals != st.session_state.get(NORMALS):
        st.session_state[NORMALS] = list(ws.normals)
        st.session_state.pop("normals_widget", None)
    st.session_state[JOB] = ws.job
    st.session_state["job_adopted"] = ws.job_adopted
    st.session_state[WS_SEEN] = ws.revision


def _push(**values) -> None:
    """Write plain values to the workspace, and remember that this session has seen the result."""
    ws = st.session_state.get(WORKSPACE)
    if ws is not None:
        ws.update(**values)
        st.session_state[WS_SEEN] = ws.revision


def init() -> None:
    """Every run: the session's workspace (reread when another tab changed it); built-in defaults on a first run."""
    ws = current_workspace()
    if st.session_state.get(WS_SEEN) != ws.revision and ws.revision:
        _pull(ws)
    if ws.note:
        notify(ws.note)
        ws.note = ""
    if DATA not in st.session_state:
        st.session_state[DATA] = session.builtin_data()
    if MODEL not in st.session_state:
        model = None
        with errors_shown():
            model = default_model()
        if model is not None:
            try:
                model.ckpt.check_fits(st.session_state[DATA].data.length)
            except CheckpointError as exc:
                st.error(plain(exc))
                model = None
        st.session_state[MODEL] = model
        if model is not None:
            st.session_state[PRIMARY] = model
            st.session_state[THRESHOLD] = float(model.ckpt.threshold)
    if NORMALS not in st.session_state:
        st.session_state[NORMALS] = session.default_normal_labels(st.session_state[DATA], st.session_state[MODEL])
    if not ws.revision:  # a new workspace starts from this session's defaults
        ws.set_data(st.session_state[DATA])
        ws.set_model(st.session_state[MODEL])
        _push(threshold=threshold(), normals=list(st.session_state[NORMALS]))


def active_data() -> session.ActiveData:
    """The data set of this session."""
    return st.session_state[DATA]


def active_model() -> session.ActiveModel | None:
    """The model of this session, if any."""
    return st.session_state.get(MODEL)


def set_data(data: session.ActiveData, files: list[tuple[str, bytes]] | None = None) -> None:
    """Make `data` active and pick sensible normal labels for it; the same beats again change nothing.

    `files` (uploads) are kept in the workspace, so a reload can load them again.
    """
    current = st.session_state.get(DATA)
    if current is not None and (current.fingerprint, current.name) == (data.fingerprint, data.name):
        # e.g. removing a broken file from a selection re-sends the good one: keep the chosen normal labels
        return
    st.session_state[DATA] = data
    st.session_state[NORMALS] = session.default_normal_labels(data, active_model())
    st.session_state.pop("normals_widget", None)
    ws = st.session_state.get(WORKSPACE)
    if ws is not None:
        ws.set_data(data, files)
        _push(normals=list(st.session_state[NORMALS]))
    memory.release_soon()  # the old beats are freed once this run ends; the janitor then returns their pages


def set_normals(labels: list[str]) -> None:
    """The labels counted as normal, kept in the workspace."""
    st.session_state[NORMALS] = list(labels)
    _push(normals=list(labels))


def set_class_names(data: session.ActiveData) -> None:
    """Adopt the same beats under other class display names (normal labels and models stay)."""
    st.session_state[DATA] = data


def set_model(model: session.ActiveModel) -> None:
    """Make `model` active after checking it fits the data (CheckpointError otherwise); adopt its threshold."""
    model.ckpt.check_fits(active_data().data.length)
    st.session_state[MODEL] = model
    if model.source != "baseline":
        st.session_state[PRIMARY] = model
    ws = st.session_state.get(WORKSPACE)
    if ws is not None:
        ws.set_model(model)
    set_threshold(float(model.ckpt.threshold))


def set_threshold(value: float) -> None:
    """The one threshold every page uses; the explorer's slider and number box resync from it."""
    st.session_state[THRESHOLD] = float(value)
    st.session_state[THRESHOLD_REVISION] = threshold_revision() + 1
    st.session_state.pop("thr_number", None)
    _push(threshold=float(value))


def remember_threshold(value: float) -> None:
    """A threshold set by the chart's slider (already shown there): kept in the workspace, no resync."""
    st.session_state[THRESHOLD] = float(value)
    _push(threshold=float(value))


def start_job(job) -> None:
    """Start a training job and keep it in the workspace, where a reload or another tab finds it.

    Raises jobs.JobRefused (a ValueError, shown as an error) when this workspace already trains, or the server
    runs as many jobs as it allows.
    """
    ws = st.session_state.get(WORKSPACE)
    owner = ws.id if ws is not None else f"session:{memory.session_id()}"
    # the client (its address; None on localhost) caps the jobs of one visitor's many tabs
    st.session_state[JOB] = jobs.slots().start(owner, job, client=st.context.ip_address)
    st.session_state["job_adopted"] = False
    _push(job=job, job_adopted=False)


def form_value(key: str, default):
    """A Model page setting as last submitted in this workspace, else `default`."""
    ws = st.session_state.get(WORKSPACE)
    return ws.form.get(key, default) if ws is not None else default


def remember_form(**values) -> None:
    """Keep Model page settings (form values, the open tab) in the workspace."""
    ws = st.session_state.get(WORKSPACE)
    if ws is not None:
        _push(form={**ws.form, **values})


def threshold_revision() -> int:
    """How many times the threshold was set from outside the chart: the chart adopts the value when it changes."""
    return int(st.session_state.get(THRESHOLD_REVISION, 0))


def threshold() -> float | None:
    """The chosen threshold, if a model set one."""
    return st.session_state.get(THRESHOLD)


def notify(message: str) -> None:
    """Show `message` (plain text) as a toast-like success box on the next run."""
    st.session_state[NOTICE] = message


def show_notice() -> None:
    """Show (once) a message left by notify()."""
    message = st.session_state.pop(NOTICE, None)
    if message:
        st.success(plain(message), icon=":material/check_circle:")


# The errors, the ExplorerView and the chart base are cache_resource, not cache_data: cache_data unpickles a fresh copy
# on every call, which at a million beats costs more than a slider step may take. They are keyed by content ids, so
# sessions that share them hold the same values, and nothing writes to them (the errors are made read-only).
@st.cache_resource(max_entries=8, show_spinner="Scoring every beat…")
def _scores(model_id: str, data_fp: str, _model: session.ActiveModel, _data: session.ActiveData) -> np.ndarray:
    # keyed by content ids only: the model and data objects themselves are not hashed. Errors only: a million
    # beats' reconstructions would be 560 MB; the beat viewer asks for the one it shows (reconstruction()).
    errors = session.scores(_model, _data)
    errors.flags.writeable = False
    return errors


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
                step: float, _ev: explore.ExplorerView) -> livechart.ChartBase:
    # `names` (the class display names' id) is in the key: the chart shows them, and a rename must reach it
    return livechart.chart_base(_ev, explore.SliderRange(lo, hi, step))


def chart_base(ev: explore.ExplorerView, rng: explore.SliderRange) -> livechart.ChartBase:
    """The live chart's data for the active model, data and normal labels, built once per slider range."""
    model, data = active_model(), active_data()
    normals = tuple(st.session_state.get(NORMALS) or ())
    return _chart_base(model.id, data.fingerprint, normals, data.names_key, rng.lo, rng.hi, rng.step, ev)


@st.cache_resource(max_entries=16, show_spinner=False)
def _evaluation(model_id: str, data_fp: str, normals: tuple[str, ...], names: str, _model: session.ActiveModel,
                _data: session.ActiveData, _errors: np.ndarray) -> explore.ExplorerView:
    return session.explorer_view(_model, _data, normals, _errors)


def scores() -> np.ndarray:
    """Errors of the active data's beats under the active model, computed once per pair."""
    model, data = active_model(), active_data()
    return _scores(model.id, data.fingerprint, model, data)


def evaluation() -> explore.ExplorerView:
    """The explorer's view of the active model on the active data with the chosen normal labels."""
    model, data = active_model(), active_data()
    errors = scores()
    normals = tuple(st.session_state.get(NORMALS) or ())
    return _evaluation(model.id, data.fingerprint, normals, data.names_key, model, data, errors)


def require_model() -> session.ActiveModel | None:
    """The active model if it can score the active data; otherwise explain why not and return None."""
    model = active_model()
    if model is None:
        st.info("No model is loaded. Load or train one on the **Model** page.", icon=":material/info:")
        st.page_link("pages/model.py", label="Go to the Model page", icon=":material/model_training:")
        return None
    try:
        model.ckpt.check_fits(active_data().data.length)
    except CheckpointError as exc:
        st.error(plain(exc), icon=":material/error:")
        st.page_link("pages/model.py", label="Load or train a matching model", icon=":material/model_training:")
        return None
    return model


def normal_names(data: session.ActiveData) -> str:
    """Normal labels as readable text."""
    normals = st.session_state.get(NORMALS) or []
    return ", ".join(f"{data.class_name(k)} ({k})" for k in normals) or "none chosen"


def sidebar() -> None:
    """Compact summary of what every page works with."""
    data, model = active_data(), active_model()
    with st.sidebar:
        st.markdown("**Data**")
        labels = "unlabelled" if not data.data.has_labels else f"{len(data.labels)} labels"
        st.caption(f"{plain(data.name)}  \n{data.data.n_beats:,} beats of {data.data.length} samples, {labels}  \n"
                   f"normal: {plain(normal_names(data)) if data.data.has_labels else '—'}")
        st.markdown("**Model**")
        if model is None:
            st.caption("none loaded")
        else:
            ckpt = model.ckpt
            st.caption(f"{plain(model.name)}  \n{model.source} · {plain(ckpt.description)} · {ckpt.seq_len} samples · "
                       f"{plain(ckpt.split.mode)} split")
        st.markdown("**Threshold**")
        # the explorer's fragment rewrites this slot on every slider step, without a full rerun
        st.session_state[THRESHOLD_SLOT] = st.empty()
        show_threshold()
        job = st.session_state.get(JOB)
        if job is not None and not job.state().finished:
            training_status(job)
        st.caption("Your work is kept under this page's address: a reload, or the link in another tab, finds it.",
                   help="The `ws` value in the address names your workspace; anyone with the link sees it.")


def show_threshold() -> None:
    """Write the current threshold into the sidebar slot."""
    slot = st.session_state.get(THRESHOLD_SLOT)
    if slot is not None:
        t = threshold()
        slot.caption("—" if t is None else f"{t:.4g}")


@st.fragment(run_every=2.0)
@shows_errors
def training_status(job) -> None:
    """A small live line about background training, visible from every page."""
    state = job.state()
    if state.finished:
        st.rerun(scope="app")  # a full run adopts the model (see adopt_finished_training) and redraws everything
    st.caption(f"Training: epoch {state.epoch} (at most {state.epochs}), at most {format_seconds(state.eta_s)} left")


def adopt_finished_training() -> None:
    """Once a background job has finished, activate its model (once), whichever page is open."""
    job = st.session_state.get(JOB)
    if job is None or st.session_state.get("job_adopted") or job.state().status != "done":
        return
    st.session_state["job_adopted"] = True
    ws = st.session_state.get(WORKSPACE)
    if ws is not None and not ws.adopt_job():
        return  # another tab of this workspace adopted it first; the next run rereads the workspace
    st.session_state[WS_SEEN] = ws.revision if ws is not None else None
    model = job.result
    if model is None:
        return
    try:
        set_model(model)
        notify(f"Model '{model.name}' trained, saved as {model.path.name if model.path else model.name} "
               "and activated.")
    except CheckpointError as exc:
        notify(f"Model '{model.name}' was saved but not activated: {exc}")


def checkpoint_choices() -> list[Path]:
    """Checkpoint files offered on the Model page."""
    from ecgviz.checkpoint.store import list_checkpoints

    seen, out = set(), []
    default = config.default_checkpoint_path()
    for path in ([default] if default.is_file() else []) + list_checkpoints(config.checkpoint_dir()):
        if path.resolve() not in seen:
            seen.add(path.resolve())
            out.append(path)
    return out


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
        return _quality(model.id, data.fingerprint, tuple(st.session_state.get(NORMALS) or ()), model, data, ev)
    return quality.from_metrics(model.ckpt.metrics)


def warn_if_degenerate(q) -> None:
    """A visible warning, with what to try, when a model looks collapsed or at chance level."""
    if q is not None and q.degenerate:
        st.warning(q.message(), icon=":material/warning:")


def data_provenance(model: session.ActiveModel) -> None:
    """When the model was trained on other data: name that data and offer to load it where it is at hand."""
    ckpt, data = model.ckpt, active_data()
    if ckpt.data_fingerprint == data.fingerprint:
        return
    offers = workspace.data_offers(st.session_state.get(WORKSPACE), ckpt.data_fingerprint)
    files = (", ".join(ckpt.data_sources) if ckpt.data_sources
             else offers[0][0] if offers else "file names not recorded in this checkpoint")
    st.info(f"'{plain(model.name)}' was trained on other data than {plain(data.name)}: {plain(files)}; beats of "
            f"{ckpt.seq_len} samples, fingerprint {plain(ckpt.data_fingerprint[:12])}. Its held-out split only applies "
            "to that data.",
            icon=":material/info:")
    for i, (label, load) in enumerate(offers):
        if st.button(f"Load {plain(label)}", key=f"provenance_load_{i}", icon=":material/dataset:"):
            new, raw = load()
            set_data(new, files=raw)
            set_threshold(float(model.ckpt.threshold))
            notify(f"Loaded {new.name}, the data '{model.name}' was trained on.")
            st.rerun()
