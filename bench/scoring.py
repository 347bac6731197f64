"""Scoring row: beats per second through ecgviz.detectors.reconstruction.measure, what scoring a data set runs."""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

from ecgviz.detectors import threads
from ecgviz.detectors.config import ModelConfig
from ecgviz.detectors.lstm import RecurrentAutoencoder
from ecgviz.detectors.reconstruction import DEFAULT_BATCH, measure
from ecgviz.detectors.train import resolve_device


def scoring_speed(X: np.ndarray, model_config: ModelConfig, device: str = "cpu", repeats: int = 3,
                  seed: int = 0) -> dict:
    """Beats per second scoring X (errors and reconstructions), best and median of `repeats` runs after a warm-up."""
    dev = resolve_device(device)
    torch.manual_seed(seed)
    # speed does not depend on the weights' values; a CPU model, as a loaded checkpoint is (measure() moves it)
    model = RecurrentAutoencoder(model_config).eval()
    X = np.ascontiguousarray(X, dtype=np.float32)
    measure(model, X[: min(len(X), 256)], device=str(dev))  # warm-up: allocations, kernel choice
    walls, cpus = [], []
    for _ in range(max(repeats, 1)):
        wall, cpu = time.perf_counter(), time.process_time()
        measure(model, X, device=str(dev))  # returns numpy arrays, so a GPU run has finished here
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    n = len(X)
    return {
        "model_config": model_config.to_dict(),
        "device": str(dev),
        # the count the rule gives a call of this size (score() sets it for the call, and then restores the caller's)
        "threads": threads.choose(threads.lstm_work(model_config, min(DEFAULT_BATCH, n))),
        "n_beats": n,
        "beats_per_s": n / min(walls),
        "beats_per_s_median": n / statistics.median(walls),
        "beats_per_cpu_s": n / min(cpus) if min(cpus) > 0 else None,
        "runs_s": walls,
    }
