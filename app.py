"""ecgviz dashboard: `streamlit run app.py`.

The pages live in views/, not pages/: Streamlit treats a pages/ folder as its older multipage layout and would
then run a page without this script (no set-up, no sidebar) when a session starts on that page's URL.
"""

import streamlit as st

from views import _state as state

st.set_page_config(page_title="ecgviz: abnormal heartbeats", page_icon=":material/ecg_heart:", layout="wide")
# metric cards hold counts like "2,039 / 2,081": their numbers shrink with the window instead of being cut off
st.html("<style>[data-testid=stMetricValue] { font-size: clamp(1.25rem, 2vw, 2.25rem); }</style>")

state.init()
state.adopt_finished_training()

page = st.navigation(
    [
        st.Page("views/data.py", title="Data", icon=":material/dataset:"),
        st.Page("views/model.py", title="Model", icon=":material/model_training:"),
        st.Page("views/explorer.py", title="Threshold explorer", icon=":material/query_stats:", default=True),
        st.Page("views/export.py", title="Export", icon=":material/download:"),
    ]
)
# pages rerun the app whenever they change the data or model, so a summary drawn first is never stale
state.sidebar()
with state.errors_shown():
    page.run()
