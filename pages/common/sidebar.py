"""The sidebar every page shares: a summary of the data, model and threshold, and training under way."""

from __future__ import annotations

import streamlit as st

from ecgviz.dashboard.text import plain
from pages.common import keys, state, tab_watch, training_progress


def sidebar() -> None:
    """Compact summary of what every page works with."""
    data, model = state.active_data(), state.active_model()
    with st.sidebar:
        st.markdown("**Data**")
        labels = "unlabelled" if not data.data.has_labels else f"{len(data.labels)} labels"
        st.caption(f"{plain(data.name)}  \n{data.data.n_beats:,} beats of {data.data.length} samples, {labels}  \n"
                   f"normal: {plain(state.normal_names(data)) if data.data.has_labels else '—'}")
        st.markdown("**Model**")
        if model is None:
            st.caption("none loaded")
        else:
            ckpt = model.card
            st.caption(f"{plain(model.name)}  \n{model.source} · {plain(ckpt.description)} · {ckpt.seq_len} samples · "
                       f"{plain(ckpt.split.mode)} split")
        st.markdown("**Threshold**")
        # the explorer's fragment rewrites this slot on every slider step, without a full rerun
        st.session_state[keys.THRESHOLD_SLOT] = st.empty()
        show_threshold()
        job = state.running_job()
        if job is not None:
            training_progress.training_status(job)
        st.caption("Your work is kept under this page's address: a reload, or the link in another tab, finds it.",
                   help="The `ws` value in the address names your workspace; anyone with the link sees it. A tab "
                        "you come back to catches up with what another tab changed.")
        tab_watch.watch()


def show_threshold() -> None:
    """Write the current threshold into the sidebar slot."""
    slot = st.session_state.get(keys.THRESHOLD_SLOT)
    if slot is not None:
        t = state.threshold()
        slot.caption("—" if t is None else f"{t:.4g}")
