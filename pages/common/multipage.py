"""Every page runs inside app.py's frame, although the page files live in a folder called pages/.

Streamlit (1.67) takes a folder named pages/ beside the entry script as its older multipage mode until some
session has called st.navigation: the first visitor of a fresh server who opens /data (and every AppTest run,
which resets the mode) gets pages/data.py run on its own, with no set-up, no sidebar and every file of pages/
listed. Its own guidance for st.navigation is a folder by another name; this project keeps pages/, so no
supported switch exists (tests/test_multipage.py shows the rule and fails once Streamlit drops it).

The way round uses public parts only: app.py runs the page through run(), which marks the run as framed; a page
that finds itself unframed runs app.py in its place, in the same run (a form submit or click is not lost), and
stops. app.py's st.navigation ends the older mode for good and runs the page again, inside the frame.
"""

from __future__ import annotations

import contextvars
import runpy
from pathlib import Path

import streamlit as st

APP = Path(__file__).resolve().parents[2] / "app.py"
# set while app.py runs a page; a context variable is per thread, and Streamlit runs each session's script in one
_FRAMED: contextvars.ContextVar[bool] = contextvars.ContextVar("ecgviz_framed", default=False)


def run(page) -> None:
    """Run the StreamlitPage st.navigation returned, marked as framed by app.py."""
    token = _FRAMED.set(True)
    try:
        page.run()
    finally:
        _FRAMED.reset(token)


def framed(app: Path = APP) -> None:
    """First call of every page: when `app` (app.py) did not run first, run it now (it runs this page) and stop."""
    if _FRAMED.get():
        return
    runpy.run_path(str(app), run_name="__main__")
    st.stop()
