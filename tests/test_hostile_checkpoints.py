"""Hostile checkpoints: bounded configs, compressed archives and bad fields are refused before anything is built.

Memory is measured as the peak RSS of a fresh subprocess.
"""

from __future__ import annotations

import io
import math
import zipfile
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from ecgviz.checkpoint.store import CheckpointError, load_checkpoint, to_dict
from ecgviz.dashboard.text import plain
from ecgviz.detectors import limits
from ecgviz.detectors.config import ModelConfig
from tests.rss_support import peak_rss

ROOT = Path(__file__).resolve().parent.parent


def torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def repack(raw: bytes, method: int = zipfile.ZIP_DEFLATED, fill: tuple[str, int] | None = None) -> bytes:
    """The archive with every member stored with `method`; `fill` = (member name end, size) gets that many zeros."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as src, zipfile.ZipFile(out, "w", compression=method) as dst:
        for info in src.infolist():
            if fill is None or not info.filename.endswith(fill[0]):
                dst.writestr(info.filename, src.read(info.filename))
                continue
            with dst.open(info.filename, "w") as fh:
                for _ in range(fill[1] // 2**20):
                    fh.write(bytes(2**20))
            fill = None
    return out.getvalue()


def expanded_weights(config: ModelConfig) -> dict[str, torch.Tensor]:
    """Weights of the right shapes that are views of one number each: a few bytes on disk whatever the shape."""
    return {k: torch.zeros(1).expand(*s) for k, s in limits.weight_shapes(config).items()}


def test_a_compressed_archive_is_refused_before_torch_unpacks_it(tiny_ckpt):
    raw = torch_bytes(to_dict(tiny_ckpt))
    packed = repack(raw)
    assert torch.load(io.BytesIO(packed), weights_only=True)["format"] == "ecgviz-checkpoint"  # torch would read it
    with pytest.raises(CheckpointError, match=r"^p\.pt is not an ecgviz checkpoint: its archive member "
                                              r"'.*' is compressed; torch\.save never compresses"):
        load_checkpoint(packed, name="p.pt")
    assert load_checkpoint(repack(raw, zipfile.ZIP_STORED)).threshold == tiny_ckpt.threshold


def test_a_zip_bomb_costs_no_memory(tiny_ckpt, tmp_path):
    # a weight's record replaced by 128 MiB of zeros packed into ~130 kB: torch.load unpacked all of it
    # before comparing it with the weight's size (measured: +129 MiB peak RSS before the archive check)
    bomb = tmp_path / "bomb.pt"
    bomb.write_bytes(repack(torch_bytes(to_dict(tiny_ckpt)), fill=("data/0", 128 * 2**20)))
    assert bomb.stat().st_size < 2**20
    got = peak_rss(f"""
from ecgviz.checkpoint.store import CheckpointError, load_checkpoint
raw = open({str(bomb)!r}, "rb").read()
mark()
try:
    load_checkpoint(raw, name="bomb.pt")
except CheckpointError as exc:
    out["error"] = str(exc)
""")
    assert "is compressed" in got["error"]
    assert got["peak"] - got["base"] < 40, got


@pytest.mark.parametrize(("change", "message"), [
    ({"chunk": 10**6}, "model_config: chunk 1,000,000 must be in [1, 1,024]"),
    ({"embedding_dim": 10**5}, "model_config: embedding_dim 100,000 must be in [1, 4,096]"),
    ({"n_features": 3}, "model_config: n_features 3 must be 1 (beats are single-lead)"),
    ({"embedding_dim": 2.5}, "model_config.embedding_dim: 2.5 is not a whole number"),
    ({"embedding_dim": True}, "model_config.embedding_dim: True is not a whole number"),
])
def test_config_fields_are_bounded(tiny_ckpt, change, message):
    d = to_dict(tiny_ckpt)
    d["model_config"] = {**d["model_config"], **change}
    with pytest.raises(CheckpointError, match="^m.pt is a damaged ecgviz checkpoint: " + message.replace("[", r"\[")
                       .replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        load_checkpoint(torch_bytes(d), name="m.pt")


def test_seq_len_is_bounded(tiny_ckpt):
    d = {**to_dict(tiny_ckpt), "seq_len": 10**7}
    with pytest.raises(CheckpointError, match=r"seq_len 10,000,000 must be in \[3, 100,000\]"):
        load_checkpoint(torch_bytes(d))


def test_a_model_too_big_for_memory_is_refused_before_it_is_built(tiny_ckpt, tmp_path):
    # weights of the right shapes stored as views of one number: a 30 kB file asking for a ~0.6 GiB model,
    # which the old loader built and filled (the same trick with a longer chunk asked for 9-32 GB)
    config = ModelConfig(embedding_dim=1100, chunk=10)
    assert limits.model_bytes(config, 24) > limits.MAX_MODEL_BYTES
    d = {**to_dict(tiny_ckpt), "model_config": config.to_dict(), "state_dict": expanded_weights(config)}
    path = tmp_path / "wide.pt"
    path.write_bytes(torch_bytes(d))
    assert path.stat().st_size < 100_000
    got = peak_rss(f"""
from ecgviz.checkpoint.store import CheckpointError, load_checkpoint
mark()
try:
    load_checkpoint({str(path)!r})
except CheckpointError as exc:
    out["error"] = str(exc)
""")
    assert got["error"].startswith("wide.pt is a damaged ecgviz checkpoint: model_config: the model would need "
                                   "about 556 MiB (embedding 1100, chunk 10, 24 samples per beat); at most 512 MiB")
    assert got["peak"] - got["base"] < 60, got


def test_the_memory_estimate_bounds_what_a_forward_pass_takes():
    # measured: a forward pass of one batch in a fresh process stays under the estimate used to size batches
    config = ModelConfig(embedding_dim=64, chunk=1)
    T, batch = 400, 256
    estimate = limits.activation_bytes(config, T) * batch / 2**20
    got = peak_rss(f"""
import torch
from ecgviz.detectors.lstm import RecurrentAutoencoder
from ecgviz.detectors.config import ModelConfig
torch.set_num_threads(1)
model = RecurrentAutoencoder(ModelConfig(embedding_dim=64, chunk=1)).eval()
x = torch.randn({batch}, {T}, 1)
mark()
with torch.inference_mode():
    model(x)
""")
    assert 0 < got["peak"] - got["base"] < estimate, (got, estimate)
    assert limits.scoring_batch(config, T, 1024) == min(1024, limits.SCORE_BUDGET_BYTES //
                                                         limits.activation_bytes(config, T))


def _bad(d: dict, field: str, value) -> dict:
    d = {**d}
    if "." in field:
        head, key = field.split(".", 1)
        d[head] = {**d[head], key: value}
    else:
        d[field] = value
    return d


BAD_FIELDS = [
    ("metrics.auroc", "0.99", r"metrics\.auroc: '0\.99' is not a number in \[0, 1\]"),
    ("metrics.auroc", 7.0, r"metrics\.auroc: 7\.0 is not a number in \[0, 1\]"),
    ("history", "junk", r"history: 'junk' is not a list of at most 100,000 epochs"),
    ("history", [1, 2], r"history\[0\]: 1 is not a dict of epoch numbers"),
    ("history", [{"epoch": "x", "train_loss": 1.0}], r"history\[0\]\.epoch: 'x' is not a whole number"),
    ("history", [{"epoch": 1, "train_loss": "low"}], r"history\[0\]\.train_loss: 'low' is not a number"),
    ("normalisation", [0.0, 1e-300], r"normalisation std: 1e-300 is not a number in \[1e-12, 1e\+09\]"),
    ("normalisation", [1e38, 1.0], r"normalisation mean: 1e\+38 is not a number in \[-1e\+09, 1e\+09\]"),
    ("normalisation", [0.0], r"normalisation: a list is not \(mean, std\)"),
    ("threshold", 1e308, r"threshold: 1e\+308 is not a number in \[0, 1e\+15\]"),
    ("threshold", -1e308, r"threshold: -1e\+308 is not a number"),
    ("threshold", math.nan, r"threshold: nan is not a number"),
    ("split.test", [0, 10**6], r"split\.test: holds a value that is not a beat index in \[0, 80\)"),
    ("split.train", [-1], r"split\.train: holds a value that is not a beat index"),
    ("split.train", [1.5], r"split\.train: holds a value that is not a beat index"),
    ("split.n_beats", "80", r"split\.n_beats: '80' is not a whole number"),
    ("split.fractions", [0.5, 0.5, 0.5], r"split\.fractions: they sum to 1\.5, not 1"),
    ("loss", "huber", r"loss: 'huber' is not one of l1, l1_trim, mse"),
    ("name", ["x"], r"name: a list is not a text of at most 200 characters"),
    ("class_names", {"1": 5}, r"class_names\['1'\]: 5 is not a text"),
    ("train_config.best_epoch", "3", r"train_config\.best_epoch: '3' is not a whole number"),
    ("metrics.extra", torch.zeros(3), r"metrics\.extra: holds a tensor of shape \(3,\), not plain data"),
]


@pytest.mark.parametrize(("field", "value", "message"), BAD_FIELDS, ids=[f"{f}-{i}" for i, (f, _, _) in
                                                                           enumerate(BAD_FIELDS)])
def test_every_field_is_checked_at_load(tiny_ckpt, field, value, message):
    d = _bad(to_dict(tiny_ckpt), field, value)
    with pytest.raises(CheckpointError, match=r"^b\.pt is a damaged ecgviz checkpoint: " + message):
        load_checkpoint(torch_bytes(d), name="b.pt")


def test_nan_weights_are_refused(tiny_ckpt):
    d = to_dict(tiny_ckpt)
    key = next(iter(d["state_dict"]))
    d["state_dict"] = {**d["state_dict"], key: torch.full_like(d["state_dict"][key], math.nan)}
    with pytest.raises(CheckpointError, match=f"weight {key} holds values that are not finite"):
        load_checkpoint(torch_bytes(d))


def test_the_model_page_keeps_its_tabs_and_model_after_a_bad_checkpoint(tiny_ckpt, tiny_data, monkeypatch, tmp_path):
    import streamlit as st

    from ecgviz.checkpoint.store import save_checkpoint
    from ecgviz.dashboard import config, session

    st.cache_data.clear()
    st.cache_resource.clear()
    monkeypatch.setenv(config.CHECKPOINT_ENV, str(save_checkpoint(tiny_ckpt, tmp_path / "tiny.pt")))
    monkeypatch.setenv(config.CHECKPOINT_DIR_ENV, str(tmp_path))
    blob = torch_bytes(_bad(to_dict(tiny_ckpt), "metrics.auroc", "high"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["active_data"] = session.make_data(tiny_data, "tiny")
    at.run()
    at.switch_page("pages/model.py").run()
    at.file_uploader(key="ckpt_upload").set_value(("b.pt", blob, "application/octet-stream")).run()
    assert not at.exception
    assert [e.value for e in at.error] == [plain("b.pt is a damaged ecgviz checkpoint: metrics.auroc: 'high' is "
                                                 "not a number in [0, 1]")]
    assert len(at.tabs) == 2 and at.session_state["active_model"].name == "tiny"
    st.cache_data.clear()
    st.cache_resource.clear()


def test_training_refuses_a_model_it_could_not_load_again(tiny_data):
    from ecgviz.pipeline.protocol import fit

    with pytest.raises(ValueError, match=r"the model would need about 556 MiB \(embedding 1100"):
        fit(tiny_data, ["1"], ModelConfig(embedding_dim=1100))
    with pytest.raises(ValueError, match=r"chunk 2,000 must be in \[1, 1,024\]"):
        fit(tiny_data, ["1"], ModelConfig(chunk=2000))
