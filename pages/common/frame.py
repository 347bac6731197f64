"""What app.py runs around every page: the session's set-up, a finished training's model, the sidebar, and the page
itself inside the error guard."""

from __future__ import annotations

from pages.common import guard, multipage, sidebar, startup, state


def run(page) -> None:
    """Set up this run's session, then draw the sidebar and `page` (the StreamlitPage st.navigation chose)."""
    startup.init()
    state.adopt_finished_training()
    # pages rerun the app whenever they change the data or model, so a summary drawn first is never stale
    sidebar.sidebar()
    with guard.errors_shown():
        multipage.run(page)
