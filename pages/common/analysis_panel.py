"""'Analyze this recording': the label-free analysis run on the loaded recording (with progress), made the active
data and model, and its summary; plus the explorer's caution for models fitted on other data."""

from __future__ import annotations

import streamlit as st

from ecgviz.dashboard import model_guard, recording_analysis, session
from ecgviz.dashboard.text import plain
from ecgviz.errors import USER_ERRORS
from pages.common import state


def analysed(active: session.ActiveData) -> session.ActiveModel | None:
    """The active model when it is the analysis of exactly these beats."""
    model = state.active_model()
    if model is not None and model.card.kind == recording_analysis.KIND \
            and model.card.data_fingerprint == active.fingerprint:
        return model
    return None


def can_analyze(active: session.ActiveData) -> bool:
    """True when the active data is a recording whose files are at hand."""
    return active.recording is not None and active.recording.source is not None


def run(active: session.ActiveData) -> None:
    """Analyse the recording's current lead, showing progress; on success make it active and rerun the page."""
    from ecgviz.analysis.analyze import analyze  # the analysis stack loads only when asked for
    from ecgviz.dashboard import analysis_model  # and the detector it becomes, with scikit-learn

    view = active.recording
    bar = st.progress(0.0, text="Reading the recording…")
    try:
        rec = view.source.read(view.lead)
        result = analyze(rec, progress=lambda done, what: bar.progress(min(1.0, done), text=plain(f"{what}…")))
        data, model = analysis_model.adopt(result, view.source, active.name)
    except USER_ERRORS as exc:
        bar.empty()
        st.error(plain(exc), icon=":material/error:")
        return
    state.set_data(data)
    state.set_model(model)
    state.set_normals(recording_analysis.normal_labels(data))
    s = result.summary
    state.notify(f"Analysed {s['record']} (lead {s['lead']}) without labels in {s['seconds']:.1f} s: "
                 f"{s['flagged']:,} of {s['beats']:,} beats flagged. The explorer and the export now use it.")
    st.rerun()


def button(active: session.ActiveData) -> None:
    """'Analyze this recording', for a recording whose files are at hand and that is not analysed yet."""
    if can_analyze(active) and analysed(active) is None and st.button(
            "Analyze this recording", key="rec_analyze", type="primary", icon=":material/troubleshoot:",
            help="find the abnormal beats without labels: every beat scored by shape (against this recording's "
                 "median beat) and timing (against the local RR), R-peaks checked by a second detector; reference "
                 "annotations, if any, are used only to evaluate"):
        run(active)


def summary(active: session.ActiveData) -> None:
    """The analysis of these beats, when it is the active model."""
    model = analysed(active)
    if model is not None:
        show_summary(model)


def show_summary(model: session.ActiveModel) -> None:
    """Counts by reason, irregular stretches, possible missed beats and (with reference annotations) the evaluation."""
    detector = model.ckpt.detector
    view = recording_analysis.summary_view(detector.summary)
    with st.container(border=True, key="analysis_summary"):
        st.markdown(f"**{plain(model.name)}** (no labels used)")
        counts = view["counts"]
        for column, (label, value, note, meaning) in zip(st.columns(len(counts)), counts, strict=True):
            column.metric(label, value, note, delta_color="off", delta_arrow="off", border=True, help=meaning)
        if view["stretches"]:
            st.caption(plain(f"Irregular (atrial fibrillation-like) stretches: {view['stretches']}. Their beats "
                             "are not flagged one by one for timing."))
        if view["missed"]:
            st.caption(plain(f"Possible missed beats (RR gaps no detector filled): {view['missed']}."))
        st.caption(plain(f"Rule: {view['rule']}."))
        ev = view["evaluation"]
        if ev is not None:
            st.markdown("**Against the reference annotations** (used for this evaluation only)")
            st.caption(plain(" ".join(ev["lines"])))
            if ev["rows"]:
                st.dataframe(ev["rows"], hide_index=True, key="analysis_classes",
                             column_config={"share": st.column_config.NumberColumn(format="percent")})
        if detector.report:
            st.download_button("Download beats.csv, flagged.atr, summary.json (zip)", detector.report,
                               file_name=f"{model.name.split(',')[0].replace('Analysis of ', '')}_analysis.zip",
                               mime="application/zip", icon=":material/download:", key="analysis_zip",
                               on_click="ignore")


def caution(errors) -> None:
    """For a model fitted on other data that flags too many of these beats, or whose threshold lies outside their
    scores: say so with the numbers, and offer to fit this data or re-set the threshold without labels."""
    model, data = state.active_model(), state.active_data()
    found = model_guard.caution_for(model, data, errors, state.threshold(),
                                    st.session_state.get(state.NORMALS) or ())
    if found is None:
        return
    st.warning(plain(found.message()), icon=":material/warning:")
    fit, reset, _ = st.columns([1, 1.5, 1.5])
    if can_analyze(data):
        if fit.button("Fit this recording", key="guard_analyze", icon=":material/troubleshoot:",
                      help="analyze it without labels (as on the Data page): shape and timing against itself"):
            run(data)
    else:
        fit.page_link("pages/model.py", label="Fit a model to this data", icon=":material/model_training:")
    reset.button(f"Threshold {found.reset_to:.4g} (p{found.percentile:g} of all beats)", key="guard_reset",
                 on_click=state.set_threshold, args=(found.reset_to,), icon=":material/tune:",
                 help=f"the {found.percentile:g}th percentile of these beats' scores: set on this data, no labels")
