"""The checkpoint's optional fields for provenance and resuming: stored, read back, and validated."""

import io

import pytest
import torch

from ecgviz.checkpoint.store import CheckpointError, load_checkpoint, to_dict


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


def test_a_model_names_its_data_when_the_lengths_differ(tiny_ckpt):
    with pytest.raises(CheckpointError, match=r"has 140 samples per beat \(it was trained on tiny_TRAIN.arff, "
                                              r"tiny_TEST.arff\)"):
        tiny_ckpt.check_fits(140)


def test_cli_evaluate_on_other_data_names_the_training_data(tiny_ckpt, tmp_path, capsys):
    from ecgviz.checkpoint.store import save_checkpoint
    from ecgviz.cli import main as cli
    from tests.helpers import synthetic_beats, write_arff

    X, labels = synthetic_beats(n_normal=20, n_anomaly=6, length=24, seed=3)
    other = write_arff(tmp_path / "other.arff", X, labels)
    path = save_checkpoint(tiny_ckpt, tmp_path / "tiny.pt")
    assert cli.main(["evaluate", "--checkpoint", str(path), "--data", str(other)]) == 0
    out = capsys.readouterr().out
    assert (f"note: the model was trained on other data: tiny_TRAIN.arff, tiny_TEST.arff; beats of 24 samples, "
            f"fingerprint {tiny_ckpt.data_fingerprint[:12]}") in out
