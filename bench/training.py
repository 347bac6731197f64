"""Training rows: the classic per-beat loop against ecgviz's mini-batch training, on one held-out split."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from ecgviz.detectors.config import ModelConfig, TrainConfig
from ecgviz.detectors.lstm import RecurrentAutoencoder
from ecgviz.detectors.reconstruction import measure
from ecgviz.detectors.train import EpochInfo, beat_loss, fit_normalisation, resolve_device, train
from ecgviz.evaluation import metrics
from ecgviz.evaluation.split import make_split
from ecgviz.io.data import BeatData

TARGETS = (0.98, 0.99)
# The classic recipe: one Adam step per beat, the wide model reading one sample per step, the summed L1 loss.
CLASSIC_MODEL = ModelConfig(embedding_dim=128, chunk=1)
CLASSIC_LR = 1e-3


@dataclass(frozen=True)
class Protocol:
    """The beats of one seeded split: training and validation normals, and the held-out evaluation set."""

    X_train: np.ndarray
    X_val: np.ndarray
    X_eval: np.ndarray
    is_anomaly: np.ndarray
    seed: int


def protocol(data: BeatData, seed: int = 0, normal_labels: Sequence[str] = ("1",),
             limit: int | None = None) -> Protocol:
    """The split ecgviz.pipeline.protocol.fit makes for this seed, as arrays; `limit` keeps that many of each part."""
    split = make_split(data.labels, normal_labels, seed=seed)
    idx, is_anomaly = split.eval_indices()
    train, val = split.train, split.val
    if limit is not None:
        # a quick run: a few beats of each part, both classes kept in the evaluation set
        train, val = train[:limit], val[:limit]
        keep = np.r_[np.flatnonzero(~is_anomaly)[:limit], np.flatnonzero(is_anomaly)[:limit]]
        idx, is_anomaly = idx[keep], is_anomaly[keep]
    return Protocol(data.X[train], data.X[val], data.X[idx], is_anomaly, seed)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def classic_epoch(p: Protocol, n_beats: int = 300, device: str = "cpu", warmup: int = 5) -> dict:
    """Seconds per epoch of the per-beat loop, timed over n_beats steps and scaled to all training normals."""
    dev = resolve_device(device)
    torch.manual_seed(p.seed)
    mean, std = fit_normalisation(p.X_train)
    rng = np.random.default_rng(p.seed)
    order = rng.permutation(len(p.X_train))[: n_beats + warmup]
    x = torch.from_numpy(((p.X_train[order] - mean) / std).astype(np.float32)).unsqueeze(-1).to(dev)
    model = RecurrentAutoencoder(CLASSIC_MODEL).to(dev).train()
    opt = torch.optim.Adam(model.parameters(), lr=CLASSIC_LR)

    def step(i: int) -> None:
        xb = x[i : i + 1]
        loss = beat_loss(model(xb), xb, "l1").sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for i in range(min(warmup, len(x))):  # first steps allocate and pick kernels
        step(i)
    _sync(dev)
    timed = range(min(warmup, len(x)), len(x))
    wall, cpu = time.perf_counter(), time.process_time()
    for i in timed:
        step(i)
    _sync(dev)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    n = max(len(timed), 1)
    return {
        "beats_timed": len(timed),
        "epoch_beats": len(p.X_train),
        "s_per_beat": wall / n,
        "s_per_epoch": wall / n * len(p.X_train),
        "cpu_s_per_epoch": cpu / n * len(p.X_train),
        "device": str(dev),
    }


class _AurocClock:
    """on_epoch callback: held-out AUROC after each epoch, with its own time kept off the training clock."""

    def __init__(self, p: Protocol, config: TrainConfig, stop_at: float | None):
        self.p, self.config, self.stop_at = p, config, stop_at
        self.norm = fit_normalisation(p.X_train)  # what train() normalises with
        self.eval_wall = self.eval_cpu = 0.0
        self.cpu_start = time.process_time()
        self.epochs: list[dict] = []

    def __call__(self, info: EpochInfo) -> bool:
        cpu_now = time.process_time()
        train_wall, train_cpu = info.elapsed_s - self.eval_wall, cpu_now - self.cpu_start - self.eval_cpu
        wall = time.perf_counter()
        device = str(next(info.model.parameters()).device)
        errors, _ = measure(info.model, self.p.X_eval, error=self.config.loss, normalisation=self.norm,
                            device=device, reconstructions=False)
        auroc = metrics.roc_auc(errors, self.p.is_anomaly)
        self.eval_wall += time.perf_counter() - wall
        self.eval_cpu += time.process_time() - cpu_now
        self.epochs.append({"epoch": info.epoch, "train_s": train_wall, "train_cpu_s": train_cpu,
                            "auroc": auroc, "val_loss": info.val_loss})
        return self.stop_at is not None and auroc is not None and auroc >= self.stop_at


def ecgviz_training(p: Protocol, model_config: ModelConfig | None = None, config: TrainConfig | None = None,
                    *, targets: Sequence[float] = TARGETS, stop_at: float | None = None) -> dict:
    """Train with ecgviz.detectors.train; seconds (training only) per epoch and to reach each held-out AUROC target."""
    model_config = model_config or ModelConfig()
    config = replace(config or TrainConfig(), seed=p.seed)
    clock = _AurocClock(p, config, stop_at)
    dev = resolve_device(config.device)
    result = train(p.X_train, p.X_val, model_config, config, on_epoch=clock)
    _sync(dev)
    epochs = clock.epochs
    last = epochs[-1] if epochs else {"train_s": 0.0, "train_cpu_s": 0.0}
    reached = {}
    for target in targets:
        hit = next((e for e in epochs if e["auroc"] is not None and e["auroc"] >= target), None)
        reached[f"{target:g}"] = None if hit is None else {"s": hit["train_s"], "cpu_s": hit["train_cpu_s"],
                                                           "epoch": hit["epoch"]}
    aurocs = [e["auroc"] for e in epochs if e["auroc"] is not None]
    # train() hands back the weights of the best validation epoch: that model is the one a checkpoint keeps
    kept = next((e["auroc"] for e in epochs if e["epoch"] == result.best_epoch), None)
    return {
        "model_config": model_config.to_dict(),
        "train_config": config.to_dict(),
        "device": result.device,
        "threads": result.threads,
        "n_train": len(p.X_train),
        "epochs_run": len(epochs),
        "s_per_epoch": last["train_s"] / max(len(epochs), 1),
        "cpu_s_per_epoch": last["train_cpu_s"] / max(len(epochs), 1),
        "train_s": last["train_s"],
        "reached": reached,
        "best_auroc": max(aurocs) if aurocs else None,
        "final_auroc": aurocs[-1] if aurocs else None,
        "best_epoch": result.best_epoch,
        "kept_auroc": kept,
        "eval_s_excluded": clock.eval_wall,
        "epochs": epochs,
    }
