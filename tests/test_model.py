import pytest
import torch

from ecgviz.detectors.config import ModelConfig
from ecgviz.detectors.lstm import RecurrentAutoencoder


@pytest.mark.parametrize("length", [3, 24, 140])
@pytest.mark.parametrize("chunk", [1, 10])
def test_shapes_any_length(length, chunk):
    model = RecurrentAutoencoder(ModelConfig(embedding_dim=4, chunk=chunk))
    x = torch.randn(5, length, 1)
    assert model(x).shape == (5, length, 1)
    assert model.encoder(torch.randn(5, 7, chunk)).shape == (5, 4)


def test_layer_widths_follow_embedding():
    model = RecurrentAutoencoder(ModelConfig(embedding_dim=6, chunk=1))
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


@pytest.mark.parametrize(("chunk", "length"), [(2, 24), (4, 3), (4, 140), (7, 141)])
def test_chunked_shapes_any_length(chunk, length):
    model = RecurrentAutoencoder(ModelConfig(embedding_dim=4, chunk=chunk))
    x = torch.randn(5, length, 1)
    assert model(x).shape == (5, length, 1)
    assert model.encoder.rnn1.input_size == chunk
    assert model.decoder.out.out_features == chunk


def test_chunked_batch_items_are_independent():
    torch.manual_seed(0)
    model = RecurrentAutoencoder(ModelConfig(embedding_dim=4, chunk=5)).eval()
    x = torch.randn(3, 22, 1)
    with torch.no_grad():
        together = model(x)
        alone = model(x[1:2])
    assert torch.allclose(together[1:2], alone, atol=1e-6)


def test_chunk_padding_repeats_the_last_sample():
    # 10 samples in chunks of 4 are read as 12: the last sample twice more
    torch.manual_seed(0)
    model = RecurrentAutoencoder(ModelConfig(embedding_dim=3, chunk=4)).eval()
    x = torch.randn(2, 10, 1)
    padded = torch.cat([x, x[:, -1:], x[:, -1:]], dim=1)
    with torch.no_grad():
        assert torch.allclose(model(x), model(padded)[:, :10], atol=1e-6)


def test_config_dict_round_trip_keeps_chunk():
    assert ModelConfig(**ModelConfig(embedding_dim=8, chunk=4).to_dict()).chunk == 4


@pytest.mark.parametrize("bad", [{"chunk": 0}, {"embedding_dim": 0}, {"n_features": -1}])
def test_config_rejects_non_positive_sizes(bad):
    with pytest.raises(ValueError):
        ModelConfig(**{"embedding_dim": 4, **bad})
