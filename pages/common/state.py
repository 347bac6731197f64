"""Streamlit glue shared by the pages: session state, caches, error display, the sidebar summary."""

from __future__ import annotations

import contextlib
import functools
import runpy
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import streamlit as st

from ecgviz.checkpoint import CheckpointError
from ecgviz.cli import USER_ERRORS
from ecgviz.dashboard import explore, livechart, session
from ecgviz.dashboard.jobs import format_seconds

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

_APP = Path(__file__).resolve().parents[2] / "app.py"

session.limit_torch_threads()  # once per server process: this module is imported once


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
        st.error(str(exc) or type(exc).__name__, icon=":material/error:")
    except Exception as exc:  # the last line of defence: a message, never a stack trace
        st.error(f"Something went wrong ({type(exc).__name__}): {exc}", icon=":material/error:")


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
    path = session.default_checkpoint_path()
    if not path.is_file():
        return None
    return _load_file_model(str(path.resolve()), path.stat().st_mtime_ns)


def init() -> None:
    """First run of a session: built-in data, default model, its threshold."""
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
                st.error(str(exc))
                model = None
        st.session_state[MODEL] = model
        if model is not None:
            st.session_state[PRIMARY] = model
            st.session_state[THRESHOLD] = float(model.ckpt.threshold)
    if NORMALS not in st.session_state:
        st.session_state[NORMALS] = session.default_normal_labels(st.session_state[DATA], st.session_state[MODEL])


def active_data() -> session.ActiveData:
    """The data set of this session."""
    return st.session_state[DATA]


def active_model() -> session.ActiveModel | None:
    """The model of this session, if any."""
    return st.session_state.get(MODEL)


def set_data(data: session.ActiveData) -> None:
    """Make `data` active and pick sensible normal labels for it; the same beats again change nothing."""
    current = st.session_state.get(DATA)
    if current is not None and (current.fingerprint, current.name) == (data.fingerprint, data.name):
        # e.g. removing a broken file from a selection re-sends the good one: keep the chosen normal labels
        return
    st.session_state[DATA] = data
    st.session_state[NORMALS] = session.default_normal_labels(data, active_model())
    st.session_state.pop("normals_widget", None)


def set_class_names(data: session.ActiveData) -> None:
    """Adopt the same beats under other class display names (normal labels and models stay)."""
    st.session_state[DATA] = data


def set_model(model: session.ActiveModel) -> None:
    """Make `model` active after checking it fits the data (CheckpointError otherwise); adopt its threshold."""
    model.ckpt.check_fits(active_data().data.length)
    st.session_state[MODEL] = model
    if model.source != "baseline":
        st.session_state[PRIMARY] = model
    set_threshold(float(model.ckpt.threshold))


def set_threshold(value: float) -> None:
    """The one threshold every page uses; the explorer's slider and number box resync from it."""
    st.session_state[THRESHOLD] = float(value)
    st.session_state[THRESHOLD_REVISION] = threshold_revision() + 1
    st.session_state.pop("thr_number", None)


def threshold_revision() -> int:
    """How many times the threshold was set from outside the chart: the chart adopts the value when it changes."""
    return int(st.session_state.get(THRESHOLD_REVISION, 0))


def threshold() -> float | None:
    """The chosen threshold, if a model set one."""
    return st.session_state.get(THRESHOLD)


def notify(message: str) -> None:
    """Show `message` as a toast-like success box on the next run."""
    st.session_state[NOTICE] = message


def show_notice() -> None:
    """Show (once) a message left by notify()."""
    message = st.session_state.pop(NOTICE, None)
    if message:
        st.success(message, icon=":material/check_circle:")


# The errors, the Evaluation and the chart base are cache_resource, not cache_data: cache_data unpickles a fresh copy
# on every call, which at a million beats costs more than a slider step may take. They are keyed by content ids, so
# sessions that share them hold the same values, and nothing writes to them (the errors are made read-only).
@st.cache_resource(max_entries=8, show_spinner="Scoring every beat…")
def _scores(model_id: str, data_fp: str, _model: session.ActiveModel, _data: session.ActiveData) -> np.ndarray:
    # keyed by content ids only: the model and data objects themselves are not hashed. Errors only: a million
    # beats' reconstructions would be 560 MB; the beat viewer asks for the one it shows (reconstruction()).
    errors = session.score(_model, _data, reconstructions=False)[0]
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
def _chart_base(model_id: str, data_fp: str, normals: tuple[str, ...], lo: float, hi: float, step: float,
                _ev: explore.Evaluation) -> livechart.ChartBase:
    return livechart.chart_base(_ev, explore.SliderRange(lo, hi, step))


def chart_base(ev: explore.Evaluation, rng: explore.SliderRange) -> livechart.ChartBase:
    """The live chart's data for the active model, data and normal labels, built once per slider range."""
    model, data = active_model(), active_data()
    normals = tuple(st.session_state.get(NORMALS) or ())
    return _chart_base(model.id, data.fingerprint, normals, rng.lo, rng.hi, rng.step, ev)


@st.cache_resource(max_entries=16, show_spinner=False)
def _evaluation(model_id: str, data_fp: str, normals: tuple[str, ...], names: str, _model: session.ActiveModel,
                _data: session.ActiveData, _errors: np.ndarray) -> explore.Evaluation:
    return session.evaluation(_model, _data, normals, _errors)


def scores() -> np.ndarray:
    """Errors of the active data's beats under the active model, computed once per pair."""
    model, data = active_model(), active_data()
    return _scores(model.id, data.fingerprint, model, data)


def evaluation() -> explore.Evaluation:
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
        st.error(str(exc), icon=":material/error:")
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
        st.caption(f"{data.name}  \n{data.data.n_beats:,} beats of {data.data.length} samples, {labels}  \n"
                   f"normal: {normal_names(data) if data.data.has_labels else '—'}")
        st.markdown("**Model**")
        if model is None:
            st.caption("none loaded")
        else:
            ckpt = model.ckpt
            st.caption(f"{model.name}  \n{model.source} · {ckpt.description} · {ckpt.seq_len} samples · "
                       f"{ckpt.split.mode} split")
        st.markdown("**Threshold**")
        # the explorer's fragment rewrites this slot on every slider step, without a full rerun
        st.session_state[THRESHOLD_SLOT] = st.empty()
        show_threshold()
        job = st.session_state.get(JOB)
        if job is not None and not job.state().finished:
            training_status(job)


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
    st.caption(f"Training: epoch {state.epoch}/{state.epochs}, about {format_seconds(state.eta_s)} left")


def adopt_finished_training() -> None:
    """Once a background job has finished, activate its model (once), whichever page is open."""
    job = st.session_state.get(JOB)
    if job is None or st.session_state.get("job_adopted") or job.state().status != "done":
        return
    st.session_state["job_adopted"] = True
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
    from ecgviz.checkpoint import list_checkpoints

    seen, out = set(), []
    default = session.default_checkpoint_path()
    for path in ([default] if default.is_file() else []) + list_checkpoints(session.checkpoint_dir()):
        if path.resolve() not in seen:
            seen.add(path.resolve())
            out.append(path)
    return out
