"""ecgviz dashboard: `streamlit run app.py`."""

import streamlit as st

from pages import _state as state

st.set_page_config(page_title="ecgviz: abnormal heartbeats", page_icon=":material/ecg_heart:", layout="wide")

state.init()

page = st.navigation(
    [
        st.Page("pages/data.py", title="Data", icon=":material/dataset:"),
        st.Page("pages/model.py", title="Model", icon=":material/model_training:"),
        st.Page("pages/explorer.py", title="Threshold explorer", icon=":material/query_stats:", default=True),
        st.Page("pages/export.py", title="Export", icon=":material/download:"),
    ]
)
# pages rerun the app whenever they change the data or model, so a summary drawn first is never stale
state.sidebar()
with state.errors_shown():
    page.run()
