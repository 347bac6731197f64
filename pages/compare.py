"""Compare detectors: the autoencoder and the baselines side by side on the same held-out beats."""

import streamlit as st

from ecgviz.dashboard import compare, flagged, session
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
entries = [compare.Entry(m.name, caches.evaluation(m), m.card.threshold) for m in models]
if not compare.same_beats(entries):
    st.warning("These detectors are not judged on the same beats (the active model was trained on other data or "
               "another split); compare them with care.", icon=":material/warning:")
active_ev = next(e.ev for e, m in zip(entries, models, strict=True) if m.id == model.id)
flag_counts = flagged.counts(active_ev, state.threshold())
st.markdown(f"**{plain(model.name)}: {plain(flag_counts.headline())}**")  # the explorer's count, first as on every page
st.caption(f"{len(active_ev.eval_idx):,} held-out beats, the same for every detector; each detector's scores are in "
           "its own units, so each has its own threshold.")


@st.cache_data(max_entries=8, show_spinner="Comparing the detectors (paired bootstrap)…")
def _verdicts(ids: tuple[str, ...], data_fp: str, normals: tuple[str, ...], _entries) -> list[compare.Verdict]:
    return compare.verdicts(_entries)


@st.cache_data(max_entries=8, show_spinner=False)
def _areas(ids: tuple[str, ...], data_fp: str, normals: tuple[str, ...], _entries):
    return compare.areas_table(_entries)


key = (tuple(m.id for m in models), data.fingerprint, state.normal_labels())
found = _verdicts(*key, entries)
if compare.summary(found):
    with st.container(border=True):
        st.markdown(f"**{plain(compare.summary(found))}**")
        st.markdown("\n".join(f"- {plain(v.a)} vs **{plain(v.b)}**: {plain(v.detail())}" for v in found))
        st.caption("Paired bootstrap: the same resampled beats score both detectors, 1,000 times; a difference whose "
                   "95% interval holds 0 is one these beats cannot confirm.")
# st.table wraps long names and fits the page; its few rows need no scrolling
st.markdown("**Over every threshold** (AUROC and average precision, each with its 95% interval)")
page.table(_areas(*key, entries).set_index("detector"))
rule = st.radio("**At each detector's threshold**", list(compare.RULES), format_func=lambda r: compare.RULES[r],
                key="compare_rule", horizontal=True,
                help="the label-free rule is the one you can use on new, unlabelled recordings")
target = compare.fpr_at(active_ev, state.threshold()) if rule == "same_fpr" else None
if rule == "same_fpr":
    st.caption(f"The explorer's threshold {state.threshold():.4g} flags "
               f"{'—' if target is None else f'{100 * target:.1f}%'} of the held-out normals of {plain(model.name)}.")
at_threshold = compare.threshold_table(entries, rule, target)
at_threshold["threshold"] = [("—" if t is None or t != t else f"{t:.4g}") for t in at_threshold["threshold"]]
page.table(at_threshold.set_index("detector"))
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


def _view(m, beats, text: str) -> None:
    # the beat viewer lists these for the detector made active
    st.session_state["disagreements"] = {"model": m.id, "beats": beats, "text": text}
    st.session_state["beat_mode"] = "disagreements"
    st.session_state.pop("browse_pos_disagreements", None)
    state.set_model(m)
    # every detector keeps its own threshold under this rule, so the viewer shows the same disagreement
    state.set_threshold(ta if m.id == ma.id else tb)


# full names in the cards' text (a metric's label is cut to one line), short labels on the buttons
for column, (key, (x, tx), (y, ty)) in zip(st.columns(2), (("a", (ma, ta), (mb, tb)), ("b", (mb, tb), (ma, ta))),
                                            strict=True):
    with column.container(border=True):
        st.markdown(f"**{plain(x.name)}** flags these, **{plain(y.name)}** passes them")
        st.metric(f"beats {key}", f"{counts[f'{key}_only']:,}",
                  f"{counts.get(f'{key}_only_anomalies', 0):,} of them anomalies", delta_color="off",
                  delta_arrow="off", label_visibility="collapsed")
        if st.button("Open them in the explorer", key=f"view_{key}", disabled=not len(d[f"{key}_only"]),
                     icon=":material/visibility:", help=f"as {plain(x.name)}, at its threshold {tx:.4g}"):
            _view(x, d[f"{key}_only"], f"{x.name} flags these at {tx:.4g}; {y.name} passes them at {ty:.4g}.")
            st.switch_page("pages/explorer.py")
