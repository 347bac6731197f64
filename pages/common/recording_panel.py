"""The Data page's recording parts: load a recording (server folder or upload), pick its lead, and review it as a
strip: page along it, step from flagged beat to flagged beat, or pick one from the table of flagged beats."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from ecgviz.dashboard import recording_view, recordings, session
from ecgviz.dashboard.text import plain
from ecgviz.io.data import DataError
from ecgviz.signal.beats import DEFAULT_LENGTH
from ecgviz.signal.recording_files import RecordingSource
from pages.common import analysis_panel, caches, state

PLOT_CONFIG = {"displaylogo": False, "scrollZoom": True}
SPANS = (10, 30, 60, 300)
ORDERS = ("by time", "highest score first")
FOCUS = "rec_focus"  # (data fingerprint, beat index) of the beat the reviewer is looking at


def _length() -> int:
    model = state.active_model()
    return int(model.card.seq_len) if model is not None else DEFAULT_LENGTH


def _adopt(source: RecordingSource, lead: str | None) -> None:
    """Cut and make active; on a bad recording keep the previous data and say why."""
    st.session_state.pop("recording_error", None)
    try:
        active = recordings.recording_data(source, lead, st.session_state.get("rec_length", _length()))
    except DataError as exc:
        st.session_state["recording_error"] = str(exc)
        return
    state.set_data(active)
    view = active.recording
    state.notify(f"Loaded {source.name}, lead {view.lead}: {active.data.n_beats:,} beats cut from "
                 f"{len(view.peaks):,} R-peaks ({view.peak_source}).")
    st.rerun()


def load_panel() -> None:
    """Widgets to load a recording; the server folder serves 24-hour files that exceed the upload limit."""
    with st.container(border=True):
        st.markdown("**Or load a recording** (WFDB, EDF or CSV): beats are cut around each R-peak")
        # keyed, so a rerun (choosing files for a second recording) keeps the tab the user is on
        folder, upload = st.tabs(["From the server's data folder", "Upload"], key="rec_source_tab")
        with folder:
            paths = recording_view.server_recordings()
            base = recording_view.recordings_dir()
            choice = st.selectbox("Recording", paths, format_func=lambda p: str(p.relative_to(base)),
                                  key="rec_server_choice", index=None, placeholder="Choose a recording")
            lead = st.text_input("Lead (empty: the first ECG lead)", key="rec_server_lead").strip() or None
            if st.button("Cut beats", key="rec_server_go", disabled=choice is None, icon=":material/content_cut:"):
                _adopt(RecordingSource(choice.stem, path=choice), lead)
        with upload:
            # any extension: a WFDB header names its signal files .dat, .mat, .xyz, ...; the reader checks them
            files = st.file_uploader("A record's .hea with the signal files it names (.dat, .mat, .xyz, ...) and "
                                     "its .atr; or one EDF; or one CSV/TSV", accept_multiple_files=True,
                                     key="rec_upload")
            cols = st.columns(2)
            fs = cols[0].number_input("Sampling rate, Hz (CSV/TSV)", min_value=0.0, value=360.0, key="rec_fs")
            column = cols[1].text_input("Column or lead (empty: the first)", key="rec_column").strip() or None
            if st.button("Cut beats", key="rec_upload_go", disabled=not files, icon=":material/content_cut:"):
                source = RecordingSource(" + ".join(f.name for f in files),
                                         files=tuple((f.name, f.getvalue()) for f in files), fs=fs)
                _adopt(source, column)
        st.number_input("Samples per beat", min_value=8, max_value=2000, value=_length(), key="rec_length",
                        help="The active model's beat length, so it can score the beats.")
        if st.session_state.get("recording_error"):
            st.error(plain(st.session_state["recording_error"]), icon=":material/error:")
            st.caption(f"Still using: {plain(state.active_data().name)}")


def lead_picker(active: session.ActiveData) -> None:
    """For a record of several leads: cut another lead from the files already loaded."""
    view = active.recording
    if view.source is None or len(view.leads) < 2:
        return
    chosen = st.selectbox("Lead", view.leads, index=view.leads.index(view.lead), key=f"rec_lead_{active.fingerprint}",
                          help="cut the beats from another lead of this record (no new upload)")
    if chosen != view.lead:
        try:
            with st.spinner(f"Cutting lead {plain(chosen)}…"):
                new = recordings.recording_data(view.source, chosen, active.data.length)
        except DataError as exc:
            st.error(plain(exc), icon=":material/error:")
            return
        state.set_data(new)
        state.notify(f"Now lead {chosen} of {view.record}: {new.data.n_beats:,} beats.")
        st.rerun()


def recording_actions(active: session.ActiveData) -> None:
    """For a recording: the lead picker and the analysis (its button, or its summary once done)."""
    if active.recording is None:
        return
    lead, act = st.columns([1, 3], vertical_alignment="bottom")
    with lead:
        lead_picker(active)
    with act:
        analysis_panel.button(active)
    analysis_panel.summary(active)


def _flags(active: session.ActiveData):
    """(scores, threshold, reasons, symbols) of the active model on these beats; None when it cannot score them."""
    model, t = state.active_model(), state.threshold()
    if model is None or t is None or model.card.seq_len != active.data.length:
        return None
    reasons = getattr(model.ckpt.detector, "reasons", None)
    symbols = active.data.origin.symbols() if active.data.origin is not None else None
    scores = caches.scores()
    return scores, float(t), (reasons(active.data.X, t) if reasons else None), symbols


def _goto(view: recording_view.RecordingView, fp: str, beat: int | None) -> None:
    """Look at `beat`: it becomes the focus and the window moves to hold it in the middle."""
    if beat is None:
        return
    st.session_state[FOCUS] = (fp, int(beat))
    st.session_state["rec_start"] = recording_view.start_around(view, int(beat), st.session_state["rec_span"])


def _page(view: recording_view.RecordingView, direction: int) -> None:
    st.session_state["rec_start"] = recording_view.step_page(view, st.session_state["rec_start"],
                                                             st.session_state["rec_span"], direction)


def _picked() -> None:
    """A row of the flagged-beats table clicked: that beat becomes the focus (rows count in the table as sent)."""
    rows = st.session_state["rec_flag_table"].selection.rows
    active = state.active_data()
    beats = st.session_state.get("rec_flag_beats")
    if rows and beats is not None and beats[0] == active.fingerprint:
        _goto(active.recording, active.fingerprint, int(beats[1][rows[0]]) - 1)


def show_recording(active: session.ActiveData) -> None:
    """The strip (zoomable: drag to zoom, double-click to reset), the flagged beats, and what was not cut, with why."""
    if active.recording is not None:
        with st.container(key="recording_review"):
            _show(active)


def _show(active: session.ActiveData) -> None:
    view = active.recording
    st.subheader("The recording")
    st.caption(f"{plain(view.record)}, lead {plain(view.lead)}, {view.fs:g} Hz, "
               f"{recording_view.clock(view.duration_s)} (m:ss.s); R-peaks from {plain(view.peak_source)}. "
               "Band-passed 0.5-40 Hz (zero phase), baseline removed.")
    model = state.active_model()
    # an autoencoder scores a long recording for a while; the other detectors (and an analysis) take a moment
    cheap = model is not None and not model.ckpt.detector.slow_to_score
    flags = _flags(active) if st.toggle("Mark the active model's flagged beats", value=cheap,
                                        key=f"rec_show_flags_{model.id if model else ''}",
                                        help="scores every beat with the active model, at the current "
                                             "threshold") else None
    fp = active.fingerprint
    focus = st.session_state.get(FOCUS)
    focus = focus[1] if focus and focus[0] == fp and focus[1] < active.data.n_beats else None
    flagged = table = None
    if flags is not None:
        scores, t, reasons, symbols = flags
        table = recording_view.flagged_table(view, scores, t, reasons=reasons, symbols=symbols)
        present = sorted(set(table["reason"]))
        pick, order = st.columns([3, 1])
        if len(present) > 1:
            keep = pick.multiselect("Reasons shown", present, default=present, key=f"rec_reasons_{fp}")
            table = table[table["reason"].isin(keep)]
        # ordered here as well: a sort by the table's own headers may reset when a pick redraws the table
        if order.selectbox("Table order", ORDERS, key="rec_table_order") != ORDERS[0]:
            table = table.sort_values("score", ascending=False, kind="stable")
        flagged = np.zeros(active.data.n_beats, dtype=bool)
        flagged[table["beat"].to_numpy() - 1] = True

    st.session_state.setdefault("rec_span", 30)
    st.session_state.setdefault("rec_start", 0.0)
    span = st.session_state["rec_span"]
    last = recording_view.last_start(view, span)
    st.session_state["rec_start"] = min(float(st.session_state["rec_start"]), last)
    page, pages = recording_view.page_of(view, st.session_state["rec_start"], span)
    nav = st.columns([1.2, 1.2, 2.2, 1.6, 1.6], vertical_alignment="center")
    nav[0].button("Earlier", key="rec_page_prev", icon=":material/chevron_left:", on_click=_page, args=(view, -1),
                  help="one window back", width="stretch")
    nav[1].button("Later", key="rec_page_next", icon=":material/chevron_right:", on_click=_page, args=(view, 1),
                  help="one window on", width="stretch")
    nav[2].caption(f"Page {page:,} of {pages:,}")
    if flagged is not None:
        nav[3].button("Previous flag", key="rec_flag_prev", icon=":material/skip_previous:", disabled=not flagged.any(),
                      on_click=lambda: _goto(view, fp, recording_view.step_flag(flagged, focus, -1)), width="stretch")
        nav[4].button("Next flag", key="rec_flag_next", icon=":material/skip_next:", disabled=not flagged.any(),
                      on_click=lambda: _goto(view, fp, recording_view.step_flag(flagged, focus, 1)), width="stretch")
    where, size = st.columns([5, 1], vertical_alignment="bottom")
    where.slider("Start (s)", 0.0, max(last, 1.0), step=1.0, key="rec_start", disabled=last == 0)
    size.selectbox("Window", SPANS, format_func=lambda s: f"{s} s", key="rec_span")
    colors = active.class_view(st.session_state.get(state.NORMALS) or []).colors
    st.plotly_chart(recording_view.strip_figure(view, active.data.labels, st.session_state["rec_start"], span,
                                                flagged=flagged, colors=colors, focus=focus), config=PLOT_CONFIG)
    # always drawn, so the table below keeps its place (and its sorting) when a beat is picked
    st.caption(_focus_text(view, active, focus, table) if focus is not None else
               "Step with Previous flag / Next flag, or pick a row of the table, to centre a beat on the strip.")
    if table is not None:
        _flag_table(view, fp, table)
    rows = view.dropped_rows()
    if rows:
        st.markdown(f"**Not cut: {sum(r['beats'] for r in rows):,} of {len(view.peaks):,} beats**")
        st.dataframe(pd.DataFrame(rows), hide_index=True)
    else:
        st.caption(f"Every one of the {len(view.peaks):,} beats was cut.")


def _focus_text(view, active: session.ActiveData, beat: int, table: pd.DataFrame | None) -> str:
    at = recording_view.beat_times(view)[beat]
    text = f"Beat {beat + 1:,} at {recording_view.clock(at)} ({at:.2f} s), shaded"
    row = table[table["beat"] == beat + 1] if table is not None else None
    if row is not None and len(row):
        text += f": flagged for {row['reason'].iloc[0]}, score {row['score'].iloc[0]:.3g}"
    if active.data.has_labels:
        text += f"; class {active.data.labels[beat]}"
    return plain(text + ".")


def _flag_table(view, fp: str, table: pd.DataFrame) -> None:
    st.markdown(f"**Flagged beats: {len(table):,}** (click a column to sort, a row to see the beat in the strip)")
    if not len(table):
        return
    st.session_state["rec_flag_beats"] = (fp, table["beat"].to_numpy())
    st.dataframe(table, hide_index=True, height=240, key="rec_flag_table", selection_mode="single-row",
                 on_select=_picked,
                 column_config={"time_s": st.column_config.NumberColumn("seconds", format="%.2f"),
                                "score": st.column_config.NumberColumn(format="%.3f")})
