"""Threshold explorer: move the threshold and see what it passes, what it catches, and why."""

import time

import streamlit as st

from ecgviz import explore, figures
from views import _state as state

PLOT_CONFIG = {"displaylogo": False}
SUGGESTIONS = {"max_f1": "Max F1", "youden": "Youden's J", "percentile": "p{p:g} of normals"}

st.title("Threshold explorer")
state.show_notice()
model = state.require_model()
if model is None:
    st.stop()

data = state.active_data()
errors, reconstructions = state.scores()
ev = state.evaluation()
if state.threshold() is None:
    state.set_threshold(model.ckpt.threshold)
rng = explore.slider_range(ev.errors, [model.ckpt.threshold, state.threshold()])

if ev.n_excluded:
    st.caption(f"Metrics use the {len(ev.eval_idx):,} beats the model never trained on; "
               f"{ev.n_excluded:,} training and validation beats are left out.")
if not data.data.has_labels:
    st.info("These beats have no labels, so this is score-only mode: the threshold, the error histogram and the "
            "beat viewer work; the metrics, recall curves, ROC/PR curves and confusion matrix need labels.",
            icon=":material/info:")
elif not ev.labelled:
    st.info("Every label is marked normal (or no normal label is chosen), so there is nothing to catch. "
            "Choose the normal labels on the **Data** page.", icon=":material/info:")


def _from_slider() -> None:
    value = float(st.session_state.thr_slider)
    st.session_state[state.THRESHOLD] = value
    st.session_state.thr_number = value


def _from_number() -> None:
    value = float(st.session_state.thr_number)
    st.session_state[state.THRESHOLD] = value
    st.session_state.thr_slider = rng.clamp(value)


def _use(value: float) -> None:
    st.session_state[state.THRESHOLD] = float(value)
    st.session_state.thr_slider = rng.clamp(value)
    st.session_state.thr_number = rng.clamp(value)


def _metric(column, label: str, flagged: int, total: int, share: float | None, help_text: str) -> None:
    column.metric(label, f"{flagged:,} / {total:,}", explore.percent(share), delta_color="off", delta_arrow="off",
                  help=help_text, border=True)


@st.fragment
@state.shows_errors
def explorer() -> None:
    """Everything the threshold drives; a slider step reruns only this."""
    started = time.perf_counter()
    t = rng.clamp(state.threshold())
    # widget values survive page changes only through the shared threshold; re-seed them, inside the range
    st.session_state.thr_slider = rng.clamp(st.session_state.get("thr_slider", t))
    st.session_state.thr_number = rng.clamp(st.session_state.get("thr_number", t))

    left, right = st.columns([5, 1], vertical_alignment="bottom")
    left.slider("Threshold (reconstruction error above it = abnormal)", min_value=rng.lo, max_value=rng.hi,
                step=rng.step, key="thr_slider", on_change=_from_slider)
    right.number_input("Exact value", min_value=rng.lo, max_value=rng.hi, step=rng.step, format="%.4f",
                       key="thr_number", on_change=_from_number)
    t = state.threshold()

    buttons = st.columns(len(SUGGESTIONS) + 2, vertical_alignment="center")
    buttons[0].markdown("**Suggestions**")
    for column, (key, label) in zip(buttons[1:], SUGGESTIONS.items(), strict=False):
        value = ev.suggestions.get(key)
        text = label.format(p=ev.percentile)
        if value is None:
            column.button(text, disabled=True, help="needs labelled data with normal and abnormal beats",
                          key=f"suggest_{key}")
        else:
            column.button(f"{text}: {value:.3f}", on_click=_use, args=(value,), key=f"suggest_{key}",
                          help=f"set the threshold to {value:.6g}")
    buttons[-1].button(f"Model's own: {model.ckpt.threshold:.3f}", on_click=_use, args=(model.ckpt.threshold,),
                       key="suggest_model", help=model.ckpt.threshold_rule or "the threshold stored with the model")

    m = ev.metrics_at(t)
    if m is None:
        cols = st.columns(4)
        cols[0].metric("Beats flagged", f"{ev.n_flagged(t):,} / {len(ev.errors):,}", border=True,
                       help="beats whose reconstruction error is above the threshold")
    else:
        cols = st.columns(4)
        _metric(cols[0], "Normal beats passed", m.tn, m.n_normal, m.normal_recall,
                "held-out normal beats at or below the threshold (specificity)")
        _metric(cols[1], "Anomalies caught", m.tp, m.n_anomaly, m.anomaly_recall,
                "abnormal beats above the threshold (recall)")
        cols[2].metric("Precision", explore.percent(m.precision), border=True,
                       help="share of flagged beats that really are abnormal")
        cols[3].metric("F1", "—" if m.f1 is None else f"{m.f1:.3f}", border=True,
                       help="harmonic mean of precision and recall")
        abnormal = list(m.class_recall)
        st.caption("Anomalies caught, per abnormal class")
        per_class = st.columns(max(len(abnormal), 4))
        for column, label in zip(per_class, abnormal, strict=False):
            flagged, total = m.class_counts[label]
            _metric(column, ev.name(label), flagged, total, m.class_recall[label],
                    f"beats of class {label} above the threshold")

    left, right = st.columns(2)
    with left:
        log_y = st.toggle("Logarithmic count axis", key="hist_log")
        st.plotly_chart(figures.error_histogram(ev.bins, t, log_y=log_y, title="Reconstruction error per class"),
                        config=PLOT_CONFIG)
    with right:
        if m is not None:
            st.plotly_chart(figures.recall_curves(ev.sweep.thresholds, ev.recall_curves(), ev.curve_colors(), t,
                                                  ev.current_recalls(m)), config=PLOT_CONFIG)
    if m is not None:
        roc_col, pr_col, cm_col = st.columns(3)
        fpr = 1.0 - m.normal_recall
        roc_col.plotly_chart(figures.roc_figure(*ev.roc, ev.roc_auc, (fpr, m.anomaly_recall)), config=PLOT_CONFIG)
        pr_col.plotly_chart(figures.pr_figure(*ev.pr, ev.average_precision, (m.anomaly_recall, m.precision)),
                            config=PLOT_CONFIG)
        cm_col.plotly_chart(figures.confusion_figure(m.confusion), config=PLOT_CONFIG)

    beat_viewer(t)
    state.show_threshold()
    st.session_state["explorer_step_ms"] = (time.perf_counter() - started) * 1000


def beat_viewer(t: float) -> None:
    """A chosen beat with its reconstruction, error and verdict."""
    st.subheader("One beat, original and reconstructed")
    controls, chart = st.columns([1, 3])
    with controls:
        mode = st.selectbox("Which beat", explore.PICK_MODES, key="beat_mode")
        label = None
        if mode == "by row":
            st.session_state.beat_row = min(max(int(st.session_state.get("beat_row", 1)), 1), data.data.n_beats)
            st.number_input("Beat number (1 = first beat of the data)", min_value=1, max_value=data.data.n_beats,
                            step=1, key="beat_row")
        elif data.data.has_labels:
            options = data.labels
            if st.session_state.get("beat_class") not in options:  # new data, other labels
                st.session_state.beat_class = ev.abnormal_labels[0] if ev.abnormal_labels else options[0]
            label = st.selectbox("Class", options, format_func=lambda k: f"{data.class_name(k)} ({k})",
                                 key="beat_class")
        if mode == "random":
            st.button("Another random beat", key="beat_reroll", on_click=lambda: st.session_state.update(
                beat_seed=st.session_state.get("beat_seed", 0) + 1))
        i = explore.pick_beat(errors, data.data.labels, label, mode, threshold=t,
                              seed=st.session_state.get("beat_seed", 0), row=st.session_state.get("beat_row", 1))
        if i is None:
            st.info("No beat of that class.")
            return
        error = float(errors[i])
        verdict = explore.verdict(error, t)
        st.metric("Reconstruction error", f"{error:.3f}", f"{error - t:+.3f} vs threshold", delta_color="inverse")
        if verdict == "flagged":
            st.markdown(":red[**Flagged as abnormal**]")
        else:
            st.markdown(":green[**Passed as normal**]")
        origin = f"beat {i + 1:,}: {data.data.sources[i]}, row {int(data.data.rows[i]):,}"
        if data.data.has_labels:
            origin += f", {data.class_name(str(data.data.labels[i]))} ({data.data.labels[i]})"
        st.caption(origin)
    color = ev.colors.get(str(data.data.labels[i]), figures.NORMAL_COLOR) if data.data.has_labels else \
        figures.NORMAL_COLOR
    chart.plotly_chart(figures.beat_figure(data.data.X[i], reconstructions[i], title=f"Beat {i + 1:,} ({verdict})",
                                           color=color), config=PLOT_CONFIG)


explorer()
