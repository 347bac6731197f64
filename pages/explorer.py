"""Threshold explorer: move the threshold and see what it passes, what it catches, and why."""

import time

import streamlit as st

from ecgviz.dashboard import beat_picker, explore, figures, livechart, recording_view, session
from ecgviz.dashboard.text import plain
from ecgviz.evaluation import intervals
from pages.common import caches, detectors, page, sidebar, state
from pages.common.guard import shows_errors
from pages.common.threshold_chart import slider_value, threshold_chart

PLOT_CONFIG = {"displaylogo": False}
# button text and what it means: (short label, tooltip)
SUGGESTIONS = {"max_f1": ("Max F1", "the threshold with the highest F1 on these beats"),
               "youden": ("Youden", "the threshold maximising Youden's J = normal recall + anomaly recall - 1"),
               "percentile": ("p{p:g}", "the {p:g}th percentile of the normal beats' errors (needs no labels)")}

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
                   format_func=lambda i: next(m.name if m.ckpt.description.split(" (")[0] in m.name else
                                              f"{m.name} ({m.ckpt.description})" for m in choices if m.id == i),
                   help="switch the detector every figure on this page is drawn for; its own threshold comes with it")
elif data.data.has_labels and st.session_state.get(state.NORMALS):
    pick.caption(f"Detector: {plain(model.name)} ({plain(model.ckpt.description)}). Fit the baselines to compare "
                 "and switch.")
    if fit_col.button("Fit baselines (kNN, PCA)", key="fit_baselines", icon=":material/bolt:",
                      help="kNN distance (k = 5, L1 and L2) and PCA reconstruction, on the same training normals; "
                           "a few seconds"):
        detectors.baselines(fit=True)
        st.rerun()

trained_normals = tuple(model.ckpt.split.normal_labels)
current_normals = tuple(st.session_state.get(state.NORMALS) or ())
if (data.data.has_labels and trained_normals and current_normals != trained_normals
        and set(trained_normals) <= set(data.labels)):
    warn, back = st.columns([4, 1], vertical_alignment="center")
    warn.warning(f"The model was trained with normal label(s) {plain(', '.join(trained_normals))}, but the data now "
                 f"calls {plain(', '.join(current_normals)) or 'nothing'} normal: its stored threshold and metrics "
                 "assume the former.", icon=":material/warning:")
    if back.button("Switch back", key="normals_back", help=f"use {plain(', '.join(trained_normals))} as normal again"):
        st.session_state[state.NORMALS] = list(trained_normals)
        st.session_state.pop("normals_widget", None)
        st.rerun()

errors = caches.scores()
ev = caches.evaluation()
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
page.warn_if_degenerate(caches.model_quality(model, ev))


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


@st.fragment
@shows_errors
def explorer() -> None:
    """Everything the threshold drives; a slider step reruns only this."""
    global rng
    started = time.perf_counter()
    # a typed threshold may lie outside the errors: the range grows to hold it (a fragment run keeps the old one)
    rng = explore.slider_range(ev.errors, [model.ckpt.threshold, state.threshold()])
    t = rng.clamp(state.threshold())
    # the number box survives page changes only through the shared threshold; re-seed it
    st.session_state.thr_number = float(st.session_state.get("thr_number", t))

    number, *buttons, log = st.columns([1.5] + [1] * (len(SUGGESTIONS) + 1) + [0.9], vertical_alignment="bottom")
    number.number_input("Threshold", step=rng.step, format="%.4f",
                        key="thr_number", on_change=_from_number,
                        help="a beat whose reconstruction error is above the threshold is flagged as abnormal")
    for column, (key, (label, why)) in zip(buttons, SUGGESTIONS.items(), strict=False):
        value = ev.suggestions.get(key)
        text, why = label.format(p=ev.percentile), why.format(p=ev.percentile)
        if value is None:
            column.button(text, disabled=True, help=f"{why}: needs labelled data with normal and abnormal beats",
                          key=f"suggest_{key}", width="stretch")
        else:
            column.button(f"{text} {value:.4g}", on_click=_use, args=(value,), key=f"suggest_{key}",
                          help=f"{why}: set the threshold to {value:.6g}", width="stretch")
    buttons[-1].button(f"Model {model.ckpt.threshold:.4g}", on_click=_use, args=(model.ckpt.threshold,),
                       key="suggest_model", width="stretch",
                       help="the threshold stored with the model "
                            f"({plain(model.ckpt.threshold_rule) or 'no rule recorded'})")
    log_y = log.toggle("Log", key="hist_log", help="logarithmic count axis for the histogram")

    # the slider and its figure update in the browser at once; the value reaches this fragment when it rests
    threshold_chart(livechart.chart_data(caches.chart_base(ev, rng), t, revision=state.threshold_revision(),
                                         log_y=log_y), key="thr_chart", on_change=_from_chart)

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
        precision_ci = intervals.fmt_interval(intervals.wilson(m.tp, m.tp + m.fp))
        cols[2].metric("Precision", explore.percent(m.precision),
                       None if m.precision is None else f"95% CI {precision_ci}", delta_color="off", delta_arrow="off",
                       border=True, help="share of flagged beats that really are abnormal (undefined when nothing is "
                                         "flagged); inflated when most evaluated beats are anomalies")
        cols[3].metric("F1", "—" if m.f1 is None else f"{m.f1:.3f}", border=True,
                       help="harmonic mean of precision and recall")
        groups = ev.abnormal_groups(m)
        st.caption(plain(" ".join(["Anomalies caught, per abnormal class.", ev.view.note()])))
        per_class = st.columns(max(len(groups), 4))
        for column, (name, flagged, total, labels) in zip(per_class, groups, strict=False):
            what = f"class {labels[0]}" if len(labels) == 1 else f"the {len(labels):,} smaller classes"
            _metric(column, plain(name), flagged, total, flagged / total if total else None,
                    f"beats of {plain(what)} above the threshold")

    if m is not None:
        for note in ev.caveats():
            st.caption(plain(note))
        roc_col, pr_col, cm_col = st.columns(3)
        fpr = 1.0 - m.normal_recall
        roc_col.plotly_chart(figures.roc_figure(*ev.roc, ev.roc_auc, (fpr, m.anomaly_recall)), config=PLOT_CONFIG)
        pr_point = None if m.precision is None else (m.anomaly_recall, m.precision)
        pr_col.plotly_chart(figures.pr_figure(*ev.pr, ev.average_precision, pr_point), config=PLOT_CONFIG)
        areas = detectors.area_intervals(ev)
        roc_col.caption(f"AUROC {ev.roc_auc:.4f}, 95% CI {intervals.fmt_interval(areas['auroc'], percent=False)} "
                        "(bootstrap)")
        pr_col.caption(f"AP {ev.average_precision:.4f}, 95% CI "
                       f"{intervals.fmt_interval(areas['average_precision'], percent=False)} (bootstrap)")
        cm_col.plotly_chart(figures.confusion_figure(m.confusion), config=PLOT_CONFIG)

    beat_viewer(t)
    sidebar.show_threshold()
    st.session_state["explorer_step_ms"] = (time.perf_counter() - started) * 1000


def beat_viewer(t: float) -> None:
    """A chosen beat with its reconstruction, error and verdict."""
    st.subheader("One beat, original and reconstructed")
    if model.ckpt.kind == "knn":
        st.caption(f"For {plain(model.ckpt.description)} the second line is the mean of the beat's "
                   f"{model.ckpt.model.k} nearest training normals, the normal shape its distance is measured to.")
    elif model.ckpt.kind == "pca":
        st.caption("For PCA the second line is the beat projected onto the normals' principal components.")
    controls, chart = st.columns([1, 3])
    with controls:
        browse_modes = tuple(beat_picker.BROWSE_MODES) if ev.labelled else ()
        disagree = st.session_state.get("disagreements")
        disagree = disagree if disagree and disagree.get("model") == model.id else None
        modes = beat_picker.PICK_MODES + browse_modes + (("disagreements",) if disagree else ())
        if st.session_state.get("beat_mode") not in modes:
            st.session_state.beat_mode = modes[0]
        mode = st.selectbox("Which beat", modes, key="beat_mode")
        label = None
        i = None
        if mode in browse_modes or mode == "disagreements":
            i = _browse(mode, t, disagree)
            if i is None:
                return
        elif mode == "by row":
            st.session_state.beat_row = min(max(int(st.session_state.get("beat_row", 1)), 1), data.data.n_beats)
            st.number_input("Beat number (1 = first beat of the data)", min_value=1, max_value=data.data.n_beats,
                            step=1, key="beat_row")
        elif data.data.has_labels:
            options = ev.view.options()
            if st.session_state.get("beat_class") not in options:  # new data, other labels
                st.session_state.beat_class = ev.view.shown[0] if ev.view.shown else options[0]
            label = st.selectbox("Class", options, format_func=lambda k: f"{ev.name(k)} ({k})",
                                 key="beat_class")
            if len(options) < len(ev.view.names):
                st.caption(f"{len(options):,} of {len(ev.view.names):,} classes listed; any beat: choose by row.")
        if mode == "random":
            st.button("Another random beat", key="beat_reroll", on_click=lambda: st.session_state.update(
                beat_seed=st.session_state.get("beat_seed", 0) + 1))
        if mode in beat_picker.PICK_MODES:
            i = beat_picker.pick_beat(errors, data.data.labels, label, mode, threshold=t,
                                  seed=st.session_state.get("beat_seed", 0), row=st.session_state.get("beat_row", 1))
        if i is None:
            st.info("No beat of that class.")
            return
        error = float(errors[i])
        verdict = beat_picker.verdict(error, t)
        st.metric("Reconstruction error", f"{error:.3f}", f"{error - t:+.3f} vs threshold", delta_color="inverse")
        if verdict == "flagged":
            st.markdown(":red[**Flagged as abnormal**]")
        else:
            st.markdown(":green[**Passed as normal**]")
        source = data.data.source_names[data.data.source_codes[i]]
        beat_label = data.data.label_names[data.data.label_codes[i]] if data.data.has_labels else None
        origin = f"beat {i + 1:,}: {source}, row {int(data.data.rows[i]):,}"
        if beat_label is not None:
            origin += f", {ev.name(beat_label)} ({beat_label})"
        st.caption(plain(origin))
        st.caption(f"This is {beat_picker.role_text(str(ev.roles[i]))}.")
    color = ev.colors.get(beat_label, figures.NORMAL_COLOR) if beat_label is not None else figures.NORMAL_COLOR
    chart.plotly_chart(figures.beat_figure(data.data.X[i], caches.reconstruction(i),
                                           title=f"Beat {i + 1:,} ({verdict})", color=color), config=PLOT_CONFIG)
    if data.recording is not None:  # a beat cut from a recording: show where it sits, flagged neighbours marked
        st.plotly_chart(recording_view.context_figure(data.recording, i, errors > t, labels=data.data.labels,
                                                      colors=ev.colors), config=PLOT_CONFIG)


def _browse(mode: str, t: float, disagree: dict | None) -> int | None:
    """Step through false alarms, missed anomalies or disagreements with Previous/Next; the beat index or None."""
    if mode == "disagreements":
        items = disagree["beats"]
        st.caption(plain(disagree["text"]))
    else:
        items = beat_picker.browse(ev, t, mode)
    key = f"browse_pos_{mode}"
    if not len(items):
        st.info(f"No {mode} at this threshold.")
        return None
    pos = min(int(st.session_state.get(key, 0)), len(items) - 1)
    prev, where, nxt = st.columns([1, 2, 1], vertical_alignment="center")
    if prev.button("Previous", key=f"prev_{mode}", icon=":material/chevron_left:"):
        pos = beat_picker.step(pos, len(items), -1)
    if nxt.button("Next", key=f"next_{mode}", icon=":material/chevron_right:"):
        pos = beat_picker.step(pos, len(items), +1)
    st.session_state[key] = pos
    where.caption(f"{pos + 1:,} of {len(items):,} {mode}")
    return int(items[pos])


explorer()
if data.name == session.BUILTIN_NAME and data.data.has_labels and st.session_state.get(state.NORMALS):
    # the built-in data gets its baselines without a click, once the page is drawn (shared by every session)
    if not detectors.baselines():
        detectors.baselines(fit=True)
        st.rerun()
