"""What one dashboard session works with: the active data and model, loaded, scored and evaluated."""

from __future__ import annotations

import functools
import hashlib
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ecgviz.checkpoint.card import CheckpointCard, card_of
from ecgviz.dashboard import classes, config, disk_cache, explore
from ecgviz.dashboard.recording_view import RecordingView
from ecgviz.io.data import BeatData, DataError, bundled_paths, fingerprint, load_ecg5000, load_files, load_uploads
from ecgviz.signal.beats import Beats

if TYPE_CHECKING:  # torch comes with the checkpoint module: imported when a detector is first needed
    from ecgviz.checkpoint.store import Checkpoint

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


class ActiveModel:
    """A checkpoint in use; `id` (a content hash) keys cached scores, so equal files share them.

    `card` holds what the pages show of it; `ckpt`, the checkpoint with its detector, is read on first use when
    the model was made from a card kept on disk (deferred()), so a page that needs no detector needs no torch.
    """

    def __init__(self, ckpt: Checkpoint | None = None, id: str = "", name: str = "", source: str = "",
                 path: Path | None = None, raw: bytes | None = None, *, card: CheckpointCard | None = None,
                 sha256: str = "") -> None:
        if ckpt is None and card is None:
            raise TypeError("an ActiveModel needs a checkpoint or a card")
        self.id, self.name, self.source, self.path = id, name, source, path
        self.raw = raw  # kept for uploads, which exist nowhere else
        self.sha256 = sha256  # of the checkpoint file's bytes: names its card and scores on disk ("" for none)
        self._ckpt = ckpt
        self._card = card
        self._pending: bytes | None = None  # the file's bytes, read once, until the checkpoint is built from them
        self._lock = threading.Lock()

    @classmethod
    def deferred(cls, card: CheckpointCard, raw: bytes, sha256: str, name: str, source: str,
                 path: Path | None) -> ActiveModel:
        """A model of the checkpoint file `raw`, whose detector is read from those bytes on first use."""
        model = cls(card=card, id=_model_id(sha256), name=name, source=source, path=path, sha256=sha256)
        model._pending = bytes(raw)
        return model

    @property
    def card(self) -> CheckpointCard:
        """What the checkpoint says about itself, without its detector."""
        if self._card is None:
            self._card = card_of(self._ckpt)
        return self._card

    @property
    def ckpt(self) -> Checkpoint:
        """The checkpoint with its fitted detector (read now, when it was deferred)."""
        if self._ckpt is None:
            with self._lock:  # models are shared between sessions: one of them reads the file
                if self._ckpt is None:
                    self._ckpt = _load(self._pending, self.path.name if self.path else self.name)
                    self._pending = None
        return self._ckpt

    @property
    def loaded(self) -> bool:
        """True once the detector is in memory."""
        return self._ckpt is not None

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
            if _model_id(_sha256(raw)) == self.id:
                return raw
        from ecgviz.checkpoint.store import to_bytes

        return to_bytes(self.ckpt)

    def download_name(self) -> str:
        """File name for a download of this checkpoint."""
        return self.path.name if self.path is not None else f"{safe_name(self.name) or 'model'}.pt"


def make_data(data: BeatData, name: str) -> ActiveData:
    """Wrap loaded beats with their fingerprint."""
    return ActiveData(data=data, fingerprint=fingerprint(data), name=name)


def builtin_data() -> ActiveData:
    """The bundled ECG5000 set."""
    return make_data(_builtin_beats(), BUILTIN_NAME)


@functools.lru_cache(maxsize=1)
def _builtin_beats() -> BeatData:
    # parsing the ARFF text takes a third of a second; the copy parsed at an earlier start loads in milliseconds
    try:
        key = disk_cache.files_key(bundled_paths())
    except OSError:
        return load_ecg5000()  # which says what cannot be read
    data = disk_cache.load_beats(key)
    if data is None:
        data = load_ecg5000()
        disk_cache.save_beats(key, data)
    return data


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


def _sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _model_id(sha256: str) -> str:
    """A model's id: the start of its file's hash, which keys the scores cached in memory."""
    return sha256[:16]


def model_from_path(path: str | os.PathLike, source: str = "saved") -> ActiveModel:
    """A checkpoint file as a model; raises CheckpointError with the reason.

    A file whose card is kept on disk (it was read whole before) is not read again until its detector is needed.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError:
        return saved_model(path, _load(path, path.name), b"", source)  # load_checkpoint says why it cannot be read
    # the bytes read once are both loaded and hashed: a file replaced meanwhile cannot give one model another's id
    sha = _sha256(raw)
    card = disk_cache.load_card(sha)
    if card is not None:
        return ActiveModel.deferred(card, raw, sha, card.name or path.stem, source, path)
    return saved_model(path, _load(raw, path.name), raw, source)


def saved_model(path: Path, ckpt: Checkpoint, raw: bytes, source: str) -> ActiveModel:
    """A checkpoint read from `path` as the bytes `raw`, keyed by their hash; its card is kept for the next start."""
    sha = _sha256(raw)
    model = ActiveModel(ckpt=ckpt, id=_model_id(sha), name=ckpt.name or path.stem, source=source, path=path,
                        sha256=sha if raw else "")
    if raw:
        disk_cache.save_card(sha, model.card)
    return model


def model_from_bytes(raw: bytes, file_name: str) -> ActiveModel:
    """Load an uploaded checkpoint; raises CheckpointError with the reason."""
    raw = bytes(raw)
    ckpt = _load(raw, file_name)
    sha = _sha256(raw)
    return ActiveModel(ckpt=ckpt, id=_model_id(sha), name=ckpt.name or Path(file_name).stem, source="uploaded", raw=raw,
                       sha256=sha)


def _load(source: bytes | Path | None, name: str) -> Checkpoint:
    """The checkpoint in `source`, on the threads a dashboard server's own work gets (this may import torch)."""
    from ecgviz.checkpoint.store import load_checkpoint

    config.limit_torch_threads()
    return load_checkpoint(source, name=name)


def default_normal_labels(data: ActiveData, model: ActiveModel | None = None) -> list[str]:
    """The model's normal labels when the data has them all, else ECG5000's class 1, else the commonest label."""
    counts = data.data.label_counts()
    if not counts:
        return []
    if model is not None and model.card.split.normal_labels and set(model.card.split.normal_labels) <= set(counts):
        return list(model.card.split.normal_labels)
    if "1" in counts and data.class_name("1") == "Normal":
        return ["1"]
    return [max(counts, key=counts.get)]


def same_data(model: ActiveModel, data: ActiveData) -> bool:
    """True when the model's split indices refer to this very data set."""
    return model.card.data_fingerprint == data.fingerprint and model.card.split.n_beats == data.data.n_beats


def scores(model: ActiveModel, data: ActiveData) -> np.ndarray:
    """The model's score (n,) of every beat; CheckpointError for beats of another length."""
    if model.sha256:  # scored before, by this server or an earlier run of it
        kept = disk_cache.load_scores(model.sha256, data.fingerprint, data.data.n_beats)
        if kept is not None:
            return kept
    from ecgviz.pipeline.protocol import score_beats  # deferred: torch is only needed once a model is used

    out = score_beats(model.ckpt, data.data.X)
    if model.sha256:
        disk_cache.save_scores(model.sha256, data.fingerprint, out)
    return out


def reconstruction(model: ActiveModel, data: ActiveData, index: int) -> np.ndarray:
    """The reconstruction (T,) of one beat: the dashboard keeps scores for all beats, reconstructions for none."""
    from ecgviz.pipeline.protocol import reconstruct_beats

    return reconstruct_beats(model.ckpt, data.data.X[index:index + 1])[0]


def explorer_view(model: ActiveModel, data: ActiveData, normal_labels: Sequence[str],
               errors: np.ndarray) -> explore.ExplorerView:
    """The explorer view of these errors, leaving out beats the model trained on."""
    from ecgviz.detectors.config import DEFAULT_PERCENTILE

    return explore.explorer_view(errors, data.data.labels, data.class_names, normal_labels,
                            split=model.card.split, same_data=same_data(model, data), percentile=DEFAULT_PERCENTILE)


def model_summary(model: ActiveModel) -> dict:
    """One row for the list of models: what it is, how it was split and its stored held-out metrics."""
    ckpt, m = model.card, model.card.metrics or {}
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


