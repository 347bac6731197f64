"""ecgviz dashboard: `streamlit run app.py`.

st.navigation below names every page in pages/, so Streamlit runs this script first on every page URL (set-up and
sidebar included) and knows no page it does not name; tests/test_browser.py and tests/test_app.py hold it to that.
"""

from pathlib import Path

import streamlit as st

# a file, not a ":material/...:" icon: Streamlit fetches those favicons from an outside font host, and the
# dashboard must make no request beyond its own server (tests/test_hostile_text.py)
FAVICON = Path(__file__).resolve().parent / "pages" / "common" / "favicon.svg"
PAGES = [
    st.Page("pages/data.py", title="Data", icon=":material/dataset:"),
    st.Page("pages/model.py", title="Model", icon=":material/model_training:"),
    st.Page("pages/explorer.py", title="Threshold explorer", icon=":material/query_stats:", default=True),
    st.Page("pages/compare.py", title="Compare detectors", icon=":material/compare_arrows:"),
    st.Page("pages/export.py", title="Export", icon=":material/download:"),
]
st.set_page_config(page_title="ecgviz: abnormal heartbeats", page_icon=str(FAVICON), layout="wide")
# metric cards hold counts like "2,039 / 2,081": their numbers shrink with the window instead of being cut off
st.html("<style>[data-testid=stMetricValue] { font-size: clamp(1.25rem, 2vw, 2.25rem); }</style>")

# The menu is the app's own, drawn before anything heavy is imported or loaded. Streamlit's would list every file
# of pages/ on a fresh server's first run until this script has run (.streamlit/config.toml hides it).
page = st.navigation(PAGES, position="hidden")
with st.sidebar.container(key="menu"):
    for entry in PAGES:
        st.page_link(entry)
    st.divider()
from pages.common import frame  # noqa: E402 (after the menu: this import brings in torch and the rest)

frame.run(page)
