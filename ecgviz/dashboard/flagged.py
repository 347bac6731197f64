"""The flagged beats, counted and listed alike on every page.

Counts: the held-out count comes first everywhere (the beats the model never trained on, the explorer's metrics);
any other count says what it includes. Lists: the explorer's table of flagged beats, whose rows are chosen by a
Query (split roles, outcomes, classes, order) and whose columns are Column objects: a page shows COLUMNS, plus
RECORDING_COLUMNS for beats cut from a recording, and a new column is one more Column in those tuples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ecgviz.dashboard.explore import ExplorerView
from ecgviz.evaluation.split import ROLES

HELD_OUT = ROLES[2]
# rows a table sends to the browser (30-130 bytes each, again on every slider step); the order decides which, the
# caption says how many more
MAX_ROWS = 1_000
# outcome codes of evaluated beats, as the table words them (a flagged beat is caught or a false alarm)
OUTCOME_WORDS = {"TP": "caught", "FP": "false alarm", "TN": "passed", "FN": "missed"}
NOT_IN_METRICS = "not in the metrics"
ROLE_WORDS = {"train": "training", "validation": "validation", "not used": "unused"}  # "... plus 50 training beats"


@dataclass(frozen=True)
class FlagCounts:
    """Flagged beats at one threshold: among the held-out beats (the explorer's count) and among all of them."""

    threshold: float
    held_out: int
    held_out_total: int
    all: int
    all_total: int
    by_role: dict[str, int]  # flagged beats per split role

    def headline(self) -> str:
        """The sentence every page that counts flagged beats states first."""
        every = self.held_out_total == self.all_total
        what = "beats (all held out: the model never trained on them)" if every else "held-out beats"
        return (f"{self.held_out:,} of {self.held_out_total:,} {what} are flagged as abnormal at threshold "
                f"{self.threshold:.4g}.")

    def others(self) -> str | None:
        """The count over every beat, with what it adds to the held-out one; None when they are the same."""
        if self.all_total == self.held_out_total:
            return None
        extra = [f"{n:,} {ROLE_WORDS.get(role, role)}" for role, n in self.by_role.items() if role != HELD_OUT and n]
        added = f": the held-out {self.held_out:,} plus {_join(extra)} beats" if extra else ""
        return (f"Counting every beat of the data, training and validation beats included: {self.all:,} of "
                f"{self.all_total:,} are flagged{added}, which the metrics leave out.")


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def counts(ev: ExplorerView, threshold: float) -> FlagCounts:
    """How many beats are flagged at `threshold`, held-out first."""
    above = ev.errors > threshold
    held = held_out_mask(ev)
    by_role = {role: int(np.count_nonzero(above & (ev.roles == role))) for role in ROLES}
    return FlagCounts(threshold=float(threshold), held_out=int(np.count_nonzero(above & held)),
                      held_out_total=int(np.count_nonzero(held)), all=int(np.count_nonzero(above)),
                      all_total=len(ev.errors), by_role=by_role)


def stored_counts(stored: dict) -> tuple[int, int] | None:
    """(flagged, held-out beats) at a checkpoint's own threshold, from the metrics stored with it; None without them.
    Its rates are counts over counts, so the counts come back exactly."""
    try:
        n_normal, n_anomaly = int(stored["n_normal"]), int(stored["n_anomaly"])
        if "n_flagged" in stored:
            return int(stored["n_flagged"]), n_normal + n_anomaly
        fp = n_normal - round(float(stored["normal_recall"]) * n_normal)
        return round(float(stored["anomaly_recall"]) * n_anomaly) + fp, n_normal + n_anomaly
    except (KeyError, TypeError, ValueError):
        return None


def held_out_mask(ev: ExplorerView) -> np.ndarray:
    """True (n,) for the beats the metrics are computed on."""
    mask = np.zeros(len(ev.errors), dtype=bool)
    mask[ev.eval_idx] = True
    return mask


@dataclass(frozen=True)
class Query:
    """Which flagged beats a table lists, and in which order."""

    roles: tuple[str, ...] = (HELD_OUT,)  # split roles listed; () lists every role
    outcomes: tuple[str, ...] = ()  # "TP" (caught), "FP" (false alarm); () lists both (and unevaluated beats)
    labels: tuple[str, ...] = ()  # classes listed; () lists every class
    order: str = "margin"  # a number Column's key: the table follows it (see Column.descending)
    reasons: tuple[str, ...] = ()  # why a beat is flagged ("shape", "timing", "both"); () lists every reason


@dataclass(frozen=True)
class Rows:
    """The beats a table lists (indices into the data, in the table's order) and what their columns read."""

    idx: np.ndarray
    n_matching: int  # beats the query matches (more than len(idx) when the table is cut at MAX_ROWS)
    ev: ExplorerView
    data: object  # ecgviz.io.data.BeatData
    threshold: float
    outcome: np.ndarray = field(repr=False)  # (len(idx),) TP/FP/TN/FN, '' for beats not in the metrics
    reason: np.ndarray | None = field(default=None, repr=False)  # (len(idx),) why each is flagged, if the model says


@dataclass(frozen=True)
class Column:
    """One column of the table: its key and title, its values for the listed beats, and how a page shows them."""

    key: str
    title: str
    values: Callable[[Rows], np.ndarray]
    kind: str = "text"  # "int", "float" or "text"
    help: str = ""
    descending: bool = True  # the order a table sorted by it takes: largest first (errors), else first first


def _class_text(rows: Rows) -> np.ndarray:
    labels = rows.data.labels
    if labels is None:
        return np.full(len(rows.idx), "", dtype=object)
    return np.array([f"{rows.ev.name(k)} ({k})" for k in np.asarray(labels, dtype=object)[rows.idx]], dtype=object)


def _outcome_text(rows: Rows) -> np.ndarray:
    if rows.ev.is_anomaly is None:  # no labels: nothing is known to be right or wrong
        return np.full(len(rows.idx), "", dtype=object)
    return np.array([OUTCOME_WORDS[o] if o else NOT_IN_METRICS for o in rows.outcome], dtype=object)


COLUMNS: tuple[Column, ...] = (
    Column("beat", "beat", lambda r: r.idx + 1, "int", "the beat's number in the data (1 = first); choose a row to "
                                                     "open it in the viewer below", descending=False),
    Column("source", "file", lambda r: np.asarray(r.data.sources, dtype=object)[r.idx], help="the file it came from"),
    Column("row", "row", lambda r: np.asarray(r.data.rows, dtype=np.int64)[r.idx], "int", "its row in that file"),
    Column("class", "class", _class_text, help="its label, with the name shown everywhere"),
    Column("error", "error", lambda r: r.ev.errors[r.idx], "float", "its reconstruction error"),
    Column("margin", "margin", lambda r: r.ev.errors[r.idx] - r.threshold, "float",
           "how far its error is above the threshold, in the error's unit"),
    Column("role", "split role", lambda r: np.asarray(r.ev.roles, dtype=object)[r.idx],
           help="held-out: in the metrics; train / validation: the model learned or early-stopped on it"),
    Column("outcome", "outcome", _outcome_text, help="caught: an abnormal beat flagged; false alarm: a normal beat "
                                                     "flagged"),
)
# beats cut from a recording also say where they sit in it
RECORDING_COLUMNS: tuple[Column, ...] = (
    Column("time", "time (s)", lambda r: np.asarray(r.data.origin.times(), dtype=np.float64)[r.idx], "float",
           "the R-peak's time in the recording, in seconds", descending=False),
)


# a detector whose score has named parts (the recording analysis: shape and timing) says which part flagged a beat
REASON_COLUMN = Column("reason", "reason", lambda r: r.reason, help="which part of the score passed the threshold: "
                       "shape (unlike the recording's median beat), timing (premature against the local RR) or both")


def columns_for(data, reasons: np.ndarray | None = None) -> tuple[Column, ...]:
    """The columns a table of these beats shows (a reason column when the model gives reasons)."""
    recording = RECORDING_COLUMNS if getattr(data, "origin", None) is not None else ()
    return COLUMNS + recording + ((REASON_COLUMN,) if reasons is not None else ())


def select(ev: ExplorerView, data, threshold: float, query: Query = Query(), limit: int = MAX_ROWS,
           reasons: np.ndarray | None = None) -> Rows:
    """The flagged beats `query` asks for in its order, at most `limit` of them; `reasons` (one per beat of the
    data, from the detector at this threshold) adds why each is flagged and lets the query filter by it."""
    mask = ev.errors > threshold
    if query.reasons and reasons is not None:
        mask &= np.isin(np.asarray(reasons, dtype=object), list(query.reasons))
    if query.roles == (HELD_OUT,):
        mask &= held_out_mask(ev)
    elif query.roles:
        mask &= np.isin(np.asarray(ev.roles, dtype=object), list(query.roles))
    if query.labels and data.labels is not None:
        mask &= np.isin(np.asarray(data.labels, dtype=object), list(query.labels))
    idx = np.flatnonzero(mask)
    outcome = _outcomes(ev, idx)
    if query.outcomes:
        keep = np.isin(outcome, list(query.outcomes))
        idx, outcome = idx[keep], outcome[keep]
    n = len(idx)
    key = {c.key: c for c in COLUMNS + RECORDING_COLUMNS}.get(query.order)
    if key is None or key.kind == "text":
        raise ValueError(f"cannot order by {query.order!r}: use a number column")
    base = Rows(idx, n, ev, data, float(threshold), outcome)
    values = np.asarray(key.values(base), dtype=np.float64)
    order = np.argsort(-values if key.descending else values, kind="stable")[:limit]
    idx = idx[order]
    reason = None if reasons is None else np.asarray(reasons, dtype=object)[idx]
    return Rows(idx, n, ev, data, float(threshold), outcome[order], reason)


def _outcomes(ev: ExplorerView, idx: np.ndarray) -> np.ndarray:
    """TP/FP of the flagged beats `idx` that are evaluated, '' for the others (none without labels)."""
    out = np.full(len(idx), "", dtype=object)
    if ev.is_anomaly is None or not len(ev.eval_idx):
        return out
    order = np.argsort(ev.eval_idx, kind="stable")
    sorted_idx = ev.eval_idx[order]
    pos = np.clip(np.searchsorted(sorted_idx, idx), 0, len(sorted_idx) - 1)
    evaluated = sorted_idx[pos] == idx
    anomaly = ev.is_anomaly[order][pos]
    out[evaluated] = np.where(anomaly[evaluated], "TP", "FP")
    return out


def table(rows: Rows, columns: Sequence[Column]) -> dict[str, np.ndarray]:
    """The columns' values for the listed beats, by title."""
    return {c.title: c.values(rows) for c in columns}


def frame(rows: Rows, columns: Sequence[Column]):
    """table() as a compact pandas DataFrame: text columns as categories, so a page sends each word once."""
    import pandas as pd

    out = pd.DataFrame(table(rows, columns))
    for c in columns:
        if c.kind == "text":
            out[c.title] = out[c.title].astype("category")
        elif c.kind == "int":
            out[c.title] = out[c.title].astype("int64")
    return out
