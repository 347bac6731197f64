"""Recordings into the session: one lead cut from where the recording came from, as active data that remembers
that source, so another lead can be cut or the recording analysed without a new upload."""

from __future__ import annotations

from ecgviz.dashboard import session
from ecgviz.dashboard.recording_view import RecordingView
from ecgviz.io.data import fingerprint
from ecgviz.signal.beats import Beats, cut_beats
from ecgviz.signal.recording_files import RecordingSource

__all__ = ["from_beats", "recording_data"]


def from_beats(beats: Beats, source: RecordingSource | None, name: str) -> session.ActiveData:
    """Beats cut from a recording as active data, with the strip's view and the source kept."""
    return session.ActiveData(data=beats.data, fingerprint=fingerprint(beats.data), name=name,
                              recording=RecordingView.from_beats(beats, source))


def recording_data(source: RecordingSource, lead: str | None, length: int) -> session.ActiveData:
    """Read one lead of the source (None: the first ECG lead) and cut beats of `length` samples; DataError if not."""
    return from_beats(cut_beats(source.read(lead), length), source, source.name)
