"""The checkpoint's optional fields for provenance and resuming: stored, read back, and validated."""

import io

import pytest
import torch

from ecgviz.checkpoint import CheckpointError, load_checkpoint, to_dict


def saved(d: dict) -> bytes:
    buf = io.BytesIO()
    torch.save(d, buf)
    return buf.getvalue()


def test_data_sources_and_adam_state_round_trip(tiny_ckpt):
    back = load_checkpoint(saved(to_dict(tiny_ckpt)))
    assert back.data_sources == ("tiny_TRAIN.arff", "tiny_TEST.arff")
    state = back.train_state["optimizer"]
    assert state["param_groups"][0]["lr"] == pytest.approx(0.0, abs=1e-6)  # the cosine schedule's end
    original = tiny_ckpt.train_state["optimizer"]["state"]
    assert set(state["state"]) == set(original)
    for key in original:
        assert torch.equal(state["state"][key]["exp_avg"], original[key]["exp_avg"])


def test_older_checkpoints_without_the_fields_still_load(tiny_ckpt):
    d = to_dict(tiny_ckpt)
    d.pop("data_sources")
    d.pop("train_state")
    back = load_checkpoint(saved(d))
    assert back.data_sources == () and back.train_state == {}


@pytest.mark.parametrize(("field", "value", "match"), [
    ("data_sources", "ECG5000_TRAIN.arff", "data_sources must be a list"),
    ("data_sources", ["ok.arff", 3], "file names"),
    ("data_sources", ["x" * 256], "file names"),
    ("data_sources", ["a"] * 1001, "at most 1000"),
    ("train_state", [1, 2], "train_state must be a dict"),
    ("train_state", {"optimizer": "adam"}, "no usable optimizer state"),
    ("train_state", {"optimizer": {"state": {}, "param_groups": [3]}}, "no usable optimizer state"),
])
def test_bad_optional_fields_are_refused_by_name(tiny_ckpt, field, value, match):
    d = to_dict(tiny_ckpt)
    d[field] = value
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(saved(d), name="odd.pt")
