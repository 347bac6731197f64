"""Compare detectors: the autoencoder and the baselines side by side on the same held-out beats."""

import streamlit as st

from ecgviz.dashboard import compare, session
from ecgviz.dashboard.text import plain
from pages.common import caches, detectors, page, state

PLOT_CONFIG = {"displaylogo": False}

model = page.start("Compare detectors", needs_model=True)
data = state.active_data()
if not data.data.has_labels or not st.session_state.get(state.NORMALS):
    st.info("Comparing detectors needs labelled beats and at least one normal label (see the **Data** page).",
            icon=":material/info:")
    st.stop()

auto = data.name == session.BUILTIN_NAME
if not detectors.baselines(fit=auto):
    st.caption("kNN distance (k = 5, L1 and L2) and PCA reconstruction fit on the same training normals as the "
               "active model, in seconds.")
    if st.button("Fit baselines (kNN, PCA)", key="compare_fit", icon=":material/bolt:", type="primary"):
        detectors.baselines(fit=True)
        st.rerun()
    st.stop()

models = detectors.detector_choices()
entries = [compare.Entry(m.name, caches.evaluation(m), m.ckpt.threshold) for m in models]
if not compare.same_beats(entries):
    st.warning("These detectors are not judged on the same beats (the active model was trained on other data or "
               "another split); compare them with care.", icon=":material/warning:")
active_ev = next(e.ev for e, m in zip(entries, models, strict=True) if m.id == model.id)
st.caption(f"{len(active_ev.eval_idx):,} held-out beats, the same for every detector; each detector's scores are in "
           "its own units, so each has its own threshold.")

rule = st.radio("Threshold for each detector", list(compare.RULES), format_func=lambda r: compare.RULES[r],
                key="compare_rule", horizontal=True,
                help="the label-free rule is the one you can use on new, unlabelled recordings")
target = compare.fpr_at(active_ev, state.threshold()) if rule == "same_fpr" else None
if rule == "same_fpr":
    st.caption(f"The explorer's threshold {state.threshold():.4g} flags "
               f"{'—' if target is None else f'{100 * target:.1f}%'} of the held-out normals of {plain(model.name)}.")
st.dataframe(compare.table(entries, rule, target), hide_index=True,
             column_config={"AUROC": st.column_config.NumberColumn(format="%.4f"),
                            "AP": st.column_config.NumberColumn(format="%.4f"),
                            "balanced accuracy": st.column_config.NumberColumn(format="%.4f"),
                            "threshold": st.column_config.NumberColumn(format="%.4g")})
for note in active_ev.caveats():
    st.caption(plain(note))

zoom = st.toggle("Zoom to the corner where the detectors differ", value=True, key="compare_zoom",
                 help="ROC: up to 20% of normals flagged; precision-recall: recall above 80%")
roc_col, pr_col = st.columns(2)
roc_col.plotly_chart(compare.overlay(entries, "roc", zoom), config=PLOT_CONFIG, key="compare_roc")
pr_col.plotly_chart(compare.overlay(entries, "pr", zoom), config=PLOT_CONFIG, key="compare_pr")

st.subheader("Where two detectors disagree")
names = {m.id: m.name for m in models}
left, right = st.columns(2)
a_id = left.selectbox("Detector A", list(names), format_func=names.get, key="compare_a")
b_id = right.selectbox("Detector B", [i for i in names if i != a_id], format_func=names.get, key="compare_b")
by_id = {m.id: (m, e) for m, e in zip(models, entries, strict=True)}
(ma, ea), (mb, eb) = by_id[a_id], by_id[b_id]
ta, tb = compare.threshold_for(ea, rule, target), compare.threshold_for(eb, rule, target)
if ta is None or tb is None:
    st.info("This rule gives no threshold for one of them.")
    st.stop()
d = compare.disagreements(ea, ta, eb, tb)
counts = compare.disagreement_counts(ea, ta, eb, tb, data.data.labels, st.session_state.get(state.NORMALS))
c1, c2 = st.columns(2)
c1.metric(f"{plain(ma.name)} flags, {plain(mb.name)} passes", f"{counts['a_only']:,}",
          f"{counts.get('a_only_anomalies', 0):,} of them anomalies", delta_color="off", delta_arrow="off",
          border=True)
c2.metric(f"{plain(mb.name)} flags, {plain(ma.name)} passes", f"{counts['b_only']:,}",
          f"{counts.get('b_only_anomalies', 0):,} of them anomalies", delta_color="off", delta_arrow="off",
          border=True)


def _view(m, beats, text: str) -> None:
    # the beat viewer lists these for the detector made active
    st.session_state["disagreements"] = {"model": m.id, "beats": beats, "text": text}
    st.session_state["beat_mode"] = "disagreements"
    st.session_state.pop("browse_pos_disagreements", None)
    state.set_model(m)
    # every detector keeps its own threshold under this rule, so the viewer shows the same disagreement
    state.set_threshold(ta if m.id == ma.id else tb)


v1, v2 = st.columns(2)
if v1.button(f"View these beats as {plain(ma.name)}", key="view_a", disabled=not len(d["a_only"]),
             icon=":material/visibility:"):
    _view(ma, d["a_only"], f"{ma.name} flags these at {ta:.4g}; {mb.name} passes them at {tb:.4g}.")
    st.switch_page("pages/explorer.py")
if v2.button(f"View these beats as {plain(mb.name)}", key="view_b", disabled=not len(d["b_only"]),
             icon=":material/visibility:"):
    _view(mb, d["b_only"], f"{mb.name} flags these at {tb:.4g}; {ma.name} passes them at {ta:.4g}.")
    st.switch_page("pages/explorer.py")
