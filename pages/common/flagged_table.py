"""The explorer's table of flagged beats: filters, a sortable table (ecgviz.dashboard.flagged makes its rows and
columns), and a chosen row opened in the beat viewer."""

from __future__ import annotations

import streamlit as st

from ecgviz.dashboard import explore, flagged, session
from pages.common import beat_viewer

KEY = "flagged_table"
_SHOWN = "_flagged_table_beats"  # the beat indices of the rows on screen, in order, for the selection callback
ROLE_CHOICES = ("held-out", "train", "validation", "not used")
OUTCOME_CHOICES = {"TP": "caught (abnormal)", "FP": "false alarm (normal)"}
REASON_CHOICES = ("shape", "timing", "both")
ORDERS = {"margin": "largest margin first", "beat": "in the data's order", "time": "in time order"}


def _open_chosen() -> None:
    rows = st.session_state[KEY].selection.rows
    shown = st.session_state.get(_SHOWN)
    if rows and shown is not None and rows[0] < len(shown):
        beat_viewer.open_beat(int(shown[rows[0]]))


def show(ev: explore.ExplorerView, data: session.ActiveData, model: session.ActiveModel, t: float,
         counts: flagged.FlagCounts) -> None:
    """Filters and the table; choosing a row opens that beat in the viewer below."""
    st.subheader("Flagged beats", anchor="flagged-beats")
    reasons = model.ckpt.detector.reasons(data.data.X, t)  # None unless the score has named parts
    columns = flagged.columns_for(data.data, reasons)
    roles_col, outcome_col, class_col, order_col = st.columns([1.2, 1.2, 2, 1])
    roles = roles_col.multiselect("Split roles", ROLE_CHOICES, default=["held-out"], key="flagged_roles",
                                  help="held-out: the beats the metrics count (the model never trained on them)")
    outcomes = ()
    if ev.labelled:
        chosen = outcome_col.multiselect("Outcome", list(OUTCOME_CHOICES), format_func=OUTCOME_CHOICES.get,
                                         key="flagged_outcomes", placeholder="both",
                                         help="caught: an abnormal beat flagged; false alarm: a normal beat flagged")
        outcomes = tuple(chosen)
    labels = ()
    if data.data.has_labels and ev.view is not None:
        labels = tuple(class_col.multiselect("Classes", ev.view.options(), format_func=lambda k: f"{ev.name(k)} ({k})",
                                             key="flagged_classes", placeholder="every class"))
    orders = [k for k in ORDERS if k in {c.key for c in columns}]
    order = order_col.selectbox("Order", orders, format_func=ORDERS.get, key="flagged_order",
                                help="which beats come first (and stay when the table is cut); click a column's "
                                     "title to sort what is shown")
    why = ()
    if reasons is not None:
        why = tuple(st.multiselect("Reasons", REASON_CHOICES, key="flagged_reasons", placeholder="every reason",
                                   help="shape: unlike the recording's median beat; timing: premature against the "
                                        "local RR; both"))
    query = flagged.Query(roles=tuple(roles), outcomes=outcomes, labels=labels, order=order, reasons=why)
    rows = flagged.select(ev, data.data, t, query, reasons=reasons)
    st.session_state[_SHOWN] = rows.idx
    what = "held-out" if query.roles == (flagged.HELD_OUT,) else "matching"
    listed = (f"{len(rows.idx):,} of the {rows.n_matching:,} {what} flagged beats, the first by this order"
              if len(rows.idx) < rows.n_matching else f"{rows.n_matching:,} {what} flagged beats")
    note = " (the explorer's count)" if not labels and not outcomes and rows.n_matching == counts.held_out \
        and query.roles == (flagged.HELD_OUT,) else ""
    st.caption(f"{listed}{note}. Choose a row to open the beat below.")
    config = {c.title: _column_config(c) for c in columns}
    st.dataframe(flagged.frame(rows, columns), hide_index=True, height=300, key=KEY,
                 on_select=_open_chosen, selection_mode="single-row", column_config=config)


def _column_config(column: flagged.Column):
    if column.kind == "int":
        return st.column_config.NumberColumn(column.title, help=column.help, format="%d")
    if column.kind == "float":
        return st.column_config.NumberColumn(column.title, help=column.help, format="%.3f")
    return st.column_config.TextColumn(column.title, help=column.help)
