"""The smallest Streamlit app with the explorer's interaction, one slider and one number: the framework's floor."""

import streamlit as st

value = st.slider("Threshold", min_value=0.0, max_value=100.0, value=50.0, step=0.1, key="thr_slider")
st.metric("Value", f"{value:.1f}")
