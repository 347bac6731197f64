"""A tab catches up when it is looked at again: another tab of the same workspace (or a finished training) may have
changed the data, model or threshold meanwhile, and Streamlit reruns a page only when it is used.

The browser half is a few lines of JavaScript: when the tab becomes visible again, or the window gets the focus back
after a while, it asks for a rerun of the fragment below, which rereads the workspace only when its revision moved.
"""

from __future__ import annotations

import streamlit as st

from pages.common import sync

AWAY_MS = 500  # a focus after less time away (a click in the page's own dialogs) asks for nothing
_JS = """
export default function ({ setTriggerValue }) {
  // one set of listeners per page; each mount only replaces the function they call
  window.__ecgvizBack = () => setTriggerValue("back", Date.now());
  if (window.__ecgvizWatching) return;
  window.__ecgvizWatching = true;
  let away = null;
  const back = () => { if (window.__ecgvizBack) window.__ecgvizBack(); };
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") back(); else away = Date.now();
  });
  window.addEventListener("blur", () => { away = Date.now(); });
  window.addEventListener("focus", () => { if (away !== null && Date.now() - away > AWAY_MS) back(); away = null; });
}
""".replace("AWAY_MS", str(AWAY_MS))
# registered once per server process (this module is imported once)
_COMPONENT = st.components.v2.component("ecgviz_tab_watch", html="<span></span>", js=_JS)


@st.fragment
def watch() -> None:
    """Mount the watcher; when the tab is back and the workspace has changed since this session read it, rerun."""
    _COMPONENT(key="tab_watch", on_back_change=lambda: None)
    ws = sync.workspace_of_session()
    if ws is not None and sync.is_stale(ws):
        st.rerun(scope="app")  # app.py's set-up rereads the workspace and every element is drawn from it
