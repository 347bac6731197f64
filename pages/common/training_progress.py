"""A running training job as the pages show it: the estimate of its end, a bar that only moves forward, and the
live line in the sidebar."""

from __future__ import annotations

import streamlit as st

from ecgviz.dashboard import jobs, progress
from pages.common.guard import shows_errors

_SHOWN = "_progress_shown"  # (job id, the largest fraction shown): a bar that never moves back


def estimate(job, s: jobs.JobState) -> tuple[progress.Estimate, float]:
    """(the estimate, the fraction to draw) for a job's state; the fraction never falls while the job runs."""
    stopping = job.stopping or progress.Stopping(cap=s.epochs, patience=max(s.epochs, 1))
    est = progress.estimate(list(s.history), stopping, finished=s.finished, since_last_s=s.since_epoch_s)
    held = st.session_state.get(_SHOWN)
    shown = progress.forward_only(held[1] if held and held[0] == id(job) else None, est)
    st.session_state[_SHOWN] = (id(job), shown)
    return est, shown


@st.fragment(run_every=2.0)
@shows_errors
def training_status(job) -> None:
    """A small live line about background training, visible from every page."""
    s = job.state()
    if s.finished:
        st.rerun(scope="app")  # a full run adopts the model (see state.adopt_finished_training) and redraws everything
    est, _ = estimate(job, s)
    st.caption(f"Training: {est.text()}")
