"""What one dashboard session works with: the active data, the active model, and the actions that change them."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ecgviz.checkpoint.files import MAX_SUFFIX, NameInUse, Reservation, reserve
from ecgviz.checkpoint.store import CHECKPOINT_DIR, SHIPPED_CHECKPOINT, Checkpoint, load_checkpoint, to_bytes
from ecgviz.dashboard import classes, explore
from ecgviz.dashboard.jobs import TrainingJob
from ecgviz.dashboard.progress import Stopping
from ecgviz.dashboard.recording_view import RecordingView
from ecgviz.errors import UserError
from ecgviz.io.data import BeatData, DataError, fingerprint, load_ecg5000, load_files, load_uploads
from ecgviz.signal.beats import Beats

BUILTIN_NAME = "ECG5000 (built-in)"
# Environment overrides so a deployment (or a test) can start from another model or save elsewhere.
CHECKPOINT_ENV = "ECGVIZ_CHECKPOINT"
CHECKPOINT_DIR_ENV = "ECGVIZ_CHECKPOINT_DIR"
TORCH_THREADS_ENV = "ECGVIZ_TORCH_THREADS"
# A folder on the server whose files any session may load by name: data too big to upload (a beat pack of a
# million beats is 560 MB) is put there once and read from disk, never through the browser.
DATA_DIR_ENV = "ECGVIZ_DATA_DIR"
DATA_SUFFIXES = (".npz", ".arff", ".tsv", ".csv", ".txt")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


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


def limit_torch_threads() -> int:
    """Torch threads for a dashboard server: $ECGVIZ_TORCH_THREADS, else 1.

    Sessions already share the cores; torch's own threads on top of them oversubscribe the CPU and spin
    (training 3 epochs took 45 s instead of 5 s beside eight busy sessions on 2 cores).
    """
    import torch

    raw = os.environ.get(TORCH_THREADS_ENV, "")
    n = int(raw) if raw.isdigit() and int(raw) > 0 else 1
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


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


def data_folder() -> Path | None:
    """The server's data folder ($ECGVIZ_DATA_DIR), or None when none is set or it is not a folder."""
    raw = os.environ.get(DATA_DIR_ENV)
    return Path(raw) if raw and Path(raw).is_dir() else None


def folder_files() -> list[str]:
    """Names of the data files directly in the server's data folder (links leading out of it are left out)."""
    folder = data_folder()
    if folder is None:
        return []
    root = folder.resolve()
    return sorted(p.name for p in folder.iterdir() if p.suffix.lower() in DATA_SUFFIXES and p.is_file()
                  and p.resolve().parent == root)


def data_from_folder(name: str) -> ActiveData:
    """Load one file of the server's data folder by name; only names folder_files() lists are accepted."""
    if name not in folder_files():
        raise DataError(f"{name}: not a data file in the server's data folder")
    return make_data(load_files([data_folder() / name]), name)


def _content_id(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:16]


def default_checkpoint_path() -> Path:
    """The checkpoint the app starts with: $ECGVIZ_CHECKPOINT or the shipped one."""
    return Path(os.environ.get(CHECKPOINT_ENV) or SHIPPED_CHECKPOINT)


def checkpoint_dir() -> Path:
    """Where trained models are saved and listed: $ECGVIZ_CHECKPOINT_DIR or checkpoints/."""
    return Path(os.environ.get(CHECKPOINT_DIR_ENV) or CHECKPOINT_DIR)


def model_from_path(path: str | os.PathLike, source: str = "saved") -> ActiveModel:
    """Load a checkpoint file; raises CheckpointError with the reason."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError:
        return _saved_model(path, load_checkpoint(path), b"", source)  # load_checkpoint says why it cannot be read
    # the bytes read once are both loaded and hashed: a file replaced meanwhile cannot give one model another's id
    return _saved_model(path, load_checkpoint(raw, name=path.name), raw, source)


def _saved_model(path: Path, ckpt: Checkpoint, raw: bytes, source: str) -> ActiveModel:
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


def score(model: ActiveModel, data: ActiveData,
          reconstructions: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Errors (n,) and, unless told not to, reconstructions (n, T) of every beat; CheckpointError on other lengths."""
    from ecgviz.pipeline.protocol import scores_for  # deferred: torch is only needed once a model is used

    return scores_for(model.ckpt, data.data.X, reconstructions=reconstructions)


def reconstruction(model: ActiveModel, data: ActiveData, index: int) -> np.ndarray:
    """The reconstruction (T,) of one beat: the dashboard keeps errors for all beats, reconstructions for none."""
    from ecgviz.pipeline.protocol import scores_for

    return scores_for(model.ckpt, data.data.X[index:index + 1])[1][0]


def evaluation(model: ActiveModel, data: ActiveData, normal_labels: Sequence[str],
               errors: np.ndarray) -> explore.Evaluation:
    """The explorer's Evaluation of these errors, leaving out beats the model trained on."""
    from ecgviz.detectors.config import DEFAULT_PERCENTILE

    return explore.evaluate(errors, data.data.labels, data.class_names, normal_labels,
                            split=model.ckpt.split, same_data=same_data(model, data), percentile=DEFAULT_PERCENTILE)


# The baselines the dashboard fits in seconds beside the autoencoder: (kind, parameters).
BASELINE_SPECS = (("knn", {"k": 5, "metric": "l1"}), ("knn", {"k": 5, "metric": "l2"}), ("pca", {"n_components": 8}))


def baseline_split(data: ActiveData, normal_labels: Sequence[str], model: ActiveModel | None):
    """The split baselines fit on: the active model's when it was trained on these beats with these normal labels
    (so every detector is judged on the same held-out beats), else the seeded default split."""
    from ecgviz.pipeline.protocol import protocol_split

    if model is not None and same_data(model, data) and tuple(model.ckpt.split.normal_labels) == tuple(normal_labels):
        return model.ckpt.split
    return protocol_split(data.data, list(normal_labels))


def fit_baselines(data: ActiveData, normal_labels: Sequence[str], split) -> list[ActiveModel]:
    """kNN-5 (L1, L2) and PCA fitted on the split's training normals, as models the explorer can activate."""
    from ecgviz.detectors import baselines as detectors
    from ecgviz.pipeline.protocol import fit_detector

    if not data.data.has_labels:
        raise UserError("fitting a baseline needs labelled data, to know which beats are normal")
    key = hashlib.sha256(repr((data.fingerprint, split.to_dict())).encode()).hexdigest()[:12]
    out = []
    for kind, params in BASELINE_SPECS:
        ckpt = fit_detector(data.data, detectors.make(kind, **params), normal_labels, split=split)
        ckpt = replace(ckpt, class_names=data.class_names)
        model_id = f"{kind}-" + "-".join(f"{v}" for v in params.values()) + f"-{key}"
        out.append(ActiveModel(ckpt=ckpt, id=model_id, name=ckpt.name, source="baseline"))
    return out


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


def checkpoint_path_for(name: str, directory: Path | None = None) -> Path:
    """Where a model called `name` is saved; ValueError for an unusable name or one already taken."""
    if not _NAME_RE.fullmatch(name or ""):
        raise UserError("name the model with letters, digits, '_', '-' or '.' (at most 64 characters), "
                         "starting with a letter or digit")
    directory = directory or checkpoint_dir()
    path = directory / f"{name.removesuffix('.pt')}.pt"
    # a check only: start_training then holds the name (reserve), which is what two sessions cannot both do
    if path.resolve() == SHIPPED_CHECKPOINT.resolve() or path.exists():
        raise UserError(f"a checkpoint named '{path.name}' already exists; choose another name")
    return path


def available_devices() -> list[str]:
    """Devices training can use here: 'auto' first, then cpu and any accelerator torch can see."""
    import torch

    devices = ["auto", "cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return devices


@dataclass(frozen=True)
class TrainSettings:
    """The knobs the Model page offers; the defaults are ModelConfig's and TrainConfig's (a test keeps them equal)."""

    embedding_dim: int = 32
    chunk: int = 10
    epochs: int | None = None  # None: the cap is scaled to the data
    batch_size: int = 32
    lr: float = 3e-3
    loss: str = "l1"
    seed: int = 0
    device: str = "auto"
    patience: int | None = None  # None: a tenth of the cap, at least 10
    max_minutes: float | None = None  # time budget
    percentile: float = 98.0  # stored threshold: this percentile of the training normals' errors
    split_mode: str = "seed"  # or "files": train on train_file's normals, evaluate on test_file
    train_file: str = ""
    test_file: str = ""


def start_training(data: ActiveData, normal_labels: Sequence[str], name: str, settings: TrainSettings, *,
                   directory: Path | None = None, fit_fn: Callable | None = None) -> TrainingJob[ActiveModel]:
    """Check the request, then train in a background thread; the job's result is the saved, loaded model."""
    from ecgviz.detectors import limits
    from ecgviz.detectors.config import ModelConfig, TrainConfig
    from ecgviz.pipeline import tracking
    from ecgviz.pipeline.protocol import fit, protocol_split

    path = checkpoint_path_for(name, directory)
    if not data.data.has_labels:
        raise UserError("training needs labelled data, to know which beats are normal; load labelled files")
    if not normal_labels:
        raise UserError("choose at least one normal label on the Data page before training")
    # fail fast, in the page, on a split that cannot work rather than in the thread
    files = (settings.train_file, settings.test_file) if settings.split_mode == "files" else None
    split = protocol_split(data.data, normal_labels, mode=settings.split_mode, seed=settings.seed, files=files)
    model_config = ModelConfig(embedding_dim=int(settings.embedding_dim), chunk=int(settings.chunk))
    limits.check_bounds(model_config, data.data.length)  # the rules a checkpoint is loaded under
    limits.check_memory(model_config, data.data.length)
    train_config = TrainConfig(epochs=_opt_int(settings.epochs), batch_size=int(settings.batch_size),
                               lr=float(settings.lr), loss=settings.loss, seed=int(settings.seed),
                               device=settings.device, patience=_opt_int(settings.patience),
                               max_seconds=None if not settings.max_minutes else float(settings.max_minutes) * 60)
    percentile = float(settings.percentile)
    if not 0 < percentile <= 100:
        raise UserError("the threshold percentile must be above 0 and at most 100")
    fit_fn = fit_fn or fit
    cap, _ = train_config.plan(len(split.train))

    def fit_named(*args, **kwargs) -> Checkpoint:
        ckpt = fit_fn(*args, **kwargs)
        # the display names given on the Data page travel with the model
        return replace(ckpt, class_names={**dict(ckpt.class_names), **data.class_names})

    # an MLflow run is logged when $MLFLOW_TRACKING_URI is set (as for the command line)
    tracked_fit = tracking.track_training(fit_named, checkpoint_name=path.name)

    def run(on_epoch, stop) -> Checkpoint:
        return tracked_fit(data.data, tuple(normal_labels), model_config, train_config, name=path.stem,
                           on_epoch=on_epoch, stop=stop, split_mode=settings.split_mode, files=files,
                           percentile=percentile)

    label = (f"{path.stem}: embedding {model_config.embedding_dim}, {model_config.chunk} samples/step, "
             f"up to {cap} epochs{'' if settings.epochs else ' (scaled to the data)'}, "
             f"batch {train_config.batch_size}, learning rate {train_config.lr:g}, {train_config.loss.upper()} loss, "
             f"seed {train_config.seed}, device {train_config.device}")
    reservation = reserve(path)  # last: a request refused above holds nothing
    return _NamedJob(run, epochs=cap, finish=_save_under(reservation), label=label, reservation=reservation,
                     stopping=Stopping.of(train_config, len(split.train)))


def start_resume(model: ActiveModel, data: ActiveData, epochs: int | None = None, *,
                 directory: Path | None = None, resume_fn: Callable | None = None) -> TrainingJob[ActiveModel]:
    """Continue a model's training on its own data in the background; saved under a new name, then loaded."""
    from ecgviz.detectors.config import TrainConfig
    from ecgviz.pipeline.protocol import resume_fit, resume_plan

    ckpt = model.ckpt
    if not ckpt.train_state.get("optimizer"):
        raise UserError(f"model '{model.name}' has no stored optimizer state, so it cannot be continued")
    if not same_data(model, data):
        raise UserError(f"model '{model.name}' can only be continued on the data it was trained on")
    plan = resume_plan(ckpt, epochs)
    extra = plan["epochs"]
    done = len(ckpt.history)
    base = re.sub(r"_\d+ep$", "", safe_name(model.name) or "model")
    directory = directory or checkpoint_dir()
    reservation = _reserve_free(directory, f"{base}_{done + extra}ep")
    path = reservation.path
    resume_fn = resume_fn or resume_fit

    def run(on_epoch, stop) -> Checkpoint:
        return resume_fn(ckpt, data.data, epochs, name=path.stem, on_epoch=on_epoch, stop=stop)

    label = f"{path.stem}: {model.name} continued for up to {extra} more epochs (from epoch {done})"
    stopping = Stopping.of(TrainConfig(epochs=extra, patience=plan.get("patience")), 1, first=done)
    return _NamedJob(run, epochs=done + extra, finish=_save_under(reservation), label=label,
                     history=tuple(ckpt.history), reservation=reservation, stopping=stopping)


def _reserve_free(directory: Path, stem: str) -> Reservation:
    """Hold the first name of STEM, STEM_2, STEM_3, ... that is neither saved nor held by another training."""
    for n in range(1, MAX_SUFFIX + 1):
        name = stem if n == 1 else f"{stem}_{n}"
        if (directory / f"{name}.pt").exists():
            continue
        try:
            return reserve(checkpoint_path_for(name, directory))
        except NameInUse:
            continue
        except ValueError:
            if (directory / f"{name}.pt").exists():  # saved by another writer since the check above
                continue
            raise
    raise UserError(f"no free name like '{stem}' in {directory}")


def _save_under(reservation: Reservation) -> Callable[[Checkpoint], ActiveModel]:
    """The job's last step: save under the held name and activate exactly the bytes written, never a reread file."""

    def finish(ckpt: Checkpoint) -> ActiveModel:
        path, raw = reservation.save(lambda stem: to_bytes(replace(ckpt, name=stem)))
        return _saved_model(path, load_checkpoint(raw, name=path.name), raw, "trained")

    return finish


class _NamedJob(TrainingJob):
    """A training job that holds its checkpoint name until its thread ends: saved, cancelled or failed."""

    def __init__(self, *args, reservation: Reservation, **kwargs):
        super().__init__(*args, **kwargs)
        self.reservation = reservation

    def _work(self) -> None:
        try:
            super()._work()
        finally:
            self.reservation.release()


def _opt_int(value) -> int | None:
    """An optional positive count: None (or 0) means automatic."""
    return int(value) if value else None
