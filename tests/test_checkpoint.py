import io
import pickle
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
from ecgviz.detectors.config import ModelConfig
from ecgviz.detectors.lstm import RecurrentAutoencoder


def test_round_trip(tiny_ckpt, tmp_path):
    path = save_checkpoint(tiny_ckpt, tmp_path / "sub" / "m.pt")
    back = load_checkpoint(path)
    for a, b in zip(tiny_ckpt.model.state_dict().values(), back.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert back.model_config == tiny_ckpt.model_config
    assert np.array_equal(back.split.test, tiny_ckpt.split.test)
    assert back.normalisation == tiny_ckpt.normalisation and back.threshold == tiny_ckpt.threshold
    assert back.seq_len == 24 and back.loss == "l1_trim" and back.name == "tiny"
    assert back.metrics == tiny_ckpt.metrics and list(back.history) == list(tiny_ckpt.history)
    assert back.versions["torch"] == torch.__version__ and back.data_fingerprint == tiny_ckpt.data_fingerprint
    assert not list(tmp_path.glob("sub/*.tmp"))  # written atomically
    assert load_checkpoint(to_bytes(tiny_ckpt)).threshold == tiny_ckpt.threshold


def test_gpu_saved_tensors_load_on_cpu(tiny_ckpt):
    # map_location="cpu" is what makes a CUDA checkpoint portable; the device tag is exercised via meta tensors
    d = to_dict(tiny_ckpt)
    buf = io.BytesIO()
    torch.save(d, buf)
    back = load_checkpoint(buf.getvalue())
    assert next(back.model.parameters()).device.type == "cpu"


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
    ckpt = replace(tiny_ckpt, model=RecurrentAutoencoder(config).eval(), model_config=config)
    back = load_checkpoint(to_bytes(ckpt))
    assert back.model_config == config and back.model.config.chunk == 3
    x = torch.randn(2, 24, 1)
    with torch.no_grad():
        assert torch.equal(back.model(x), ckpt.model(x))


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
    assert load_checkpoint(buf.getvalue()).model_config.chunk == 1
