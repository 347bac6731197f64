"""The Data page's recording parts: load a recording (server folder or upload) and show it as a strip."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ecgviz.dashboard import recording_view, session
from ecgviz.dashboard.text import plain
from ecgviz.io.data import DataError
from ecgviz.io.recording import read_recording, read_uploads
from ecgviz.signal.beats import DEFAULT_LENGTH, cut_beats
from pages.common import state

PLOT_CONFIG = {"displaylogo": False, "scrollZoom": True}


def _length() -> int:
    model = state.active_model()
    return int(model.ckpt.seq_len) if model is not None else DEFAULT_LENGTH


def _adopt(load, name: str) -> None:
    """Cut and make active; on a bad recording keep the previous data and say why."""
    st.session_state.pop("recording_error", None)
    try:
        beats = cut_beats(load(), st.session_state.get("rec_length", _length()))
    except DataError as exc:
        st.session_state["recording_error"] = str(exc)
        return
    state.set_data(session.data_from_recording(beats, name))
    state.notify(f"Loaded {name}: {beats.summary()}.")
    st.rerun()


def load_panel() -> None:
    """Widgets to load a recording; the server folder serves 24-hour files that exceed the upload limit."""
    with st.container(border=True):
        st.markdown("**Or load a recording** (WFDB, EDF or CSV): beats are cut around each R-peak")
        folder, upload = st.tabs(["From the server's data folder", "Upload"])
        with folder:
            paths = recording_view.server_recordings()
            base = recording_view.recordings_dir()
            choice = st.selectbox("Recording", paths, format_func=lambda p: str(p.relative_to(base)),
                                  key="rec_server_choice", index=None, placeholder="Choose a recording")
            lead = st.text_input("Lead (empty: the first ECG lead)", key="rec_server_lead").strip() or None
            if st.button("Cut beats", key="rec_server_go", disabled=choice is None, icon=":material/content_cut:"):
                _adopt(lambda: read_recording(choice, lead=lead), choice.stem)
        with upload:
            files = st.file_uploader("A record's .hea + .dat (+ .atr) together, one EDF, or one CSV/TSV",
                                     type=["hea", "dat", "atr", "edf", "bdf", "csv", "tsv", "txt"],
                                     accept_multiple_files=True, key="rec_upload")
            cols = st.columns(2)
            fs = cols[0].number_input("Sampling rate, Hz (CSV/TSV)", min_value=0.0, value=360.0, key="rec_fs")
            column = cols[1].text_input("Column or lead (empty: the first)", key="rec_column").strip() or None
            if st.button("Cut beats", key="rec_upload_go", disabled=not files, icon=":material/content_cut:"):
                name = " + ".join(f.name for f in files)
                _adopt(lambda: read_uploads([(f.name, f.getvalue()) for f in files], lead=column, fs=fs,
                                            column=column), name)
        st.number_input("Samples per beat", min_value=8, max_value=2000, value=_length(), key="rec_length",
                        help="The active model's beat length, so it can score the beats.")
        if st.session_state.get("recording_error"):
            st.error(plain(st.session_state["recording_error"]), icon=":material/error:")
            st.caption(f"Still using: {plain(state.active_data().name)}")


def show_recording(active: session.ActiveData) -> None:
    """The strip (zoomable: drag to zoom, double-click to reset) and what was not cut, with why."""
    view = active.recording
    if view is None:
        return
    st.subheader("The recording")
    st.caption(f"{plain(view.record)}, lead {plain(view.lead)}, {view.fs:g} Hz, {view.duration_s / 60:.1f} min; "
               f"R-peaks from {plain(view.peak_source)}. Band-passed 0.5-40 Hz (zero phase), baseline removed.")
    cols = st.columns([3, 1])
    span = cols[1].selectbox("Window", [10, 30, 60, 300], index=1, format_func=lambda s: f"{s} s", key="rec_span")
    start = cols[0].slider("Start (s)", 0.0, max(0.0, view.duration_s - span), 0.0, step=1.0, key="rec_start")
    colors = active.class_view(st.session_state.get(state.NORMALS) or []).colors
    st.plotly_chart(recording_view.strip_figure(view, active.data.labels, start, span, colors=colors),
                    config=PLOT_CONFIG)
    rows = view.dropped_rows()
    if rows:
        st.markdown(f"**Not cut: {sum(r['beats'] for r in rows):,} of {len(view.peaks):,} beats**")
        st.dataframe(pd.DataFrame(rows), hide_index=True)
    else:
        st.caption(f"Every one of the {len(view.peaks):,} beats was cut.")
