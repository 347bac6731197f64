"""Session actions: loading data and models, defaults, scoring, training into a saved checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

from ecgviz.checkpoint.store import CheckpointError, save_checkpoint
from ecgviz.dashboard import session, training
from ecgviz.detectors.config import ModelConfig, TrainConfig
from ecgviz.io.data import BeatData, DataError
from ecgviz.pipeline.protocol import fit
from tests.helpers import synthetic_beats, write_arff

T = 24


def synthetic(n_normal=40, n_abnormal=10, length=T, seed=0) -> BeatData:
    X, labels = synthetic_beats(n_normal, n_abnormal, length, seed)
    n = len(X)
    return BeatData(X, labels, {}, np.full(n, "synth.arff"), np.arange(1, n + 1))


def arff(tmp_path, X: np.ndarray, labels=None) -> bytes:
    return write_arff(tmp_path / "beats.arff", X, labels).read_bytes()


@pytest.fixture(scope="module")
def data() -> session.ActiveData:
    return session.make_data(synthetic(), "synthetic")


@pytest.fixture(scope="module")
def ckpt_path(tmp_path_factory, data):
    ckpt = fit(data.data, ["1"], ModelConfig(embedding_dim=4), TrainConfig(epochs=1, device="cpu"), name="tiny")
    return save_checkpoint(ckpt, tmp_path_factory.mktemp("ckpt") / "tiny.pt")


def test_model_from_path_and_bytes_share_an_id(ckpt_path):
    from_file = session.model_from_path(ckpt_path)
    from_upload = session.model_from_bytes(ckpt_path.read_bytes(), "tiny.pt")
    assert from_file.id == from_upload.id and len(from_file.id) == 16
    assert from_file.name == "tiny" and from_file.source == "saved" and from_upload.source == "uploaded"
    assert from_file.checkpoint_bytes() == ckpt_path.read_bytes() == from_upload.checkpoint_bytes()
    assert from_file.download_name() == "tiny.pt" and from_upload.download_name() == "tiny.pt"


def test_a_bad_checkpoint_upload_raises_checkpoint_error():
    with pytest.raises(CheckpointError, match="not an ecgviz checkpoint"):
        session.model_from_bytes(b"definitely not torch", "junk.pt")


def test_uploads_become_one_data_set_named_after_the_files(tmp_path):
    X, labels = synthetic_beats(6, 2, T)
    d = session.data_from_uploads([("a.arff", arff(tmp_path, X[:4], labels[:4])),
                                   ("b.arff", arff(tmp_path, X[4:], labels[4:]))])
    assert d.name == "a.arff + b.arff" and d.data.n_beats == 8 and d.labels == ["1", "2", "3"]
    with pytest.raises(DataError):
        session.data_from_uploads([("bad.arff", b"@relation x\n@data\n1,2\n")])


def test_default_normal_labels(data, ckpt_path):
    model = session.model_from_path(ckpt_path)
    assert session.default_normal_labels(data, model) == ["1"]
    builtin = session.builtin_data()
    assert session.default_normal_labels(builtin) == ["1"]
    # no model and no ECG5000 names: the commonest label
    few = session.make_data(synthetic(3, 9), "x")
    assert session.default_normal_labels(few) == ["3"]  # 5 beats of "3", 4 of "2", 3 of "1"
    unlabelled = session.make_data(BeatData(few.data.X, None, {}, few.data.sources, few.data.rows), "u")
    assert session.default_normal_labels(unlabelled) == []


def test_score_and_evaluation_leave_out_the_training_beats(data, ckpt_path):
    model = session.model_from_path(ckpt_path)
    assert session.same_data(model, data)
    errors = session.scores(model, data)
    assert errors.shape == (50,) and session.reconstruction(model, data, 3).shape == (T,)
    ev = session.explorer_view(model, data, ["1"], errors)
    split = model.ckpt.split
    assert ev.n_excluded == len(split.train) + len(split.val)
    assert ev.metrics_at(model.ckpt.threshold).n_anomaly == 10


def test_scoring_beats_of_another_length_is_refused(ckpt_path):
    model = session.model_from_path(ckpt_path)
    other = session.make_data(synthetic(length=T + 4), "longer")
    with pytest.raises(CheckpointError, match=f"{T} samples"):
        session.scores(model, other)


def test_checkpoint_names_are_checked(tmp_path):
    assert training.checkpoint_path_for("my_model-2", tmp_path) == tmp_path / "my_model-2.pt"
    (tmp_path / "taken.pt").write_bytes(b"x")
    with pytest.raises(ValueError, match="already exists"):
        training.checkpoint_path_for("taken", tmp_path)
    for bad in ("", "../evil", "a b", ".hidden"):
        with pytest.raises(ValueError, match="letters, digits"):
            training.checkpoint_path_for(bad, tmp_path)
    assert session.safe_name(" a b/c ") == "a_b_c"


def test_start_training_saves_and_loads_the_result(data, tmp_path):
    settings = training.TrainSettings(embedding_dim=4, epochs=2, batch_size=16, device="cpu")
    job = training.start_training(data, ["1"], "fresh", settings, directory=tmp_path).start()
    assert job.join(120)
    state = job.state()
    assert state.status == "done", state.message
    assert [h["epoch"] for h in state.history] == [1, 2]
    model = job.result
    assert model.source == "trained" and model.path == tmp_path / "fresh.pt" and model.path.is_file()
    assert model.ckpt.detector.model_config.embedding_dim == 4 and model.ckpt.split.normal_labels == ("1",)
    assert job.label.startswith("fresh: embedding 4, 10 samples/step, up to 2 epochs, batch 16")


def test_start_training_refuses_bad_requests_before_starting(data, tmp_path):
    settings = training.TrainSettings(epochs=1)
    with pytest.raises(ValueError, match="at least one normal label"):
        training.start_training(data, [], "x", settings, directory=tmp_path)
    unlabelled = session.make_data(BeatData(data.data.X, None, {}, data.data.sources, data.data.rows), "u")
    with pytest.raises(ValueError, match="labelled data"):
        training.start_training(unlabelled, ["1"], "x", settings, directory=tmp_path)


def test_torch_threads_follow_the_environment(monkeypatch):
    import torch

    from ecgviz.dashboard.config import TORCH_THREADS_ENV, limit_torch_threads

    before = torch.get_num_threads()
    try:
        monkeypatch.setenv(TORCH_THREADS_ENV, "2")
        assert limit_torch_threads() == 2 and torch.get_num_threads() == 2
        for bad in ("", "0", "two"):
            monkeypatch.setenv(TORCH_THREADS_ENV, bad)
            assert limit_torch_threads() == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
