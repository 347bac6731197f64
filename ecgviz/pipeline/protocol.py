"""The protocol end to end: split a data set, train on its normals, pick a threshold, evaluate on held-out beats."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ecgviz.checkpoint.store import Checkpoint, CheckpointError, library_versions
from ecgviz.detectors import limits
from ecgviz.detectors.autoencoder import LSTMAutoencoder, TrainingCancelled
from ecgviz.detectors.base import Detector
from ecgviz.detectors.config import (
    BY_TIME,
    BY_USER,
    DEFAULT_PERCENTILE,
    RESUME_LR_FACTOR,
    ModelConfig,
    TrainConfig,
)
from ecgviz.detectors.train import EpochInfo, Resume
from ecgviz.errors import UserError
from ecgviz.evaluation import intervals, metrics, quality
from ecgviz.evaluation.split import DEFAULT_FRACTIONS, Split, evaluated_beats, own_split, protocol_split
from ecgviz.io.data import BeatData, fingerprint

# TrainingCancelled is the autoencoder's; it is named here too because callers of fit() catch it
__all__ = ["Evaluation", "TrainingCancelled", "assess", "evaluate", "evaluation_indices", "fit", "fit_detector",
           "reconstruct_beats", "resume_fit", "resume_plan", "score_beats"]


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


def score_beats(ckpt: Checkpoint, X: np.ndarray) -> np.ndarray:
    """The checkpoint's scores (n,) of beats `X`, in the units of its threshold; refuses beats of another length."""
    ckpt.check_fits(X.shape[1])
    return ckpt.detector.decision_function(X)


def reconstruct_beats(ckpt: Checkpoint, X: np.ndarray) -> np.ndarray:
    """The normal-looking beat (n, T) the checkpoint's detector compares each beat of `X` with."""
    ckpt.check_fits(X.shape[1])
    return ckpt.detector.reconstruct(X)


def assess(ckpt: Checkpoint, X_normal: np.ndarray, auroc: float | None) -> quality.Quality:
    """The quality check on held-out normal beats; reconstructions are judged only where training can collapse them."""
    recon = reconstruct_beats(ckpt, X_normal) if ckpt.detector.learned_reconstruction and len(X_normal) else None
    return quality.assess(X_normal, recon, auroc)


def evaluation_indices(ckpt: Checkpoint, data: BeatData, normal_labels: Sequence[str] | None = None):
    """(indices, is_anomaly, held_out): on the checkpoint's own data only the beats it never saw, else every beat."""
    if not data.has_labels:
        raise UserError("evaluation needs labelled data; use score for unlabelled beats")
    normal = tuple(normal_labels or ckpt.split.normal_labels)
    own = own_split(ckpt.split, data.n_beats, fingerprint(data) == ckpt.data_fingerprint)
    idx = evaluated_beats(own, data.n_beats, normal)
    return idx, ~data.label_mask(normal)[idx], own is not None


def evaluate(
    ckpt: Checkpoint,
    data: BeatData,
    threshold: float | None = None,
    normal_labels: Sequence[str] | None = None,
) -> Evaluation:
    """Metrics of a checkpoint on data, at its stored threshold unless another is given."""
    idx, is_anomaly, held_out = evaluation_indices(ckpt, data, normal_labels)
    errors = score_beats(ckpt, data.X[idx])
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


def fit_detector(
    data: BeatData,
    detector: Detector,
    normal_labels: Sequence[str] = ("1",),
    *,
    split: Split | None = None,
    percentile: float = DEFAULT_PERCENTILE,
    name: str = "",
    **fit_params,
) -> Checkpoint:
    """Fit a detector on the split's training normals, take the label-free threshold from their scores, and
    measure it on the held-out beats: a ready checkpoint. `fit_params` go to ``detector.fit``."""
    if not 0 < percentile <= 100:
        raise UserError("the threshold percentile must be above 0 and at most 100")
    split = split or protocol_split(data, normal_labels)
    started = time.perf_counter()
    detector.fit(data.X[split.train], **fit_params)
    elapsed = time.perf_counter() - started
    ckpt = Checkpoint(
        detector=detector,
        split=split,
        data_fingerprint=fingerprint(data),
        seq_len=data.length,
        threshold=float(np.percentile(detector.decision_scores_, percentile)),
        threshold_rule=f"p{percentile:g} of training normals{detector.scores_note}",
        history=detector.fit_history(),
        train_config={"elapsed_s": elapsed, **detector.training_record()},
        class_names=dict(data.class_names),
        versions=library_versions(),
        name=name or detector.description,
        data_sources=tuple(dict.fromkeys(str(s) for s in data.sources)),
        train_state=detector.resume_state(),
    )
    summary = {}
    if data.has_labels and len(split.anomalies) and len(split.test):
        summary = evaluate(ckpt, data).summary()
    if detector.learned_reconstruction:
        held = split.test if len(split.test) else split.val
        summary["quality"] = assess(ckpt, data.X[held], summary.get("auroc")).to_dict()
    return replace(ckpt, metrics=summary)


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
    """Split, train the autoencoder, choose the label-free threshold, and measure held-out metrics.

    A set `stop` discards the run (TrainingCancelled) unless it carries `keep = True`: then the best model so far
    is finished like any other, marked as stopped by the user.
    """
    model_config = model_config or ModelConfig()
    train_config = train_config or TrainConfig()
    detector = LSTMAutoencoder(model_config, train_config, error=error)
    # the bounds a checkpoint is loaded under: a model that trains can always be loaded again
    limits.check_bounds(model_config, data.length)
    limits.check_memory(model_config, data.length)
    split = protocol_split(data, normal_labels, mode=split_mode, fractions=fractions, seed=train_config.seed,
                           files=files)
    return fit_detector(data, detector, normal_labels, split=split, percentile=percentile, name=name,
                        val_beats=data.X[split.val], on_epoch=on_epoch, stop=stop)


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
    before = ckpt.detector
    resume = Resume(model_state=before.model_.state_dict(), optimizer_state=ckpt.train_state["optimizer"],
                    history=tuple(ckpt.history), normalisation=before.normalisation_, lr=plan["lr"],
                    cycle=plan["cycle"])
    detector = LSTMAutoencoder(before.model_.config, config, error=before.measure)
    done = fit_detector(data, detector, ckpt.split.normal_labels, split=ckpt.split,
                        percentile=_percentile_of(ckpt.threshold_rule), name=ckpt.name if name is None else name,
                        val_beats=data.X[ckpt.split.val], on_epoch=on_epoch, stop=stop, resume=resume)
    return replace(done, train_config={**done.train_config, "resumed_from": len(ckpt.history),
                                       "cycle_start": plan["cycle_start"], "cycle_lr": plan["lr"]})


def _percentile_of(rule: str) -> float:
    """The percentile in a rule like 'p98 of training normals' (the default for any other rule)."""
    try:
        return float(rule.split()[0].removeprefix("p")) if rule.startswith("p") else DEFAULT_PERCENTILE
    except ValueError:
        return DEFAULT_PERCENTILE
