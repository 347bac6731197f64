"""The explorer's beat viewer: one beat with its reconstruction, its error against the threshold, its verdict and
where it comes from; picked by rule, by row (the flagged-beats table sets that), or stepped through a list."""

from __future__ import annotations

import numpy as np
import streamlit as st

from ecgviz.dashboard import beat_picker, explore, figures, glossary, recording_view, session
from ecgviz.dashboard.text import plain
from pages.common import caches

PLOT_CONFIG = {"displaylogo": False}
MODE, ROW = "beat_mode", "beat_row"  # widget keys the flagged-beats table sets to open a beat
DISAGREEMENTS = "disagreements"  # {"model", "beats", "text"} left by the Compare page


def open_beat(index: int) -> None:
    """Show beat `index` (0-based) in the viewer on the next run."""
    st.session_state[MODE] = "by row"
    st.session_state[ROW] = int(index) + 1


def show(ev: explore.ExplorerView, model: session.ActiveModel, data: session.ActiveData, errors: np.ndarray,
         t: float) -> None:
    """The viewer, for the active model's errors at threshold `t`."""
    st.subheader("One beat, original and reconstructed", anchor="one-beat")
    if model.card.kind == "knn":
        st.caption(f"For {plain(model.card.description)} the second line is the mean of the beat's "
                   f"{model.ckpt.detector.k} nearest training normals, the normal shape its distance is measured to.")
    elif model.card.kind == "pca":
        st.caption("For PCA the second line is the beat projected onto the normals' principal components.")
    controls, chart = st.columns([1, 3])
    with controls:
        i = _choose(ev, model, data, errors, t)
        if i is None:
            return
        error = float(errors[i])
        verdict = beat_picker.verdict(error, t)
        st.metric(glossary.score_name(model.card.kind).capitalize(), f"{error:.3f}", f"{error - t:+.3f} vs threshold",
                  delta_color="inverse", help=plain(glossary.score_definition(model.ckpt)))
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
        st.caption(f"This is {glossary.role_text(str(ev.roles[i]), labelled=data.data.has_labels)}.")
    color = ev.colors.get(beat_label, figures.NORMAL_COLOR) if beat_label is not None else figures.NORMAL_COLOR
    chart.plotly_chart(figures.beat_figure(data.data.X[i], caches.reconstruction(i),
                                           title=f"Beat {i + 1:,} ({verdict})", color=color), config=PLOT_CONFIG)
    if data.recording is not None:  # a beat cut from a recording: show where it sits, flagged neighbours marked
        st.plotly_chart(recording_view.context_figure(data.recording, i, errors > t, labels=data.data.labels,
                                                      colors=ev.colors), config=PLOT_CONFIG)


def _choose(ev: explore.ExplorerView, model: session.ActiveModel, data: session.ActiveData, errors: np.ndarray,
            t: float) -> int | None:
    """The viewer's controls; the chosen beat's index, or None (with a word why)."""
    browse_modes = tuple(beat_picker.BROWSE_MODES) if ev.labelled else ()
    disagree = st.session_state.get(DISAGREEMENTS)
    disagree = disagree if disagree and disagree.get("model") == model.id else None
    modes = beat_picker.PICK_MODES + browse_modes + ((DISAGREEMENTS,) if disagree else ())
    if st.session_state.get(MODE) not in modes:
        st.session_state[MODE] = modes[0]
    mode = st.selectbox("Which beat", modes, key=MODE)
    label = None
    if mode in browse_modes or mode == DISAGREEMENTS:
        return _browse(ev, mode, t, disagree)
    if mode == "by row":
        st.session_state[ROW] = min(max(int(st.session_state.get(ROW, 1)), 1), data.data.n_beats)
        st.number_input("Beat number (1 = first beat of the data)", min_value=1, max_value=data.data.n_beats,
                        step=1, key=ROW)
    elif data.data.has_labels:
        options = ev.view.options()
        if st.session_state.get("beat_class") not in options:  # new data, other labels
            st.session_state.beat_class = ev.view.shown[0] if ev.view.shown else options[0]
        label = st.selectbox("Class", options, format_func=lambda k: f"{ev.name(k)} ({k})", key="beat_class")
        if len(options) < len(ev.view.names):
            st.caption(f"{len(options):,} of {len(ev.view.names):,} classes listed; any beat: choose by row.")
    if mode == "random":
        st.button("Another random beat", key="beat_reroll", on_click=lambda: st.session_state.update(
            beat_seed=st.session_state.get("beat_seed", 0) + 1))
    i = beat_picker.pick_beat(errors, data.data.labels, label, mode, threshold=t,
                              seed=st.session_state.get("beat_seed", 0), row=st.session_state.get(ROW, 1))
    if i is None:
        st.info("No beat of that class.")
    return i


def _browse(ev: explore.ExplorerView, mode: str, t: float, disagree: dict | None) -> int | None:
    """Step through false alarms, missed anomalies or disagreements with Previous/Next; the beat index or None."""
    if mode == DISAGREEMENTS:
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
