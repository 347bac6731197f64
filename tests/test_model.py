import pytest
import torch

from ecgviz.model import ModelConfig, RecurrentAutoencoder


@pytest.mark.parametrize("length", [3, 24, 140])
def test_shapes_any_length(length):
    model = RecurrentAutoencoder(ModelConfig(embedding_dim=4))
    x = torch.randn(5, length, 1)
    assert model(x).shape == (5, length, 1)
    assert model.encoder(x).shape == (5, 4)


def test_layer_widths_follow_embedding():
    model = RecurrentAutoencoder(ModelConfig(embedding_dim=6))
    assert model.encoder.rnn1.hidden_size == 12
    assert model.encoder.rnn2.hidden_size == 6
    assert model.decoder.rnn1.hidden_size == 6
    assert model.decoder.rnn2.hidden_size == 12
    assert model.decoder.out.out_features == 1


def test_batch_items_are_independent():
    torch.manual_seed(0)
    model = RecurrentAutoencoder(ModelConfig(embedding_dim=4)).eval()
    x = torch.randn(3, 10, 1)
    with torch.no_grad():
        together = model(x)
        alone = model(x[1:2])
    assert torch.allclose(together[1:2], alone, atol=1e-6)


def test_config_round_trip():
    cfg = ModelConfig(embedding_dim=8)
    assert ModelConfig(**cfg.to_dict()) == cfg
    with pytest.raises(AttributeError):
        cfg.embedding_dim = 3
