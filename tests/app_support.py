"""Driving the dashboard through Streamlit's AppTest: start it on data, check a run ended cleanly, read metrics."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from ecgviz.dashboard import session

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TIMEOUT = 120


def assert_clean(at: AppTest) -> AppTest:
    """The run raised nothing and showed no error box."""
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def start(tiny_app: dict, page: str | None = None) -> AppTest:
    """The app on the tiny data (put in place before the first run, as if the user had loaded it)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["active_data"] = session.make_data(tiny_app["data"], "tiny")
    at.run()
    if page:
        at.switch_page(page).run()
    return assert_clean(at)


def metric_values(at: AppTest) -> dict[str, str]:
    """Label -> value of every metric tile on the page."""
    return {m.label: m.value for m in at.metric}
