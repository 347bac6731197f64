import itertools
import threading
from dataclasses import replace

import numpy as np
import pytest
import torch

from ecgviz.detectors.config import ModelConfig, TrainConfig
from ecgviz.detectors.train import beat_loss, fit_normalisation, resolve_device, train
from tests.helpers import synthetic_beats

CFG = TrainConfig(epochs=6, batch_size=4, lr=2e-2, patience=100, seed=1, device="cpu")


@pytest.fixture(scope="module")
def beats():
    X, _ = synthetic_beats(n_normal=48, n_anomaly=0, length=16)
    return X[:40], X[40:]


@pytest.fixture(scope="module")
def result(beats):
    seen = []
    res = train(*beats, ModelConfig(embedding_dim=4), CFG, on_epoch=seen.append)
    return res, seen


def test_history_and_callback(result):
    res, seen = result
    assert [i.epoch for i in seen] == list(range(1, 7))
    assert [h["epoch"] for h in res.history] == list(range(1, 7))
    assert all(i.epochs == 6 for i in seen)
    assert [h["val_loss"] for h in res.history] == [i.val_loss for i in seen]
    assert all(b.elapsed_s >= a.elapsed_s for a, b in itertools.pairwise(seen))
    # training actually learns: the last epoch's loss is well below the first
    assert res.history[-1]["train_loss"] < 0.7 * res.history[0]["train_loss"]


def test_best_weights_restored(result, beats):
    res, _ = result
    best = min(res.history, key=lambda h: h["val_loss"])
    assert res.best_epoch == best["epoch"]
    norm = res.normalisation
    xv = torch.from_numpy((beats[1] - norm[0]) / norm[1]).unsqueeze(-1)
    with torch.no_grad():
        val_loss = float(beat_loss(res.model(xv), xv, "l1").mean())
    assert val_loss == pytest.approx(best["val_loss"], rel=1e-4)
    assert next(res.model.parameters()).device.type == "cpu" and not res.model.training


def test_seed_reproducible(beats, result):
    again = train(*beats, ModelConfig(embedding_dim=4), CFG)
    assert [h["val_loss"] for h in again.history] == [h["val_loss"] for h in result[0].history]


def test_callback_can_stop(beats):
    res = train(*beats, ModelConfig(embedding_dim=4), CFG, on_epoch=lambda info: info.epoch == 2)
    assert len(res.history) == 2 and res.cancelled and res.stopped_early


def test_stop_event_before_start(beats):
    stop = threading.Event()
    stop.set()
    res = train(*beats, ModelConfig(embedding_dim=4), CFG, stop=stop)
    assert res.history == [] and res.cancelled


def test_early_stopping_patience(beats):
    # lr 0 never improves after epoch 1, so patience 2 stops at epoch 3
    cfg = TrainConfig(epochs=10, batch_size=8, lr=0.0, patience=2, seed=0, device="cpu", lr_schedule="constant")
    res = train(*beats, ModelConfig(embedding_dim=4), cfg)
    assert len(res.history) == 3 and res.best_epoch == 1 and res.stopped_early and not res.cancelled


def test_mse_loss_and_normalisation():
    x = torch.tensor([[[1.0], [2.0]]])
    r = torch.tensor([[[0.0], [4.0]]])
    assert beat_loss(r, x, "l1").item() == pytest.approx(3.0)
    assert beat_loss(r, x, "mse").item() == pytest.approx(2.5)
    with pytest.raises(ValueError, match="unknown loss"):
        beat_loss(r, x, "huber")
    mean, std = fit_normalisation(np.array([[1.0, 3.0]], np.float32))
    assert (mean, std) == (2.0, 1.0)
    assert fit_normalisation(np.ones((2, 3), np.float32)) == (1.0, 1.0)


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            resolve_device("cuda")


def test_callback_sees_the_live_model(beats):
    seen = []
    res = train(*beats, ModelConfig(embedding_dim=4), CFG, on_epoch=lambda info: seen.append(
        (info.model is not None and not info.model.training, sum(float(p.sum()) for p in info.model.parameters()))))
    assert all(ok for ok, _ in seen)
    assert len({total for _, total in seen}) == len(seen)  # the weights change between epochs
    assert res.model is not None


def test_chunked_model_learns(beats):
    res = train(*beats, ModelConfig(embedding_dim=4, chunk=4), CFG)
    assert res.model.config.chunk == 4
    assert res.history[-1]["train_loss"] < 0.7 * res.history[0]["train_loss"]


def test_precision_is_checked_and_bf16_changes_nothing_off_cuda(beats):
    with pytest.raises(ValueError, match="precision"):
        train(*beats, ModelConfig(embedding_dim=4), replace(CFG, epochs=1, precision="fp16"))
    a = train(*beats, ModelConfig(embedding_dim=4), replace(CFG, epochs=2))
    b = train(*beats, ModelConfig(embedding_dim=4), replace(CFG, epochs=2, precision="bf16"))
    assert [h["val_loss"] for h in a.history] == [h["val_loss"] for h in b.history]
