"""Data: the built-in ECG5000 beats or your own files, their classes, and which classes are normal."""

import numpy as np
import pandas as pd
import streamlit as st

from ecgviz.dashboard import config, figures, glossary, session
from ecgviz.dashboard.text import plain
from ecgviz.evaluation import duplicates
from ecgviz.io.data import DataError
from ecgviz.io.recording import AAMI_CLASSES
from pages.common import page, recording_panel, state

PLOT_CONFIG = {"displaylogo": False}
MAX_PREVIEWS = 12  # more classes than this is unusual; previews beyond it would only slow the page


def check_total_size(files) -> None:
    """Refuse a selection over server.maxUploadSize in all: that limit is per file, the memory cost is per session."""
    limit_mb = st.get_option("server.maxUploadSize")
    total = sum(f.size for f in files)
    # MB = 10^6 bytes, as the browser's uploader counts and shows them (Streamlit's server allows 2^20 per MB)
    if total > limit_mb * 1e6:
        what = files[0].name if len(files) == 1 else f"{len(files)} files"
        raise DataError(f"{what}: {total / 1e6:.2f} MB, but the dashboard loads at most {limit_mb} MB at once; "
                        "score larger data with `python -m ecgviz score`, which has no limit")


page.start("Data")

with st.container(border=True):
    st.markdown("**Load beats**")
    left, right = st.columns([1, 2])
    with left:
        is_builtin = state.active_data().name == session.BUILTIN_NAME
        if st.button("Use the built-in ECG5000", disabled=is_builtin, icon=":material/ecg_heart:"):
            state.set_data(session.builtin_data())
            state.notify("Loaded the built-in ECG5000 data.")
            st.rerun()
        st.caption("5,000 beats of 140 samples from one patient, five classes; class 1 is normal.")
        if served := config.folder_files():
            # big files (e.g. a beat pack of a million beats) are read from the server's disk, not uploaded
            chosen = st.selectbox("Or a file from the server's data folder", served, key="folder_file")
            if st.button("Load it", icon=":material/folder_open:", key="folder_load"):
                try:
                    with st.spinner(f"Loading {plain(chosen)}…"):
                        state.set_data(session.data_from_folder(chosen))
                    state.notify(f"Loaded {state.active_data().data.n_beats:,} beats from {chosen}.")
                    st.rerun()
                except DataError as exc:
                    st.error(plain(exc), icon=":material/error:")
                    st.caption(f"Still using: {plain(state.active_data().name)}")
    with right:
        files = st.file_uploader("Or upload ARFF, TSV or CSV files (e.g. a TRAIN and a TEST file) or beat packs",
                                 type=["arff", "tsv", "csv", "txt", "npz"], accept_multiple_files=True,
                                 key="data_upload")
        signature = tuple((f.name, f.size, f.file_id) for f in files or ())
        # parse a selection once: reruns (every widget change) must not reload it or reset the normal labels
        if signature and signature != st.session_state.get("data_upload_sig"):
            st.session_state["data_upload_sig"] = signature
            st.session_state.pop("data_upload_error", None)
            try:
                check_total_size(files)
                raw = [(f.name, f.getvalue()) for f in files]
                state.set_data(session.data_from_uploads(raw), files=raw)
                state.notify(f"Loaded {state.active_data().data.n_beats:,} beats from {state.active_data().name}.")
                st.rerun()
            except DataError as exc:
                st.session_state["data_upload_error"] = str(exc)
        if signature and st.session_state.get("data_upload_error"):
            st.error(plain(st.session_state["data_upload_error"]), icon=":material/error:")
            st.caption(f"Still using: {plain(state.active_data().name)}")

recording_panel.load_panel()

active = state.active_data()
data = active.data
for warning in data.warnings:
    st.warning(plain(warning), icon=":material/warning:")

st.subheader(plain(active.name))
cols = st.columns(3)
cols[0].metric("Beats", f"{data.n_beats:,}", border=True)
cols[1].metric("Samples per beat", f"{data.length:,}", border=True)
cols[2].metric("Classes", f"{len(active.labels)}" if data.has_labels else "unlabelled", border=True)
recording_panel.recording_actions(active)  # a recording: its lead, "Analyze this recording" and the analysis

copies = duplicates.find(data.X)
if copies.n_extra:
    st.warning(f"{copies.n_extra:,} beat(s) are exact copies of another beat ({len(copies.sets):,} group(s)), e.g. "
               + plain("; ".join(copies.describe(data.sources, data.rows))) + ". Copies are kept together when the "
               "beats are split, so a beat is never trained on and judged at once.", icon=":material/content_copy:")

model = state.active_model()
if model is not None and model.card.seq_len != data.length:
    st.warning(f"The active model '{plain(model.name)}' expects beats of {model.card.seq_len} samples; these have "
               f"{data.length}. Train or load a matching model on the **Model** page.", icon=":material/warning:")

if data.has_labels:
    st.session_state.setdefault("normals_widget", list(st.session_state.get(state.NORMALS) or []))
    st.multiselect(
        "Normal classes (every other class counts as abnormal)",
        active.labels,
        format_func=lambda k: f"{active.class_name(k)} ({k})",
        key="normals_widget",
        on_change=lambda: state.set_normals(list(st.session_state.normals_widget)),
    )
    normals = set(st.session_state.get(state.NORMALS) or [])
    counts = data.label_counts()
    table = pd.DataFrame({
        "label": list(counts),
        "name": [active.class_name(k) for k in counts],
        "beats": list(counts.values()),
        "share": [c / data.n_beats for c in counts.values()],
        "role": ["normal" if k in normals else "abnormal" for k in counts],
    })
    symbols = data.origin.symbols() if data.origin is not None else None
    if symbols is not None:
        # beats cut from an annotated recording: which of its annotations each AAMI class holds (an "A" beat is an S)
        made_of = glossary.aami_breakdown(data.labels, symbols)
        table["annotations"] = [made_of.get(k, "") for k in counts]
    edited = st.data_editor(
        table, hide_index=True, disabled=["label", "beats", "share", "role", "annotations"],
        key=f"class_names_{active.fingerprint}",
        column_config={"share": st.column_config.NumberColumn(format="percent"),
                       "name": st.column_config.TextColumn(help="display name, used on every page, in exports and "
                                                                "in models trained from here; edit to rename"),
                       "annotations": st.column_config.TextColumn(
                           "MIT-BIH annotations", width="large",
                           help="the recording's beat annotations in each class (AAMI EC57 classes)")},
    )
    if symbols is not None:
        st.caption("Classes follow AAMI EC57: " + plain("; ".join(
            f"{k} = {AAMI_CLASSES[k]} ({', '.join(s for s, _ in members)})"
            for k, members in glossary.aami_members().items())) + ".")
    renamed = active.with_names({str(k): str(v or "") for k, v in zip(edited["label"], edited["name"], strict=True)})
    if renamed.names != active.names:
        state.set_class_names(renamed)
        st.rerun()
else:
    st.info("These beats have no labels. You can score them with a loaded model and set a threshold (score-only "
            "mode); the metrics, recall and ROC/PR curves, confusion matrix and training need labelled beats.",
            icon=":material/info:")

recording_panel.show_recording(active)

st.subheader("What the classes look like")
st.caption("Mean beat with a ±1 standard deviation band, and a few individual beats in grey.")
groups = {k: np.flatnonzero(data.label_mask([k])) for k in active.labels[:MAX_PREVIEWS]} if data.has_labels else \
    {None: np.arange(data.n_beats)}
view = active.class_view(st.session_state.get(state.NORMALS) or [])
colors = view.colors
grid = st.columns(3)
for n, (label, idx) in enumerate(groups.items()):
    count = f"{len(idx):,} beat{'' if len(idx) == 1 else 's'}"
    title = "All beats" if label is None else f"{view.name(label)} ({label}): {count}"
    grid[n % 3].plotly_chart(
        figures.class_preview(data.X[idx], title=title, color=colors.get(label, figures.NORMAL_COLOR)),
        config=PLOT_CONFIG,
    )
if data.has_labels and len(active.labels) > MAX_PREVIEWS:
    st.caption(f"Showing the first {MAX_PREVIEWS} of {len(active.labels)} classes.")
