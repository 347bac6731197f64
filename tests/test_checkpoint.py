import io
import pickle
import zipfile
from dataclasses import replace

import numpy as np
import pytest
import torch

from ecgviz.checkpoint.store import (
    SHIPPED_CHECKPOINT,
    CheckpointError,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
    to_bytes,
    to_dict,
)
from ecgviz.detectors.autoencoder import LSTMAutoencoder
from ecgviz.detectors.config import ModelConfig
from ecgviz.detectors.lstm import RecurrentAutoencoder


def test_round_trip(tiny_ckpt, tmp_path):
    path = save_checkpoint(tiny_ckpt, tmp_path / "sub" / "m.pt")
    back = load_checkpoint(path)
    before, after = tiny_ckpt.detector, back.detector
    for a, b in zip(before.model_.state_dict().values(), after.model_.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert after.get_params()["model_config"] == before.model_.config
    assert np.array_equal(back.split.test, tiny_ckpt.split.test)
    assert after.normalisation_ == before.normalisation_ and back.threshold == tiny_ckpt.threshold
    assert back.seq_len == 24 and back.loss == "l1_trim" and back.name == "tiny"
    assert back.metrics == tiny_ckpt.metrics and list(back.history) == list(tiny_ckpt.history)
    assert back.versions["torch"] == torch.__version__ and back.data_fingerprint == tiny_ckpt.data_fingerprint
    assert not list(tmp_path.glob("sub/*.tmp"))  # written atomically
    assert load_checkpoint(to_bytes(tiny_ckpt)).threshold == tiny_ckpt.threshold


_TAG_CUDA = {"on": False}


def _cuda_tag(storage):
    return "cuda:0" if _TAG_CUDA["on"] else None


# torch records each storage's device in the file through the registered taggers: one that answers first while
# switched on writes the same "cuda:0" location a GPU run's tensors get, without needing a GPU
torch.serialization.register_package(0, _cuda_tag, lambda storage, location: None)


def cuda_tagged_bytes(d: dict) -> bytes:
    """`d` saved as a GPU run saves it: every tensor's location in the archive reads cuda:0."""
    buf = io.BytesIO()
    _TAG_CUDA["on"] = True
    try:
        torch.save(d, buf)
    finally:
        _TAG_CUDA["on"] = False
    return buf.getvalue()


def test_gpu_saved_tensors_load_on_cpu(tiny_ckpt, tiny_data):
    raw = cuda_tagged_bytes(to_dict(tiny_ckpt))
    archive = zipfile.ZipFile(io.BytesIO(raw))
    pickled = archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
    assert b"cuda:0" in pickled and b"'cpu'" not in pickled
    if not torch.cuda.is_available():  # the file really asks for a GPU: torch alone cannot read it here
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(io.BytesIO(raw), weights_only=True)
    back = load_checkpoint(raw)
    assert next(back.detector.model_.parameters()).device.type == "cpu"
    np.testing.assert_array_equal(back.detector.decision_function(tiny_data.X),
                                  tiny_ckpt.detector.decision_function(tiny_data.X))


class _Boom:
    def __reduce__(self):
        return (open, ("/tmp/ecgviz_pwned_by_checkpoint", "w"))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = __import__("pathlib").Path("/tmp/ecgviz_pwned_by_checkpoint")
    marker.unlink(missing_ok=True)
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as fh:
        torch.save({"format": "ecgviz-checkpoint", "payload": _Boom()}, fh, pickle_module=pickle)
    with pytest.raises(CheckpointError, match=r"evil.pt is not an ecgviz checkpoint: it refers to code \(.*open"):
        load_checkpoint(evil)
    raw = pickle.dumps(_Boom())
    with pytest.raises(CheckpointError):
        load_checkpoint(raw, name="raw.pkl")
    assert not marker.exists()


@pytest.mark.parametrize(
    ("payload", "match"),
    [(b"", "x.pt is not an ecgviz checkpoint: it is not a PyTorch file"),
     (b"hello world", "x.pt is not an ecgviz checkpoint: it is not a PyTorch file"),
     (None, "no 'ecgviz-checkpoint' marker")],
)
def test_foreign_files_refused(payload, match):
    if payload is None:
        buf = io.BytesIO()
        torch.save({"weights": torch.zeros(3)}, buf)
        payload = buf.getvalue()
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(payload, name="x.pt")


def test_damaged_checkpoint(tiny_ckpt):
    d = to_dict(tiny_ckpt)
    d["state_dict"].pop(next(iter(d["state_dict"])))
    buf = io.BytesIO()
    torch.save(d, buf)
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(buf.getvalue(), name="cut.pt")


def test_length_mismatch_message(tiny_ckpt):
    tiny_ckpt.check_fits(24)
    with pytest.raises(CheckpointError, match="trained on beats of 24 samples, but the data has 140"):
        tiny_ckpt.check_fits(140)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "nope.pt")


def test_with_threshold_and_listing(tiny_ckpt, tmp_path):
    c = tiny_ckpt.with_threshold(1.5)
    assert c.threshold == 1.5 and c.threshold_rule == "chosen by the user" and tiny_ckpt.threshold != 1.5
    save_checkpoint(tiny_ckpt, tmp_path / "b.pt")
    save_checkpoint(tiny_ckpt, tmp_path / SHIPPED_CHECKPOINT.name)
    assert [p.name for p in list_checkpoints(tmp_path)] == [SHIPPED_CHECKPOINT.name, "b.pt"]


def test_chunked_model_round_trip(tiny_ckpt):
    config = ModelConfig(embedding_dim=4, chunk=3)
    detector = LSTMAutoencoder.from_weights(config, RecurrentAutoencoder(config).state_dict(), (0.0, 1.0), "l1")
    ckpt = replace(tiny_ckpt, detector=detector)
    back = load_checkpoint(to_bytes(ckpt))
    assert back.detector.model_config == config and back.detector.model_.config.chunk == 3
    x = torch.randn(2, 24, 1)
    with torch.no_grad():
        assert torch.equal(back.detector.model_(x), detector.model_(x))


def test_checkpoint_without_chunk_reads_one_sample_per_step(tiny_ckpt):
    # files written before ModelConfig.chunk existed must keep their classic shape
    from ecgviz.detectors.config import ModelConfig
    from ecgviz.detectors.lstm import RecurrentAutoencoder

    classic = RecurrentAutoencoder(ModelConfig(embedding_dim=4, chunk=1))
    d = to_dict(tiny_ckpt)
    d["state_dict"] = classic.state_dict()
    d["model_config"] = {"embedding_dim": 4, "n_features": 1}
    buf = io.BytesIO()
    torch.save(d, buf)
    assert load_checkpoint(buf.getvalue()).detector.model_.config.chunk == 1


def test_the_shipped_checkpoint_loads_as_a_detector_scoring_as_its_weights_do():
    from ecgviz.detectors.reconstruction import beat_error
    from ecgviz.io.data import load_ecg5000

    # the file read by torch alone, the model rebuilt and run by hand: what its scores must be
    raw = torch.load(SHIPPED_CHECKPOINT, map_location="cpu", weights_only=True)
    model = RecurrentAutoencoder(ModelConfig(**raw["model_config"]))
    model.load_state_dict(raw["state_dict"])
    X = load_ecg5000().X[:500]
    mean, std = raw["normalisation"]
    x = torch.from_numpy((X - mean) / std).unsqueeze(-1)
    with torch.no_grad():
        expected = beat_error(model.eval()(x), x, raw["loss"]).double().numpy()
    ckpt = load_checkpoint(SHIPPED_CHECKPOINT)
    assert ckpt.kind == "lstm_ae" and ckpt.loss == raw["loss"] == "l1_trim" and raw["format_version"] == 1
    np.testing.assert_allclose(ckpt.detector.decision_function(X), expected, rtol=1e-5)
    # written back it keeps format 1, which every earlier version reads, and scores alike
    again = to_dict(ckpt)
    assert again["format_version"] == 1 and "detector" not in again
    np.testing.assert_array_equal(load_checkpoint(to_bytes(ckpt)).detector.decision_function(X),
                                  ckpt.detector.decision_function(X))
