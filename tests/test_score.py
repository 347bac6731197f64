import numpy as np
import pytest
import torch

from ecgviz.detectors.config import ModelConfig
from ecgviz.detectors.lstm import RecurrentAutoencoder
from ecgviz.detectors.reconstruction import measure


@pytest.fixture(scope="module")
def model_and_beats():
    torch.manual_seed(0)
    model = RecurrentAutoencoder(ModelConfig(embedding_dim=4)).eval()
    X = np.random.default_rng(0).standard_normal((37, 12)).astype(np.float32) * 3 + 5
    return model, X


def _direct(model, X, norm):
    x = torch.from_numpy((X - norm[0]) / norm[1]).unsqueeze(-1)
    with torch.no_grad():
        r = model(x)
    return x, r


@pytest.mark.parametrize("batch_size", [1, 5, 37, 1000])
def test_batching_does_not_change_results(model_and_beats, batch_size):
    model, X = model_and_beats
    norm = (5.0, 3.0)
    x, r = _direct(model, X, norm)
    errors, recon = measure(model, X, normalisation=norm, batch_size=batch_size)
    assert np.allclose(errors, (r - x).abs().sum(dim=(1, 2)).numpy(), rtol=1e-5)
    assert np.allclose(recon, r.squeeze(-1).numpy() * 3.0 + 5.0, atol=1e-5)
    assert errors.shape == (37,) and recon.shape == (37, 12) and recon.dtype == np.float32


def test_mse_and_errors_only(model_and_beats):
    model, X = model_and_beats
    x, r = _direct(model, X, (0.0, 1.0))
    mse, recon = measure(model, X, error="mse")
    assert np.allclose(mse, ((r - x) ** 2).mean(dim=(1, 2)).numpy(), rtol=1e-5)
    assert np.allclose(recon, r.squeeze(-1).numpy(), atol=1e-5)
    errors, recon = measure(model, X, reconstructions=False)
    assert recon is None and errors.shape == (37,)


def test_no_gradients_and_bad_shape(model_and_beats):
    model, X = model_and_beats
    measure(model, X)
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(ValueError, match="2-D"):
        measure(model, X[0])
