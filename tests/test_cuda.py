"""The CUDA path: training (fp32 and bf16 autocast), scoring and checkpoints; skipped without a CUDA GPU."""

import io
import zipfile

import numpy as np
import pytest
import torch

from ecgviz.checkpoint.store import load_checkpoint, to_dict
from ecgviz.detectors.config import ModelConfig, TrainConfig
from ecgviz.detectors.reconstruction import measure
from ecgviz.detectors.train import train
from ecgviz.io.data import load_ecg5000
from ecgviz.pipeline.protocol import evaluate, fit
from tests.helpers import synthetic_beats

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def beats():
    X, _ = synthetic_beats(n_normal=80, n_anomaly=0, length=30)
    return X[:64], X[64:]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_training_on_cuda_learns_and_returns_a_cpu_model(beats, precision):
    cfg = TrainConfig(epochs=8, batch_size=8, lr=2e-2, patience=100, seed=0, device="cuda", precision=precision)
    res = train(*beats, ModelConfig(embedding_dim=8, chunk=3), cfg)
    assert res.device.startswith("cuda")
    assert next(res.model.parameters()).device.type == "cpu"
    assert next(res.model.parameters()).dtype == torch.float32  # autocast never changes the stored weights
    assert res.history[-1]["train_loss"] < 0.7 * res.history[0]["train_loss"]


def test_cuda_scores_match_cpu_scores(beats):
    cfg = TrainConfig(epochs=3, batch_size=8, seed=0, device="cuda")
    model = train(*beats, ModelConfig(embedding_dim=8, chunk=3), cfg).model
    X = np.concatenate(beats)
    err_cpu, rec_cpu = measure(model, X, device="cpu")
    err_gpu, rec_gpu = measure(model, X, device="cuda")
    np.testing.assert_allclose(err_gpu, err_cpu, rtol=1e-3)
    np.testing.assert_allclose(rec_gpu, rec_cpu, atol=1e-4)
    assert next(model.parameters()).device.type == "cpu"  # scoring on the GPU leaves the caller's model alone


def test_default_training_on_ecg5000_reaches_auroc_099_and_its_gpu_saved_file_loads_on_the_cpu():
    ckpt = fit(load_ecg5000(), ["1"], ModelConfig(), TrainConfig(device="cuda"))
    assert ckpt.train_config["device_used"].startswith("cuda")
    assert evaluate(ckpt, load_ecg5000()).auroc >= 0.99
    # the weights saved while they sit on the GPU, as a script saving a live model would
    d = to_dict(ckpt)
    d["state_dict"] = {k: v.cuda() for k, v in d["state_dict"].items()}
    buf = io.BytesIO()
    torch.save(d, buf)
    archive = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    assert b"cuda" in archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
    again = load_checkpoint(buf.getvalue())
    assert next(again.detector.model_.parameters()).device.type == "cpu"
    X = load_ecg5000().X[:200]
    np.testing.assert_array_equal(again.detector.decision_function(X), ckpt.detector.decision_function(X))
