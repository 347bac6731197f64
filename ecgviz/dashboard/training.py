"""Training from the dashboard: check a request, hold the model's name, train in the background, save, load."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ecgviz.checkpoint.files import MAX_SUFFIX, NameInUse, Reservation, reserve
from ecgviz.checkpoint.store import SHIPPED_CHECKPOINT, Checkpoint, load_checkpoint, to_bytes
from ecgviz.dashboard import config
from ecgviz.dashboard.jobs import TrainingJob, time_budget_s
from ecgviz.dashboard.progress import Stopping
from ecgviz.dashboard.session import ActiveData, ActiveModel, safe_name, same_data, saved_model
from ecgviz.detectors.config import DEFAULT_PERCENTILE, ModelConfig, TrainConfig
from ecgviz.errors import UserError

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_MODEL, _TRAIN = ModelConfig(), TrainConfig()


def checkpoint_path_for(name: str, directory: Path | None = None) -> Path:
    """Where a model called `name` is saved; UserError for an unusable name or one already taken."""
    if not _NAME_RE.fullmatch(name or ""):
        raise UserError("name the model with letters, digits, '_', '-' or '.' (at most 64 characters), "
                         "starting with a letter or digit")
    directory = directory or config.checkpoint_dir()
    path = directory / f"{name.removesuffix('.pt')}.pt"
    # a check only: start_training then holds the name (reserve), which is what two sessions cannot both do
    if path.resolve() == SHIPPED_CHECKPOINT.resolve() or path.exists():
        raise UserError(f"a checkpoint named '{path.name}' already exists; choose another name")
    return path



@dataclass(frozen=True)
class TrainSettings:
    """The knobs the Model page offers, with ModelConfig's and TrainConfig's defaults."""

    embedding_dim: int = _MODEL.embedding_dim
    chunk: int = _MODEL.chunk
    epochs: int | None = _TRAIN.epochs  # None: the cap is scaled to the data
    batch_size: int = _TRAIN.batch_size
    lr: float = _TRAIN.lr
    loss: str = _TRAIN.loss
    seed: int = _TRAIN.seed
    device: str = _TRAIN.device
    patience: int | None = _TRAIN.patience  # None: a tenth of the cap, at least 10
    max_minutes: float | None = None  # time budget; None (or more than the server allows): the server's
    percentile: float = DEFAULT_PERCENTILE  # stored threshold: this percentile of the training normals' errors
    split_mode: str = "seed"  # or "files": train on train_file's normals, evaluate on test_file
    train_file: str = ""
    test_file: str = ""


def start_training(data: ActiveData, normal_labels: Sequence[str], name: str, settings: TrainSettings, *,
                   directory: Path | None = None, fit_fn: Callable | None = None) -> TrainingJob[ActiveModel]:
    """Check the request, then train in a background thread; the job's result is the saved, loaded model."""
    from ecgviz.detectors import limits
    from ecgviz.evaluation.split import protocol_split
    from ecgviz.pipeline import tracking
    from ecgviz.pipeline.protocol import fit

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
                               max_seconds=time_budget_s(settings.max_minutes))
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
    directory = directory or config.checkpoint_dir()
    reservation = _reserve_free(directory, f"{base}_{done + extra}ep")
    path = reservation.path
    resume_fn = resume_fn or resume_fit

    def run(on_epoch, stop) -> Checkpoint:
        return resume_fn(ckpt, data.data, epochs, name=path.stem, on_epoch=on_epoch, stop=stop,
                         max_seconds=time_budget_s())

    label = f"{path.stem}: {model.name} continued for up to {extra} more epochs (from epoch {done})"
    stopping = Stopping.of(TrainConfig(epochs=extra, patience=plan.get("patience"), max_seconds=time_budget_s()), 1,
                           first=done)
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
        return saved_model(path, load_checkpoint(raw, name=path.name), raw, "trained")

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
