"""Threshold explorer: move the threshold and see what it passes, what it catches, and why."""

import time

import streamlit as st

from ecgviz.dashboard import explore, figures, flagged, glossary, livechart, session
from ecgviz.dashboard.text import plain
from ecgviz.evaluation import intervals
from pages.common import analysis_panel, beat_viewer, caches, detectors, flagged_table, page, sidebar, state
from pages.common.guard import shows_errors
from pages.common.threshold_chart import slider_value, threshold_chart

PLOT_CONFIG = {"displaylogo": False}
CONTROLS_ROOM = '<div style="height: 8rem"></div>'  # the threshold box's row and its caption, at 1400 px
LOG_KEY = "hist_log"  # the log switch, drawn after the chart that reads it
# button text and what it means: (short label, tooltip); {ref} is whose errors the percentile is taken over
SUGGESTIONS = {"max_f1": ("Max F1", "the threshold with the highest F1 on these beats (uses their labels)"),
               "youden": ("Youden", "the threshold maximising Youden's J = normal recall + anomaly recall - 1 "
                                    "(uses the labels)"),
               "percentile": ("p{p:g}", "the {p:g}th percentile of the errors of {ref}: it passes {p:g}% of them "
                                        "(needs no labels)")}

model = page.start("Threshold explorer", needs_model=True)
data = state.active_data()


def _switch_detector() -> None:
    chosen = st.session_state.detector_choice
    for m in detectors.detector_choices():
        if m.id == chosen:
            state.set_model(m)


choices = detectors.detector_choices()
pick, fit_col = st.columns([3, 1], vertical_alignment="bottom")
if len(choices) > 1:
    st.session_state.detector_choice = model.id
    pick.selectbox("Detector", [m.id for m in choices], key="detector_choice", on_change=_switch_detector,
                   format_func=lambda i: next(m.name if m.card.description.split(" (")[0] in m.name else
                                              f"{m.name} ({m.card.description})" for m in choices if m.id == i),
                   help="switch the detector every figure on this page is drawn for; its own threshold comes with it")
elif data.data.has_labels and st.session_state.get(state.NORMALS):
    pick.caption(f"Detector: {plain(model.name)} ({plain(model.card.description)}). Fit the baselines to compare "
                 "and switch.")
    if fit_col.button("Fit baselines (kNN, PCA)", key="fit_baselines", icon=":material/bolt:",
                      help="kNN distance (k = 5, L1 and L2) and PCA reconstruction, on the same training normals; "
                           "a few seconds"):
        detectors.baselines(fit=True)
        st.rerun()

trained_normals = tuple(model.card.split.normal_labels)
current_normals = tuple(st.session_state.get(state.NORMALS) or ())
if (data.data.has_labels and trained_normals and current_normals != trained_normals
        and set(trained_normals) <= set(data.labels)):
    warn, back = st.columns([4, 1], vertical_alignment="center")
    warn.warning(f"The model was trained with normal label(s) {plain(', '.join(trained_normals))}, but the data now "
                 f"calls {plain(', '.join(current_normals)) or 'nothing'} normal: its stored threshold and metrics "
                 "assume the former.", icon=":material/warning:")
    if back.button("Switch back", key="normals_back", help=f"use {plain(', '.join(trained_normals))} as normal again"):
        state.set_normals(list(trained_normals))
        st.session_state.pop("normals_widget", None)
        st.rerun()

errors = caches.scores()
ev = caches.evaluation()
if state.threshold() is None:
    state.set_threshold(model.card.threshold)
rng = explore.slider_range(ev.errors, [model.card.threshold, state.threshold()])
reference = glossary.percentile_reference(session.same_data(model, data), data.data.has_labels)
analysis_panel.caution(errors)  # a model fitted on other data: its numbers, and a fit or threshold on this data

if ev.n_excluded:
    st.caption(f"Metrics use the {len(ev.eval_idx):,} held-out beats, which the model never trained on; "
               f"{ev.n_excluded:,} training and validation beats are left out.")
if not data.data.has_labels:
    st.info("These beats have no labels, so this is score-only mode: the threshold, the error histogram, the "
            "flagged beats and the beat viewer work; the metrics, recall curves, ROC/PR curves and confusion matrix "
            "need labels.", icon=":material/info:")
elif not ev.labelled:
    st.info("Every label is marked normal (or no normal label is chosen), so there is nothing to catch. "
            "Choose the normal labels on the **Data** page.", icon=":material/info:")
quality_slot = st.empty()  # filled once the page is drawn: the check scores a sample of beats again


def _from_chart() -> None:
    # the chart already shows this value: no revision bump, or it would be sent back to it
    value = rng.clamp(slider_value("thr_chart"))
    state.remember_threshold(value)
    st.session_state.thr_number = value


def _from_number() -> None:
    # any finite value is used as typed: above the largest error it flags nothing, below the smallest everything
    value = float(st.session_state.thr_number)
    if value == value and abs(value) != float("inf"):
        state.set_threshold(value)


def _use(value: float) -> None:
    state.set_threshold(rng.clamp(value))


def _metric(column, label: str, flagged: int, total: int, share: float | None, help_text: str) -> None:
    ci = intervals.fmt_interval(intervals.wilson(flagged, total))
    column.metric(label, f"{flagged:,} / {total:,}", f"{explore.percent(share)}  95% CI {ci}", delta_color="off",
                  delta_arrow="off", help=f"{help_text}; the interval is Wilson's for a proportion", border=True)


def _controls(t: float) -> None:
    """The threshold box, the suggestions and the log switch (the chart reads the switch's state)."""
    number, *buttons, log = st.columns([1.5] + [1] * (len(SUGGESTIONS) + 1) + [0.9], vertical_alignment="bottom")
    number.number_input("Threshold", step=rng.step, format="%.4f", key="thr_number", on_change=_from_number,
                        help=f"a beat whose {glossary.score_name(model.card.kind)} is above the threshold is "
                             "flagged as abnormal")
    for column, (key, (label, why)) in zip(buttons, SUGGESTIONS.items(), strict=False):
        value = ev.suggestions.get(key)
        text, why = label.format(p=ev.percentile), why.format(p=ev.percentile, ref=reference)
        if value is None:
            column.button(text, disabled=True, help=f"{why}: needs labelled data with normal and abnormal beats",
                          key=f"suggest_{key}", width="stretch")
        else:
            column.button(f"{text} {value:.4g}", on_click=_use, args=(value,), key=f"suggest_{key}",
                          help=f"{why}: set the threshold to {value:.6g}", width="stretch")
    buttons[-1].button(f"Model {model.card.threshold:.4g}", on_click=_use, args=(model.card.threshold,),
                       key="suggest_model", width="stretch",
                       help="the threshold stored with the model "
                            f"({plain(model.card.threshold_rule) or 'no rule recorded'})")
    st.caption(f"Max F1 and Youden are the best thresholds on these beats' labels; p{ev.percentile:g} is the "
               f"{ev.percentile:g}th percentile of the errors of {reference}; Model is the one stored with the model.")
    log.toggle("Log", key=LOG_KEY, help="logarithmic count axis for the histogram")


def _cards(m, t: float, counts: flagged.FlagCounts) -> None:
    """The headline figures and the per-class catch rates at the threshold."""
    cols = st.columns(4)
    if m is None:
        label = "Held-out beats flagged" if counts.held_out_total != counts.all_total else "Beats flagged"
        cols[0].metric(label, f"{counts.held_out:,} / {counts.held_out_total:,}", border=True,
                       help="beats the model never trained on whose score is above the threshold")
        return
    _metric(cols[0], "Normal beats passed", m.tn, m.n_normal, m.normal_recall,
            "held-out normal beats at or below the threshold (specificity)")
    _metric(cols[1], "Anomalies caught", m.tp, m.n_anomaly, m.anomaly_recall,
            "held-out abnormal beats above the threshold (recall)")
    precision_ci = intervals.fmt_interval(intervals.wilson(m.tp, m.tp + m.fp))
    cols[2].metric("Precision", explore.percent(m.precision),
                   None if m.precision is None else f"95% CI {precision_ci}", delta_color="off", delta_arrow="off",
                   border=True, help="share of flagged held-out beats that really are abnormal (undefined when "
                                     "nothing is flagged); inflated when most evaluated beats are anomalies")
    cols[3].metric("F1", "—" if m.f1 is None else f"{m.f1:.3f}", border=True,
                   help="harmonic mean of precision and recall")
    groups = ev.abnormal_groups(m)
    st.caption(plain(" ".join(["Anomalies caught, per abnormal class.", ev.view.note()])))
    per_class = st.columns(max(len(groups), 4))
    for column, (name, caught, total, labels) in zip(per_class, groups, strict=False):
        what = f"class {labels[0]}" if len(labels) == 1 else f"the {len(labels):,} smaller classes"
        _metric(column, plain(name), caught, total, caught / total if total else None,
                f"held-out beats of {plain(what)} above the threshold")


def _curves(m) -> None:
    """ROC, precision-recall and the confusion matrix at the threshold, with the areas' intervals."""
    for note in ev.caveats():
        st.caption(plain(note))
    zoom = st.toggle("Zoom the curves to the corner where they differ", value=bool(ev.roc_auc >= 0.95),
                     key="explorer_zoom", help="ROC: up to 20% of normals flagged; precision-recall: recall above 80%")
    roc_col, pr_col, cm_col = st.columns(3)
    roc_col.plotly_chart(figures.roc_figure(*ev.roc, ev.roc_auc, (1.0 - m.normal_recall, m.anomaly_recall), zoom),
                         config=PLOT_CONFIG)
    pr_point = None if m.precision is None else (m.anomaly_recall, m.precision)
    pr_col.plotly_chart(figures.pr_figure(*ev.pr, ev.average_precision, pr_point, zoom), config=PLOT_CONFIG)
    areas = detectors.area_intervals(ev)
    roc_col.caption(f"AUROC {ev.roc_auc:.4f}, 95% CI {intervals.fmt_interval(areas['auroc'], percent=False)} "
                    "(bootstrap)")
    pr_col.caption(f"AP {ev.average_precision:.4f}, 95% CI "
                   f"{intervals.fmt_interval(areas['average_precision'], percent=False)} (bootstrap)")
    cm_col.plotly_chart(figures.confusion_figure(m.confusion), config=PLOT_CONFIG)


@st.fragment
@shows_errors
def explorer() -> None:
    """Everything the threshold drives; a slider step reruns only this."""
    global rng
    started = time.perf_counter()
    # a typed threshold may lie outside the errors: the range grows to hold it (a fragment run keeps the old one)
    rng = explore.slider_range(ev.errors, [model.card.threshold, state.threshold()])
    t = rng.clamp(state.threshold())
    # the number box survives page changes only through the shared threshold; re-seed it
    st.session_state.thr_number = float(st.session_state.get("thr_number", t))
    # the box, the suggestions and the log switch sit above the chart but are sent after it: on a fresh server the
    # browser draws the chart (and its slider works) without first loading the code of three more kinds of widget
    controls, room = st.container(), None
    if page.pauses_after_chart():  # a blank of their height keeps the chart from moving down when they come
        room = controls.empty()
        room.html(CONTROLS_ROOM)
    # the slider and its figure update in the browser at once; the value reaches this fragment when it rests
    threshold_chart(livechart.chart_data(caches.chart_base(ev, rng), t, revision=state.threshold_revision(),
                                         log_y=bool(st.session_state.get(LOG_KEY, False))),
                    key="thr_chart", on_change=_from_chart)
    page.send_what_is_drawn()
    with room.container() if room is not None else controls:
        _controls(t)
    st.caption(plain(glossary.score_definition(model.ckpt)))
    counts = flagged.counts(ev, t)
    st.markdown(f"**{plain(counts.headline())}**")  # the count every page states first
    if counts.others():
        st.caption(plain(counts.others()))
    m = ev.metrics_at(t)
    _cards(m, t, counts)
    if m is not None:
        _curves(m)
    flagged_table.show(ev, data, model, t, counts)
    beat_viewer.show(ev, model, data, errors, t)
    sidebar.show_threshold()
    st.session_state["explorer_step_ms"] = (time.perf_counter() - started) * 1000


explorer()
with quality_slot:
    page.warn_if_degenerate(caches.model_quality(model, ev))
if data.name == session.BUILTIN_NAME and data.data.has_labels and st.session_state.get(state.NORMALS):
    # the built-in data gets its baselines without a click, once the page is drawn (shared by every session)
    if not detectors.baselines():
        detectors.baselines(fit=True)
        st.rerun()
