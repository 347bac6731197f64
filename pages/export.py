"""Export: the flagged beats (held-out only, every role, or all beats) as CSV, the metrics as JSON, and the active
checkpoint."""

from dataclasses import replace

import numpy as np
import streamlit as st

from ecgviz.checkpoint.store import to_bytes
from ecgviz.dashboard import explore, flagged, recording_analysis
from ecgviz.dashboard.text import plain
from ecgviz.pipeline import export
from pages.common import caches, detectors, page, state

PREVIEW_ROWS = 200
# which rows the CSV holds: (choice, file name prefix)
ROWS = {"Flagged held-out beats (the explorer's count)": "ecgviz_flagged_heldout",
        "Every flagged beat (training and validation beats too)": "ecgviz_flagged",
        "All beats": "ecgviz_all"}

model = page.start("Export", needs_model=True)

active = state.active_data()
ev = caches.evaluation()
t = state.threshold()
counts = flagged.counts(ev, t)
st.markdown(f"**{plain(counts.headline())}**")  # the explorer's count, stated first as on every page
if counts.others():
    st.caption(plain(counts.others()))

st.subheader("Beats as CSV")
left, right = st.columns(2)
choices = list(ROWS) if counts.others() else [c for c in ROWS if "training" not in c]
rows = left.radio("Rows", choices, key="export_rows",
                  help="held-out: the beats the metrics count, which the model never trained on; the split_role and "
                       "outcome columns say which is which")
samples = right.checkbox("Include the beat samples (columns s1, s2, …)", key="export_samples")
keep = {"ecgviz_flagged_heldout": (ev.errors > t) & flagged.held_out_mask(ev), "ecgviz_flagged": ev.errors > t,
        "ecgviz_all": np.ones(len(ev.errors), dtype=bool)}[ROWS[rows]]
# the split role and the outcome at the threshold: the explorer's counts are the held-out rows' outcomes
table = ev.beat_table(active.data, t, include_samples=samples)[keep].reset_index(drop=True)
file_name = export.export_filename(ROWS[rows], t)
st.download_button(f"Download {file_name} ({len(table):,} rows)", export.to_csv(table), file_name=file_name,
                   mime="text/csv", icon=":material/download:", key="export_csv", on_click="ignore")
st.dataframe(table.head(PREVIEW_ROWS), hide_index=True, height=280)
if len(table) > PREVIEW_ROWS:
    st.caption(f"Showing the first {PREVIEW_ROWS} of {len(table):,} rows; the download has them all.")

st.subheader("Metrics as JSON")
extra = {"model": model.name, "detector": model.card.description, "detector_kind": model.card.kind,
         "split_mode": model.card.split.mode, "split": model.card.split.describe(),
         "threshold_rule_of_model": model.card.threshold_rule, "data": active.name,
         "data_fingerprint": active.fingerprint}
st.download_button("Download metrics and threshold (JSON)",
                   explore.metrics_payload(ev, t, extra, detectors.area_intervals(ev) if ev.labelled else None),
                   file_name=f"ecgviz_metrics_t{t:.4f}.json",
                   mime="application/json", icon=":material/download:", key="export_json", on_click="ignore")

st.subheader("Checkpoint")
if model.card.kind == recording_analysis.KIND:  # scores of one recording's beats, not a model to save
    st.caption("An analysis of one recording is not a checkpoint: its files as the command line writes them "
               "(beats.csv, flagged.atr, summary.json) download on the **Data** page.")
    st.stop()
with_threshold = st.checkbox(f"Store the chosen threshold ({t:.4g}) in the downloaded checkpoint",
                             key="export_ckpt_threshold")
# the class names given on the Data page travel with the model (for the labels it knows)
names = {**dict(model.card.class_names), **dict(active.names)}
renamed = names != dict(model.card.class_names)
if with_threshold or renamed:
    ckpt = replace(model.ckpt, class_names=names)
    payload = to_bytes(ckpt.with_threshold(t) if with_threshold else ckpt)
else:
    payload = model.checkpoint_bytes()
st.download_button(f"Download {plain(model.download_name())}", payload, file_name=model.download_name(),
                   mime="application/octet-stream", icon=":material/download:", key="export_ckpt",
                   on_click="ignore")
