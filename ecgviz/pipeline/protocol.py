"""The protocol end to end: split a data set, train on its normals, pick a threshold, evaluate on held-out beats."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ecgviz.checkpoint.store import Checkpoint, CheckpointError, library_versions
from ecgviz.detectors import baselines as detectors
from ecgviz.detectors import limits
from ecgviz.detectors.config import (
    BY_TIME,
    BY_USER,
    DEFAULT_ERROR,
    DEFAULT_PERCENTILE,
    ERRORS,
    RESUME_LR_FACTOR,
    ModelConfig,
    TrainConfig,
)
from ecgviz.detectors.reconstruction import reconstruction_errors, score
from ecgviz.detectors.train import EpochInfo, Resume, TrainResult, train
from ecgviz.errors import UserError
from ecgviz.evaluation import duplicates, intervals, metrics, quality
from ecgviz.evaluation.split import DEFAULT_FRACTIONS, Split, make_file_split, make_split
from ecgviz.io.data import BeatData, fingerprint


class TrainingCancelled(Exception):
    """Raised by :func:`fit` when its stop event was set."""


@dataclass(frozen=True)
class Evaluation:
    """Held-out errors and the metrics at one threshold."""

    errors: np.ndarray  # (m,) errors of the evaluated beats
    indices: np.ndarray  # (m,) their indices in the data
    is_anomaly: np.ndarray  # (m,) bool
    labels: np.ndarray | None  # (m,)
    metrics: metrics.Metrics
    auroc: float | None
    average_precision: float | None
    held_out: bool  # True when the checkpoint's split applied (same data); False: every labelled beat evaluated

    def summary(self, n_boot: int = intervals.N_BOOT) -> dict:
        """JSON-safe headline numbers, their 95 % intervals and caveats, plus the full metrics."""
        m = self.metrics.to_dict()
        areas = intervals.bootstrap_areas(self.errors, self.is_anomaly, n_boot=n_boot)
        rates = intervals.rate_intervals(self.metrics)
        held = {k: int(t) for k, (_, t) in self.metrics.class_counts.items() if k in self.metrics.class_recall}
        return {
            "auroc": self.auroc,
            "average_precision": self.average_precision,
            "threshold": m["threshold"],
            "normal_recall": m["normal_recall"],
            "anomaly_recall": m["anomaly_recall"],
            "precision": m["precision"],
            "f1": m["f1"],
            "accuracy": m["accuracy"],
            "balanced_accuracy": m["balanced_accuracy"],
            "n_normal": m["n_normal"],
            "n_anomaly": m["n_anomaly"],
            "held_out_split": self.held_out,
            "prevalence": m["n_anomaly"] / max(m["n_normal"] + m["n_anomaly"], 1),
            "intervals_95": {"auroc": areas["auroc"], "average_precision": areas["average_precision"],
                             **rates, "method": "Wilson score for rates; stratified percentile bootstrap "
                                                f"({n_boot} resamples, seed 0) for AUROC and AP"},
            "caveats": intervals.caveats(m["n_normal"], m["n_anomaly"], held),
            "metrics": m,
        }


def scores_for(ckpt: Checkpoint, X: np.ndarray, device: str = "cpu",
               reconstructions: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Errors (in the units of the checkpoint's threshold) and reconstructions of beats `X`; refuses other lengths."""
    ckpt.check_fits(X.shape[1])
    if ckpt.kind != "lstm_ae":
        return ckpt.model.score(X), (ckpt.model.reconstruct(X) if reconstructions else None)
    return score(ckpt.model, X, loss=ckpt.loss, normalisation=ckpt.normalisation, device=device,
                 reconstructions=reconstructions)


def errors_for(ckpt: Checkpoint, X: np.ndarray, device: str = "cpu") -> np.ndarray:
    """Reconstruction errors of beats `X` under a checkpoint, in the units of its threshold."""
    return scores_for(ckpt, X, device, reconstructions=False)[0]


def evaluation_indices(ckpt: Checkpoint, data: BeatData, normal_labels: Sequence[str] | None = None):
    """(indices, is_anomaly, held_out): on the checkpoint's own data only the beats it never saw, else every beat."""
    if not data.has_labels:
        raise UserError("evaluation needs labelled data; use score for unlabelled beats")
    normal = tuple(normal_labels or ckpt.split.normal_labels)
    if fingerprint(data) == ckpt.data_fingerprint:
        if normal == ckpt.split.normal_labels:
            idx, is_anomaly = ckpt.split.eval_indices()
            return idx, is_anomaly, True
        # other normal labels on the same data: still never score a beat the model trained on
        idx = ckpt.split.unseen()
        return idx, ~data.label_mask(normal)[idx], True
    return np.arange(data.n_beats), ~data.label_mask(normal), False


def evaluate(
    ckpt: Checkpoint,
    data: BeatData,
    threshold: float | None = None,
    normal_labels: Sequence[str] | None = None,
    device: str = "cpu",
) -> Evaluation:
    """Metrics of a checkpoint on data, at its stored threshold unless another is given."""
    idx, is_anomaly, held_out = evaluation_indices(ckpt, data, normal_labels)
    errors = errors_for(ckpt, data.X[idx], device)
    labels = data.labels[idx]
    t = ckpt.threshold if threshold is None else float(threshold)
    return Evaluation(
        errors=errors,
        indices=idx,
        is_anomaly=is_anomaly,
        labels=labels,
        metrics=metrics.at_threshold(errors, is_anomaly, t, labels),
        auroc=metrics.roc_auc(errors, is_anomaly),
        average_precision=metrics.average_precision(errors, is_anomaly),
        held_out=held_out,
    )


def protocol_split(data: BeatData, normal_labels: Sequence[str], *, mode: str = "seed",
                   fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0,
                   files: Sequence[str] | None = None) -> Split:
    """The split for `mode` ("seed", or "files" with (training file, evaluation file)); copies never straddle it."""
    groups = duplicates.groups(data.X)
    if mode == "seed":
        return make_split(data.labels, normal_labels, fractions, seed=seed, n_beats=data.n_beats, groups=groups)
    if mode == "files":
        if not files or len(files) != 2:
            raise UserError("split mode 'files' needs a training file and an evaluation file")
        return make_file_split(data.labels, data.sources, normal_labels, files[0], files[1], seed=seed,
                               groups=groups)
    raise UserError(f"unknown split mode {mode!r}: use seed or files")


def fit_detector(
    data: BeatData,
    detector,
    normal_labels: Sequence[str] = ("1",),
    *,
    split: Split | None = None,
    percentile: float = DEFAULT_PERCENTILE,
    name: str = "",
) -> Checkpoint:
    """Fit a baseline detector (kNN, PCA) on the split's training normals: a checkpoint like the autoencoder's."""
    import time

    split = split or protocol_split(data, normal_labels)
    started = time.perf_counter()
    detector.fit(data.X[split.train])
    elapsed = time.perf_counter() - started
    ckpt = Checkpoint(
        model=detector,
        model_config=None,
        split=split,
        data_fingerprint=fingerprint(data),
        seq_len=data.length,
        normalisation=(0.0, 1.0),
        loss=detector.kind,
        threshold=float(np.percentile(detector.train_scores_, percentile)),
        threshold_rule=f"p{percentile:g} of training normals (out-of-sample scores)",
        train_config={"detector": detector.kind, "params": detectors.baseline_state(detector)["params"],
                      "elapsed_s": elapsed},
        class_names=dict(data.class_names),
        versions=library_versions(),
        name=name or detector.description,
    )
    if data.has_labels and len(split.anomalies) and len(split.test):
        ckpt = replace(ckpt, metrics=evaluate(ckpt, data).summary())
    return ckpt


def fit(
    data: BeatData,
    normal_labels: Sequence[str] = ("1",),
    model_config: ModelConfig | None = None,
    train_config: TrainConfig | None = None,
    *,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    percentile: float = DEFAULT_PERCENTILE,
    name: str = "",
    on_epoch: Callable[[EpochInfo], bool | None] | None = None,
    stop: threading.Event | None = None,
    split_mode: str = "seed",
    files: Sequence[str] | None = None,
    error: str | None = None,
) -> Checkpoint:
    """Split, train, choose the label-free threshold, and measure held-out metrics: a ready checkpoint.

    A set `stop` discards the run (TrainingCancelled) unless it carries `keep = True`: then the best model so far
    is finished like any other, marked as stopped by the user.
    """
    model_config = model_config or ModelConfig()
    train_config = train_config or TrainConfig()
    # the bounds a checkpoint is loaded under: a model that trains can always be loaded again
    limits.check_bounds(model_config, data.length)
    limits.check_memory(model_config, data.length)
    split = protocol_split(data, normal_labels, mode=split_mode, fractions=fractions, seed=train_config.seed,
                           files=files)
    result = train(data.X[split.train], data.X[split.val], model_config, train_config, on_epoch=on_epoch, stop=stop)
    return _finish(data, split, model_config, train_config, result, percentile, name, stop, error)


def resume_plan(ckpt: Checkpoint, epochs: int | None = None) -> dict:
    """How a resume of `ckpt` goes on: the rest of a cosine cycle cut short (by the time budget or the user),
    else a new cycle of `epochs` (default: as long as the last one) at half its learning rate."""
    tc = ckpt.train_config
    start = int(tc.get("cycle_start", 0))
    length = int(tc.get("epoch_cap") or tc.get("epochs") or 40) - start
    done = len(ckpt.history) - start
    lr = float(tc.get("cycle_lr", tc.get("lr", TrainConfig().lr)))
    if epochs is None and tc.get("ended_by") in (BY_TIME, BY_USER) and 0 < done < length:
        return {"epochs": length - done, "lr": lr, "cycle": (done, length), "cycle_start": start,
                "patience": tc.get("patience_used")}
    return {"epochs": int(epochs or max(length, 1)), "lr": lr * RESUME_LR_FACTOR, "cycle": (0, 0),
            "cycle_start": len(ckpt.history), "patience": tc.get("patience")}


def resume_fit(
    ckpt: Checkpoint,
    data: BeatData,
    epochs: int | None = None,
    *,
    max_seconds: float | None = None,
    device: str | None = None,
    name: str | None = None,
    on_epoch: Callable[[EpochInfo], bool | None] | None = None,
    stop: threading.Event | None = None,
) -> Checkpoint:
    """Continue training `ckpt` on its own data and split (see resume_plan for how long and how)."""
    if not ckpt.train_state.get("optimizer"):
        raise CheckpointError(f"model '{ckpt.name}' has no stored optimizer state, so it cannot be continued; "
                              "train a new one")
    if fingerprint(data) != ckpt.data_fingerprint:
        raise CheckpointError(f"model '{ckpt.name}' can only be continued on the data it was trained on"
                              + (f" ({', '.join(ckpt.data_sources)})" if ckpt.data_sources else ""))
    tc, plan = ckpt.train_config, resume_plan(ckpt, epochs)
    fields = {k: tc[k] for k in TrainConfig.__dataclass_fields__ if k in tc}
    config = TrainConfig(**{**fields, "epochs": plan["epochs"], "patience": plan["patience"],
                            "max_seconds": max_seconds, **({"device": device} if device else {})})
    resume = Resume(model_state=ckpt.model.state_dict(), optimizer_state=ckpt.train_state["optimizer"],
                    history=tuple(ckpt.history), normalisation=ckpt.normalisation, lr=plan["lr"],
                    cycle=plan["cycle"])
    result = train(data.X[ckpt.split.train], data.X[ckpt.split.val], ckpt.model_config, config,
                   on_epoch=on_epoch, stop=stop, resume=resume)
    percentile = _percentile_of(ckpt.threshold_rule)
    done = _finish(data, ckpt.split, ckpt.model_config, config, result, percentile,
                   ckpt.name if name is None else name, stop, ckpt.loss)
    return replace(done, train_config={**done.train_config, "resumed_from": len(ckpt.history),
                                       "cycle_start": plan["cycle_start"], "cycle_lr": plan["lr"]})


def _percentile_of(rule: str) -> float:
    """The percentile in a rule like 'p98 of training normals' (the default for any other rule)."""
    try:
        return float(rule.split()[0].removeprefix("p")) if rule.startswith("p") else DEFAULT_PERCENTILE
    except ValueError:
        return DEFAULT_PERCENTILE


def _finish(data: BeatData, split: Split, model_config: ModelConfig, train_config: TrainConfig,
            result: TrainResult, percentile: float, name: str, stop: threading.Event | None,
            error: str | None = None) -> Checkpoint:
    """Threshold, metrics and quality of a trained model, as a checkpoint."""
    import torch

    if stop is not None and stop.is_set() and not getattr(stop, "keep", False):
        # whoever set the event discards the result: do not spend seconds scoring it
        raise TrainingCancelled("training was cancelled")
    norm = result.normalisation
    loss = error or (DEFAULT_ERROR if train_config.loss == "l1" else train_config.loss)
    if loss not in ERRORS:
        raise UserError(f"unknown error measure {loss!r}: use one of {ERRORS}")
    train_errors = reconstruction_errors(result.model, data.X[split.train], loss=loss, normalisation=norm)
    threshold = float(np.percentile(train_errors, percentile))
    ckpt = Checkpoint(
        model=result.model,
        model_config=model_config,
        split=split,
        data_fingerprint=fingerprint(data),
        seq_len=data.length,
        normalisation=norm,
        loss=loss,
        threshold=threshold,
        threshold_rule=f"p{percentile:g} of training normals",
        history=tuple(result.history),
        train_config={**train_config.to_dict(), "device_used": result.device, "best_epoch": result.best_epoch,
                      "cancelled": result.cancelled, "elapsed_s": result.elapsed_s, "ended_by": result.ended_by,
                      "epoch_cap": result.epoch_cap, "patience_used": result.patience,
                      "still_improving": result.still_improving, "torch_threads": torch.get_num_threads()},
        class_names=dict(data.class_names),
        versions=library_versions(),
        name=name,
        data_sources=tuple(dict.fromkeys(str(s) for s in data.sources)),
        train_state={"optimizer": result.optimizer_state} if result.optimizer_state else {},
    )
    summary = {}
    if data.has_labels and len(split.anomalies) and len(split.test):
        summary = evaluate(ckpt, data).summary()
    held = split.test if len(split.test) else split.val
    _, recon = scores_for(ckpt, data.X[held])
    summary["quality"] = quality.assess(data.X[held], recon, summary.get("auroc")).to_dict()
    return replace(ckpt, metrics=summary)
