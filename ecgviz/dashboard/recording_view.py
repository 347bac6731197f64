"""A recording as the dashboard shows it: a zoomable strip with R-peaks and classes, and one beat in context."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import plotly.graph_objects as go

from ecgviz.dashboard.text import plotly_text
from ecgviz.io.codes import as_text
from ecgviz.io.recording import EDF_SUFFIXES
from ecgviz.io.shipped import shipped_folder
from ecgviz.signal.beats import DROP_REASONS, POST_S, PRE_S, Beats
from ecgviz.signal.recording_files import RecordingSource

RECORDINGS_DIR_ENV = "ECGVIZ_RECORDINGS_DIR"
_DEFAULT_DIR = shipped_folder("data")
MAX_STRIP_POINTS = 200_000  # a strip longer than this is thinned by min/max pairs so the browser stays light
DROPPED_COLOR, FLAG_COLOR, PEAK_COLOR = "#7f7f7f", "#d62728", "#1f77b4"
CLASS_COLORS = {"N": "#1f77b4", "S": "#ff7f0e", "V": "#d62728", "F": "#9467bd", "Q": "#8c564b", "": "#1f77b4"}


@dataclass(frozen=True, eq=False)
class RecordingView:
    """What a session keeps of a recording: the filtered lead (float16: half the memory, ample for drawing)."""

    record: str
    lead: str
    fs: float
    signal: np.ndarray  # (n,) float16 filtered, baseline-removed signal
    peaks: np.ndarray  # (m,) int64 every R-peak
    kept: np.ndarray  # (n_beats,) int64 index into peaks of each beat
    dropped: dict[str, np.ndarray]  # reason -> indices into peaks
    peak_source: str
    leads: tuple[str, ...] = ()  # every lead of the recording, for the lead picker
    source: RecordingSource | None = None  # where to read it again (another lead, an analysis); None: nowhere

    @classmethod
    def from_beats(cls, beats: Beats, source: RecordingSource | None = None) -> RecordingView:
        """Keep only what drawing needs; the raw signal is not kept, the uploaded files only when given as source."""
        rec = beats.recording
        return cls(rec.record, rec.lead, rec.fs, beats.filtered.astype(np.float16), beats.peaks, beats.kept,
                   dict(beats.dropped), beats.peak_source, tuple(rec.leads), source)

    @property
    def duration_s(self) -> float:
        return len(self.signal) / self.fs

    def nbytes(self) -> int:
        """Memory held by the arrays."""
        return (self.signal.nbytes + self.peaks.nbytes + self.kept.nbytes
                + sum(v.nbytes for v in self.dropped.values()) + (self.source.nbytes() if self.source else 0))

    def dropped_rows(self) -> list[dict]:
        """One row per drop reason with its count, what it means and the first times it happened."""
        rows = []
        for reason, idx in self.dropped.items():
            first = ", ".join(f"{self.peaks[i] / self.fs:.1f}s" for i in idx[:5])
            rows.append({"reason": reason, "beats": len(idx), "meaning": DROP_REASONS[reason], "first at": first})
        return rows


def recordings_dir() -> Path:
    """The server-side folder whose recordings the Data page offers: $ECGVIZ_RECORDINGS_DIR, else the server's
    data folder ($ECGVIZ_DATA_DIR), else the bundled data/."""
    return Path(os.environ.get(RECORDINGS_DIR_ENV) or os.environ.get("ECGVIZ_DATA_DIR") or _DEFAULT_DIR)


def server_recordings(folder: Path | None = None) -> list[Path]:
    """Recordings in the folder and its subfolders: WFDB headers (.hea) and EDF/BDF files, by name."""
    folder = folder or recordings_dir()
    if not folder.is_dir():
        return []
    found = [p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in (".hea", *EDF_SUFFIXES)]
    return sorted(found, key=lambda p: str(p.relative_to(folder)))


def _window(view: RecordingView, start_s: float, span_s: float) -> tuple[int, int]:
    a = max(0, int(start_s * view.fs))
    return a, min(len(view.signal), a + max(1, int(span_s * view.fs)))


def strip_figure(view: RecordingView, labels: np.ndarray | None, start_s: float = 0.0, span_s: float = 30.0,
                 flagged: np.ndarray | None = None, colors: dict[str, str] | None = None,
                 focus: int | None = None) -> go.Figure:
    """The filtered lead from start_s for span_s seconds: beats marked by class, dropped beats in grey, flagged red;
    beat `focus` (if any) shaded over its window."""
    a, b = _window(view, start_s, span_s)
    y = view.signal[a:b].astype(np.float32)
    step = max(1, len(y) // MAX_STRIP_POINTS)
    t = (np.arange(a, b) / view.fs)[::step]
    fig = go.Figure(go.Scattergl(x=t, y=y[::step], mode="lines", line={"color": "#444", "width": 1},
                                 name=plotly_text(view.lead), hoverinfo="skip"))
    beat_peaks = view.peaks[view.kept]
    inside = np.flatnonzero((beat_peaks >= a) & (beat_peaks < b))
    classes = np.full(len(inside), "") if labels is None else as_text(np.asarray(labels)[inside])
    for cls in sorted(set(classes.tolist())):
        sel = inside[classes == cls]
        s = beat_peaks[sel]
        fig.add_trace(go.Scattergl(
            x=s / view.fs, y=view.signal[s].astype(np.float32), mode="markers+text" if len(sel) < 200 else "markers",
            text=[plotly_text(cls)] * len(sel), textposition="top center", name=plotly_text(f"R-peak {cls}".strip()),
            marker={"color": (colors or CLASS_COLORS).get(cls, PEAK_COLOR), "size": 7},
            customdata=sel, hovertemplate="beat %{customdata}<br>%{x:.2f} s<extra></extra>"))
    if flagged is not None:
        sel = inside[np.asarray(flagged)[inside]]
        s = beat_peaks[sel]
        fig.add_trace(go.Scattergl(x=s / view.fs, y=view.signal[s].astype(np.float32), mode="markers",
                                   name="flagged", marker={"color": FLAG_COLOR, "symbol": "circle-open", "size": 16,
                                                           "line": {"width": 2}}))
    lost = np.concatenate([v for v in view.dropped.values()]) if view.dropped else np.zeros(0, np.int64)
    s = view.peaks[lost]
    s = s[(s >= a) & (s < b)]
    if len(s):
        fig.add_trace(go.Scattergl(x=s / view.fs, y=view.signal[s].astype(np.float32), mode="markers",
                                   name="not cut", marker={"color": DROPPED_COLOR, "symbol": "x", "size": 8}))
    # one format for every tick (whole seconds from a 10 s window on), and room above the peaks for their letters
    lo, hi = (float(y.min()), float(y.max())) if len(y) else (0.0, 1.0)
    pad = (hi - lo) or 1.0
    fig.update_layout(height=340, margin={"l": 40, "r": 10, "t": 30, "b": 40}, xaxis_title="time (s)",
                      xaxis_tickformat=f",.{1 if span_s < 10 else 0}f",
                      yaxis_range=[lo - 0.05 * pad, hi + 0.2 * pad],
                      yaxis_title="filtered signal", legend={"orientation": "h", "y": -0.25, "x": 0},
                      title=plotly_text(f"{view.record}, lead {view.lead}: "
                                        f"{t[0] if len(t) else 0:.0f}-{b / view.fs:.0f} s"))
    if focus is not None and a <= view.peaks[view.kept[focus]] < b:  # a shape outside would stretch the axis
        _shade(fig, view, focus)
    return fig


def _shade(fig: go.Figure, view: RecordingView, beat: int) -> None:
    """Shade the window beat `beat` was cut from."""
    at = float(view.peaks[view.kept[beat]]) / view.fs
    fig.add_vrect(x0=at - PRE_S, x1=at + POST_S, fillcolor="#ff7f0e", opacity=0.15, line_width=0)


def context_figure(view: RecordingView, beat: int, flagged: np.ndarray | None = None, seconds: float = 4.0,
                   labels: np.ndarray | None = None, colors: dict[str, str] | None = None) -> go.Figure:
    """A few seconds of the filtered lead around one beat, its own window shaded, flagged neighbours marked."""
    peak = int(view.peaks[view.kept[beat]])
    start_s = max(0.0, peak / view.fs - seconds / 2)
    fig = strip_figure(view, labels, start_s, seconds, flagged, colors, focus=beat)
    fig.update_layout(height=240, title=plotly_text(f"Beat {beat + 1:,} in context: {view.record}, "
                                                    f"{peak / view.fs:.2f} s (sample {peak:,})"), showlegend=False)
    return fig


# -- reviewing the flagged beats: a table, stepping from flag to flag, paging along the recording ----------------
FLAGGED_COLUMNS = ("beat", "time", "time_s", "reason", "score", "symbol")
SHAPE_REASON = "shape"  # a beat detector judges the beat's shape alone; an analysis also gives "timing" or "both"


def clock(seconds: float) -> str:
    """Seconds as m:ss.s, or h:mm:ss.s from an hour on (a reviewer's position in a long recording)."""
    tenths = round(max(0.0, float(seconds)) * 10)
    s, tenth = divmod(tenths, 10)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}.{tenth}" if h else f"{m}:{s:02d}.{tenth}"


def beat_times(view: RecordingView) -> np.ndarray:
    """Time (s) of each cut beat's R-peak."""
    return view.peaks[view.kept] / view.fs


def flagged_table(view: RecordingView, scores: np.ndarray, threshold: float, *, reasons: np.ndarray | None = None,
                  symbols: np.ndarray | None = None):
    """One row per beat scored above the threshold, in time order: beat number (1 = first cut beat), time as a
    clock and in seconds, why it was flagged (`reasons`, else "shape"), its score and its annotation symbol."""
    import pandas as pd

    scores = np.asarray(scores, dtype=np.float64)
    idx = np.flatnonzero(scores > threshold)
    times = beat_times(view)[idx]
    return pd.DataFrame({
        "beat": idx + 1,
        "time": [clock(t) for t in times],
        "time_s": np.round(times, 3),
        "reason": (np.asarray(reasons, dtype=object)[idx] if reasons is not None
                   else np.full(len(idx), SHAPE_REASON, dtype=object)),
        "score": np.round(scores[idx], 4),
        "symbol": (np.asarray(symbols, dtype=object)[idx] if symbols is not None
                   else np.full(len(idx), "", dtype=object)),
    }, columns=list(FLAGGED_COLUMNS))


def step_flag(flagged: np.ndarray, current: int | None, direction: int) -> int | None:
    """The flagged beat after (direction +1) or before (-1) beat `current`, wrapping round; None when none is."""
    idx = np.flatnonzero(np.asarray(flagged, dtype=bool))
    if not len(idx):
        return None
    if current is None:
        return int(idx[0] if direction > 0 else idx[-1])
    if direction > 0:
        pos = np.searchsorted(idx, current, side="right")
        return int(idx[pos % len(idx)])
    pos = np.searchsorted(idx, current, side="left") - 1
    return int(idx[pos % len(idx)])


def last_start(view: RecordingView, span_s: float) -> float:
    """The latest window start (whole seconds) that still shows `span_s` seconds of the recording."""
    return float(max(0.0, np.floor(view.duration_s - span_s)))


def step_page(view: RecordingView, start_s: float, span_s: float, direction: int) -> float:
    """The window start one page (`span_s` seconds) later (direction +1) or earlier (-1), kept inside the recording."""
    return float(min(max(0.0, float(start_s) + direction * float(span_s)), last_start(view, span_s)))


def page_of(view: RecordingView, start_s: float, span_s: float) -> tuple[int, int]:
    """(page number from 1, pages in all) of the window starting at `start_s`."""
    pages = max(1, int(np.ceil(view.duration_s / span_s)))
    return min(pages, int(start_s // span_s) + 1 if start_s < last_start(view, span_s) else pages), pages


def start_around(view: RecordingView, beat: int, span_s: float) -> float:
    """The window start (whole seconds, inside the recording) that puts beat `beat` in the middle of the window."""
    centre = float(beat_times(view)[beat])
    return float(min(max(0.0, np.floor(centre - span_s / 2)), last_start(view, span_s)))
