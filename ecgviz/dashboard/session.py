"""What one dashboard session works with: the active data and model, loaded, scored and evaluated."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ecgviz.checkpoint.store import Checkpoint, load_checkpoint, to_bytes
from ecgviz.dashboard import classes, config, explore
from ecgviz.dashboard.recording_view import RecordingView
from ecgviz.io.data import BeatData, DataError, fingerprint, load_ecg5000, load_files, load_uploads
from ecgviz.signal.beats import Beats

BUILTIN_NAME = "ECG5000 (built-in)"


@dataclass(frozen=True, eq=False)
class ActiveData:
    """A loaded data set with the id that keys every cached result computed from it."""

    data: BeatData
    fingerprint: str
    name: str
    names: tuple[tuple[str, str], ...] = ()  # display names the user gave classes on the Data page
    recording: RecordingView | None = None  # beats cut from a recording: its filtered lead, R-peaks and drops

    @property
    def labels(self) -> list[str]:
        """Labels present, in display order."""
        return list(self.data.label_counts())

    @property
    def class_names(self) -> dict[str, str]:
        """Label -> display name: the user's names over the file's."""
        return {**dict(self.data.class_names), **dict(self.names)}

    def class_name(self, label: str) -> str:
        """Display name of a label."""
        return self.class_names.get(label, f"Class {label}")

    def class_view(self, normal_labels: Sequence[str]) -> classes.ClassView:
        """Names, colours and drawn groups of the classes when `normal_labels` are the normal ones."""
        return classes.class_view(self.data.label_counts(), self.class_names, normal_labels)

    def with_names(self, names: dict[str, str]) -> ActiveData:
        """A copy whose classes show under `names` (blank names fall back to the file's)."""
        clean = {str(k): " ".join(str(v).split())[:60] for k, v in names.items() if str(k) in self.data.class_names}
        return replace(self, names=tuple((k, v) for k, v in clean.items() if v and v != self.data.class_names[k]))

    @property
    def names_key(self) -> str:
        """Short id of the display names, for cache keys."""
        return hashlib.sha256(repr(self.names).encode()).hexdigest()[:8]


@dataclass(frozen=True, eq=False)
class ActiveModel:
    """A loaded checkpoint; `id` (a content hash) keys cached scores, so equal files share them."""

    ckpt: Checkpoint
    id: str
    name: str
    source: str  # "shipped", "saved", "uploaded" or "trained"
    path: Path | None = None
    raw: bytes | None = None  # kept for uploads, which exist nowhere else

    def checkpoint_bytes(self) -> bytes:
        """This model as a checkpoint file, whatever has been saved under its file name since it was loaded."""
        if self.raw is not None:
            return self.raw
        if self.path is not None:
            try:
                raw = self.path.read_bytes()
            except OSError:
                raw = b""
            # read once and checked against the hash it was loaded with: a file replaced since (a save under the
            # same name, a copy by hand) holds another model, so this one is written out afresh instead
            if _content_id(raw) == self.id:
                return raw
        return to_bytes(self.ckpt)

    def download_name(self) -> str:
        """File name for a download of this checkpoint."""
        return self.path.name if self.path is not None else f"{safe_name(self.name) or 'model'}.pt"


def make_data(data: BeatData, name: str) -> ActiveData:
    """Wrap loaded beats with their fingerprint."""
    return ActiveData(data=data, fingerprint=fingerprint(data), name=name)


def builtin_data() -> ActiveData:
    """The bundled ECG5000 set."""
    return make_data(load_ecg5000(), BUILTIN_NAME)


def data_from_uploads(files: Sequence[tuple[str, bytes]]) -> ActiveData:
    """Parse uploaded (name, bytes) files into one data set; raises DataError with the reason."""
    data = load_uploads(files)
    return make_data(data, " + ".join(name for name, _ in files))


def data_from_recording(beats: Beats, name: str) -> ActiveData:
    """Beats cut from a recording, with what the strip and the beat-in-context views need."""
    return ActiveData(data=beats.data, fingerprint=fingerprint(beats.data), name=name,
                      recording=RecordingView.from_beats(beats))


def data_from_folder(name: str) -> ActiveData:
    """Load one file of the server's data folder by name; only names folder_files() lists are accepted."""
    if name not in config.folder_files():
        raise DataError(f"{name}: not a data file in the server's data folder")
    return make_data(load_files([config.data_folder() / name]), name)


def _content_id(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:16]


def model_from_path(path: str | os.PathLike, source: str = "saved") -> ActiveModel:
    """Load a checkpoint file; raises CheckpointError with the reason."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError:
        return saved_model(path, load_checkpoint(path), b"", source)  # load_checkpoint says why it cannot be read
    # the bytes read once are both loaded and hashed: a file replaced meanwhile cannot give one model another's id
    return saved_model(path, load_checkpoint(raw, name=path.name), raw, source)


def saved_model(path: Path, ckpt: Checkpoint, raw: bytes, source: str) -> ActiveModel:
    """A checkpoint read from `path` as the bytes `raw`, keyed by their hash."""
    return ActiveModel(ckpt=ckpt, id=_content_id(raw), name=ckpt.name or path.stem, source=source, path=path)


def model_from_bytes(raw: bytes, file_name: str) -> ActiveModel:
    """Load an uploaded checkpoint; raises CheckpointError with the reason."""
    ckpt = load_checkpoint(bytes(raw), name=file_name)
    return ActiveModel(ckpt=ckpt, id=_content_id(bytes(raw)), name=ckpt.name or Path(file_name).stem,
                       source="uploaded", raw=bytes(raw))


def default_normal_labels(data: ActiveData, model: ActiveModel | None = None) -> list[str]:
    """The model's normal labels when the data has them all, else ECG5000's class 1, else the commonest label."""
    counts = data.data.label_counts()
    if not counts:
        return []
    if model is not None and model.ckpt.split.normal_labels and set(model.ckpt.split.normal_labels) <= set(counts):
        return list(model.ckpt.split.normal_labels)
    if "1" in counts and data.class_name("1") == "Normal":
        return ["1"]
    return [max(counts, key=counts.get)]


def same_data(model: ActiveModel, data: ActiveData) -> bool:
    """True when the model's split indices refer to this very data set."""
    return model.ckpt.data_fingerprint == data.fingerprint and model.ckpt.split.n_beats == data.data.n_beats


def scores(model: ActiveModel, data: ActiveData) -> np.ndarray:
    """The model's score (n,) of every beat; CheckpointError for beats of another length."""
    from ecgviz.pipeline.protocol import score_beats  # deferred: torch is only needed once a model is used

    return score_beats(model.ckpt, data.data.X)


def reconstruction(model: ActiveModel, data: ActiveData, index: int) -> np.ndarray:
    """The reconstruction (T,) of one beat: the dashboard keeps scores for all beats, reconstructions for none."""
    from ecgviz.pipeline.protocol import reconstruct_beats

    return reconstruct_beats(model.ckpt, data.data.X[index:index + 1])[0]


def explorer_view(model: ActiveModel, data: ActiveData, normal_labels: Sequence[str],
               errors: np.ndarray) -> explore.ExplorerView:
    """The explorer view of these errors, leaving out beats the model trained on."""
    from ecgviz.detectors.config import DEFAULT_PERCENTILE

    return explore.explorer_view(errors, data.data.labels, data.class_names, normal_labels,
                            split=model.ckpt.split, same_data=same_data(model, data), percentile=DEFAULT_PERCENTILE)


def model_summary(model: ActiveModel) -> dict:
    """One row for the list of models: what it is, how it was split and its stored held-out metrics."""
    ckpt, m = model.ckpt, model.ckpt.metrics or {}
    ci = (m.get("intervals_95") or {}).get("auroc")
    return {
        "name": model.name,
        "detector": ckpt.description,
        "AUROC": m.get("auroc"),
        "AUROC 95% CI": "—" if not ci else f"[{ci[0]:.4f}, {ci[1]:.4f}]",
        "AP": m.get("average_precision"),
        "balanced accuracy": m.get("balanced_accuracy"),
        "threshold": ckpt.threshold,
        "threshold rule": ckpt.threshold_rule,
        "split": ckpt.split.describe(),
        "file": model.path.name if model.path is not None else "",
    }


def safe_name(name: str) -> str:
    """A name reduced to letters, digits, '_', '-' and '.', usable as a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name.strip()).strip("._")[:64]


