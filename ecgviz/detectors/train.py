"""Fit the autoencoder to normal beats: mini-batches, Adam, early stopping on validation loss."""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ecgviz.detectors import threads
from ecgviz.detectors.config import (
    BY_CAP,
    BY_PATIENCE,
    BY_TIME,
    BY_USER,
    LOSSES,
    PRECISIONS,
    STILL_FALLING,
    ModelConfig,
    TrainConfig,
)
from ecgviz.detectors.lstm import RecurrentAutoencoder
from ecgviz.errors import UserError


@dataclass(frozen=True)
class Resume:
    """Where an earlier run stopped: its weights, Adam state, loss curve and normalisation, and how to go on."""

    model_state: dict
    optimizer_state: dict
    history: tuple[dict, ...]
    normalisation: tuple[float, float]
    lr: float  # the learning rate the cosine cycle starts from (or started from, when it is continued)
    # a cycle cut short (time budget, the user): (epochs done in it, its length); (0, 0) starts a new cycle
    cycle: tuple[int, int] = (0, 0)


def still_improving(history: Sequence[dict], rel: float = STILL_FALLING) -> bool:
    """True when the best validation loss fell by more than `rel` over the last quarter of the epochs."""
    losses = [float(h["val_loss"]) for h in history if h.get("val_loss") is not None]
    window = max(len(losses) // 4, 2)
    if len(losses) <= window:
        return len(losses) > 1 and losses[-1] < losses[0]
    before, after = min(losses[:-window]), min(losses)
    return before > 0 and (before - after) / before > rel


@dataclass(frozen=True)
class EpochInfo:
    """What a progress display needs after each epoch."""

    epoch: int  # 1-based
    epochs: int
    train_loss: float
    val_loss: float
    elapsed_s: float
    best_epoch: int
    best_val_loss: float
    # the live model (eval mode, on the training device), so a callback can score it; it must not change it
    model: nn.Module | None = field(default=None, repr=False, compare=False)


@dataclass
class TrainResult:
    """The trained model (on the CPU, eval mode, best weights) and how it got there."""

    model: RecurrentAutoencoder
    normalisation: tuple[float, float]  # (mean, std) of the training beats; applied before the model
    history: list[dict]
    best_epoch: int
    stopped_early: bool  # early stopping, a callback or the stop event ended it before `epochs`
    cancelled: bool  # the caller asked to stop
    device: str
    elapsed_s: float
    ended_by: str = BY_CAP  # BY_PATIENCE, BY_CAP, BY_TIME or BY_USER
    epoch_cap: int = 0
    patience: int = 0
    still_improving: bool = False  # ended by the cap or the time budget while validation loss still fell
    optimizer_state: dict = field(default_factory=dict, repr=False)  # Adam's state at the end, for a resume
    threads: int = 1  # torch threads the run used (threads.job's rule)


def resolve_device(device: str = "auto") -> torch.device:
    """Map "auto" to the best available accelerator; refuse a device that is not there."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device not in ("cpu", "cuda", "mps") and not device.startswith("cuda:"):
        raise UserError(f"unknown device {device!r}: use auto, cpu, cuda or mps")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("device 'cuda' was requested but no CUDA GPU is available")
    if device == "mps" and not torch.backends.mps.is_available():
        raise UserError("device 'mps' was requested but Apple MPS is not available")
    return torch.device(device)


def beat_loss(recon: torch.Tensor, x: torch.Tensor, loss: str) -> torch.Tensor:
    """Per-beat loss, (B, T, F) -> (B,): L1 summed over the beat, or mean squared error."""
    if loss == "l1":
        return (recon - x).abs().sum(dim=(1, 2))
    if loss == "mse":
        return (recon - x).pow(2).mean(dim=(1, 2))
    raise UserError(f"unknown loss {loss!r}: use one of {LOSSES}")


def fit_normalisation(X: np.ndarray) -> tuple[float, float]:
    """One mean and one std over all training samples, so beats keep their relative amplitude."""
    mean, std = float(np.mean(X, dtype=np.float64)), float(np.std(X, dtype=np.float64))
    return mean, (std if np.isfinite(std) and std > 1e-12 else 1.0)


def _to_tensor(X: np.ndarray, norm: tuple[float, float], device: torch.device) -> torch.Tensor:
    x = (np.asarray(X, dtype=np.float32) - norm[0]) / norm[1]
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).unsqueeze(-1).to(device)  # (n, T, 1)


@torch.inference_mode()
def _mean_loss(model: nn.Module, x: torch.Tensor, loss: str, batch_size: int = 1024) -> float:
    total = 0.0
    for i in range(0, len(x), batch_size):
        xb = x[i : i + batch_size]
        total += float(beat_loss(model(xb), xb, loss).sum())
    return total / max(len(x), 1)


def train(
    X_train: np.ndarray,
    X_val: np.ndarray,
    model_config: ModelConfig | None = None,
    config: TrainConfig | None = None,
    on_epoch: Callable[[EpochInfo], bool | None] | None = None,
    stop: threading.Event | None = None,
    resume: Resume | None = None,
) -> TrainResult:
    """Train on normal beats `X_train` (n, T), early-stop on `X_val`; `on_epoch` returning True or `stop` ends it.

    With `resume` the run continues an earlier one from its weights and Adam state, its loss curve numbered on:
    the rest of a cosine cycle that was cut short (`resume.cycle`), else a new cycle of `config.epochs` epochs
    from `resume.lr`. The run's torch threads follow threads.job's rule (one for the default model).
    """
    model_config = model_config or ModelConfig()
    config = config or TrainConfig()
    with threads.job(threads.lstm_work(model_config, config.batch_size)) as n:
        result = _train(X_train, X_val, model_config, config, on_epoch, stop, resume)
    result.threads = n
    return result


def _train(X_train: np.ndarray, X_val: np.ndarray, model_config: ModelConfig, config: TrainConfig,
           on_epoch: Callable[[EpochInfo], bool | None] | None, stop: threading.Event | None,
           resume: Resume | None) -> TrainResult:
    if config.loss not in LOSSES:
        raise UserError(f"unknown loss {config.loss!r}: use one of {LOSSES}")
    if len(X_train) == 0 or len(X_val) == 0:
        raise UserError("training needs at least one training and one validation beat")
    if config.precision not in PRECISIONS:
        raise UserError(f"unknown precision {config.precision!r}: use one of {PRECISIONS}")
    if config.max_seconds is not None and not config.max_seconds > 0:
        raise UserError("the time budget must be positive")
    cap, patience = config.plan(len(X_train))
    device = resolve_device(config.device)
    # autocast on CUDA only: that is where bench.candidates measured it
    use_bf16 = config.precision == "bf16" and device.type == "cuda"
    first = len(resume.history) if resume is not None else 0  # epochs already done
    torch.manual_seed(config.seed + first)
    rng = np.random.default_rng([config.seed, first] if first else config.seed)
    norm = resume.normalisation if resume is not None else fit_normalisation(X_train)
    xt, xv = _to_tensor(X_train, norm, device), _to_tensor(X_val, norm, device)
    model = RecurrentAutoencoder(model_config).to(device)
    lr = config.lr
    done_in_cycle, cycle_epochs = resume.cycle if resume is not None else (0, 0)
    if resume is not None:
        model.load_state_dict(resume.model_state)
        lr = resume.lr
        if 0 < done_in_cycle < cycle_epochs:
            cap = cycle_epochs - done_in_cycle  # the rest of the interrupted cycle
    # on CUDA one fused kernel updates every weight: tiny models are bound by kernel launches there
    opt = torch.optim.Adam(model.parameters(), lr=lr, fused=device.type == "cuda")
    if resume is not None and resume.optimizer_state:
        try:
            opt.load_state_dict(copy.deepcopy(resume.optimizer_state))  # never update the caller's copy
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise UserError(f"the stored optimizer state does not fit this model ({exc})") from None
        for group in opt.param_groups:
            group["lr"] = group["initial_lr"] = lr
            group["fused"] = device.type == "cuda"
    if config.lr_schedule not in ("cosine", "constant"):
        raise UserError(f"unknown lr_schedule {config.lr_schedule!r}: use cosine or constant")
    per_epoch = -(-len(xt) // config.batch_size)
    sched = None
    if config.lr_schedule == "cosine" and 0 < done_in_cycle < cycle_epochs:
        # the same cosine as the interrupted run, from where it stopped (closed form: no replay of its steps)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, functools.partial(
            _cosine, offset=done_in_cycle * per_epoch, length=cycle_epochs * per_epoch))
    elif config.lr_schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cap * per_epoch)

    history: list[dict] = [dict(h) for h in resume.history] if resume is not None else []
    best_loss, best_epoch, best_state = float("inf"), 0, copy.deepcopy(model.state_dict())
    if resume is not None:
        # the resumed weights are the earlier run's best: a new run must beat them, or they stay
        model.eval()
        best_loss, best_epoch = _mean_loss(model, xv, config.loss), first
    mark_loss, mark_epoch = best_loss, best_epoch  # the last improvement that resets the patience
    start, cancelled, ended_by = time.perf_counter(), False, BY_CAP
    offset = float(history[-1].get("elapsed_s", 0.0)) if history else 0.0  # the curve's clock runs on
    for epoch in range(first + 1, first + cap + 1):
        model.train()
        total = torch.zeros((), device=device)  # summed on the device: no GPU sync per batch
        order = torch.from_numpy(rng.permutation(len(xt))).to(device)
        for i in range(0, len(xt), config.batch_size):
            if stop is not None and stop.is_set():
                cancelled = True
                break
            xb = xt[order[i : i + config.batch_size]]
            with torch.autocast("cuda", dtype=torch.bfloat16) if use_bf16 else contextlib.nullcontext():
                recon = model(xb)
            loss = beat_loss(recon.float(), xb, config.loss).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            opt.step()
            if sched is not None:
                sched.step()
            total += loss.detach() * len(xb)
        if cancelled:
            break
        model.eval()
        val_loss = _mean_loss(model, xv, config.loss)
        train_loss = float(total) / len(xt)
        if val_loss < mark_loss * (1 - config.rel_delta) - config.min_delta:
            mark_loss, mark_epoch = val_loss, epoch
        if val_loss < best_loss - config.min_delta:
            best_loss, best_epoch, best_state = val_loss, epoch, copy.deepcopy(model.state_dict())
        elapsed = time.perf_counter() - start
        history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                        "elapsed_s": offset + elapsed})
        info = EpochInfo(epoch, first + cap, train_loss, val_loss, elapsed, best_epoch, best_loss, model)
        if on_epoch is not None and on_epoch(info):
            cancelled = True
            break
        if stop is not None and stop.is_set():
            cancelled = True
            break
        if epoch - mark_epoch >= patience:
            ended_by = BY_PATIENCE
            break
        if config.max_seconds is not None and elapsed >= config.max_seconds and epoch < first + cap:
            ended_by = BY_TIME
            break

    if cancelled:
        ended_by = BY_USER
    model.load_state_dict(best_state)
    model = model.cpu().eval()
    return TrainResult(
        model=model,
        normalisation=norm,
        history=history,
        best_epoch=best_epoch,
        stopped_early=ended_by != BY_CAP,
        cancelled=cancelled,
        device=str(device),
        elapsed_s=time.perf_counter() - start,
        ended_by=ended_by,
        epoch_cap=first + cap,
        patience=patience,
        still_improving=ended_by in (BY_CAP, BY_TIME) and still_improving(history),
        optimizer_state=_cpu_state(opt.state_dict()),
    )


def _cosine(step: int, offset: int, length: int) -> float:
    """The cosine schedule's factor at `step` of a cycle of `length` steps that is resumed at `offset`."""
    return 0.5 * (1 + math.cos(math.pi * min(offset + step, length) / length))


def _cpu_state(state: dict) -> dict:
    """Adam's state dict with every tensor on the CPU: plain data a weights-only checkpoint can hold."""
    def cpu(value):
        if isinstance(value, torch.Tensor):
            return value.detach().cpu().clone()  # a copy: the checkpoint must not follow a later optimizer
        if isinstance(value, dict):
            return {k: cpu(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [cpu(v) for v in value]
        return value

    return cpu(state)
