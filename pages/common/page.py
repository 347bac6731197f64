"""The start every page shares: run inside app.py's frame, the title, a notice left by the last action, and (for
pages that draw a model's results) the active model, or a word on why there is none and a stop."""

from __future__ import annotations

import sys
import threading
import time

import streamlit as st

from ecgviz.dashboard import session
from ecgviz.dashboard.text import plain
from ecgviz.errors import CheckpointError
from pages.common import multipage, state

YIELD_S = 0.25  # a browser's time to load the chart's and the first widgets' code and draw them
_PAUSED = threading.Event()  # set by the one pause a server process makes


def start(title: str, *, needs_model: bool = False) -> session.ActiveModel | None:
    """First call of every page. With `needs_model`, returns the active model if it can score the active data;
    otherwise says why not (with a link to the Model page) and stops the page."""
    multipage.framed()
    st.title(title)
    state.show_notice()
    if not needs_model:
        return state.active_model()
    model = usable_model()
    if model is None:
        st.stop()
    return model


def usable_model() -> session.ActiveModel | None:
    """The active model if it can score the active data; otherwise explain why not and return None."""
    model = state.active_model()
    if model is None:
        st.info("No model is loaded. Load or train one on the **Model** page.", icon=":material/info:")
        st.page_link("pages/model.py", label="Go to the Model page", icon=":material/model_training:")
        return None
    try:
        model.card.check_fits(state.active_data().data.length)
    except CheckpointError as exc:
        st.error(plain(exc), icon=":material/error:")
        st.page_link("pages/model.py", label="Load or train a matching model", icon=":material/model_training:")
        return None
    return model


def table(frame, text_columns: tuple[str, ...] = ()) -> None:
    """A small static table (it wraps long names and fits the page) whose names show as typed: st.table reads
    Markdown in its headers and cells, so the row names, the headers and the `text_columns` are escaped (the
    other cells are the page's own numbers)."""
    shown = frame.copy()
    for column in text_columns:
        shown[column] = [plain(v) if isinstance(v, str) else v for v in shown[column]]
    shown.index = [plain(v) for v in shown.index]
    shown.index.name = None if frame.index.name is None else plain(frame.index.name)
    shown.columns = [plain(c) for c in shown.columns]
    st.table(shown)


def warn_if_degenerate(q) -> None:
    """A visible warning, with what to try, when a model looks collapsed or at chance level."""
    if q is not None and q.degenerate:
        st.warning(q.message(), icon=":material/warning:")


def send_what_is_drawn() -> None:
    """On a fresh server's first page, give the browser time to draw what was sent before the heavy imports start.

    Loading torch's and SciPy's compiled parts holds the interpreter, and with it the server's event loop, for up to
    half a second at a time, and the browser still fetches the code of the widgets it has just been sent from that
    loop. Measured on a two-core machine, the first chart then came 0.1-0.3 s later; the rest of the page comes
    YIELD_S later instead, once per server process.
    """
    if pauses_after_chart():
        _PAUSED.set()
        time.sleep(YIELD_S)


def pauses_after_chart() -> bool:
    """Whether send_what_is_drawn() will pause: this process has not paused yet and torch or SciPy is still to be
    imported (a score-only page may never import SciPy: its later runs, slider steps included, do not pause)."""
    return not _PAUSED.is_set() and ("scipy" not in sys.modules or "torch" not in sys.modules)
