"""Shared test setup."""

import numpy as np
import pytest
import torch

from ecgviz.detectors.config import ModelConfig, TrainConfig
from ecgviz.io.data import load_files
from ecgviz.pipeline.protocol import fit
from tests.helpers import synthetic_beats, write_arff

# Tiny models run fastest on one thread, and parallel test processes must not fight over cores.
torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def workspace_dir(tmp_path_factory):
    """Dashboard workspaces (of AppTest runs and of servers the browser tests start) go to a temporary folder."""
    import os

    from ecgviz.dashboard.workspace import ROOT_ENV

    old = os.environ.get(ROOT_ENV)
    os.environ[ROOT_ENV] = str(tmp_path_factory.mktemp("workspaces"))
    yield os.environ[ROOT_ENV]
    if old is None:
        os.environ.pop(ROOT_ENV, None)
    else:
        os.environ[ROOT_ENV] = old

TINY_TRAIN = TrainConfig(epochs=8, batch_size=4, lr=2e-2, patience=100, seed=0, device="cpu")


@pytest.fixture(scope="session")
def tiny_files(tmp_path_factory):
    """Two labelled ARFF files (a TRAIN and a TEST part) of short synthetic beats."""
    X, labels = synthetic_beats(n_normal=60, n_anomaly=20, length=24)
    d = tmp_path_factory.mktemp("tiny")
    order = np.random.default_rng(1).permutation(len(X))
    X, labels = X[order], labels[order]
    return write_arff(d / "tiny_TRAIN.arff", X[:30], labels[:30]), write_arff(d / "tiny_TEST.arff", X[30:], labels[30:])


@pytest.fixture(scope="session")
def tiny_data(tiny_files):
    """The tiny files loaded as one data set."""
    return load_files(tiny_files)


@pytest.fixture(scope="session")
def tiny_ckpt(tiny_data):
    """A small model trained on the tiny data's normals, with its held-out split."""
    return fit(tiny_data, ["1"], ModelConfig(embedding_dim=4), TINY_TRAIN, fractions=(0.6, 0.2, 0.2), name="tiny")


@pytest.fixture
def downloads(monkeypatch):
    """File name -> bytes of every download button an AppTest rendered (the bytes never leave the server)."""
    seen: dict[str, bytes] = {}
    # imported here so the library's tests also run where streamlit is not installed (a GPU machine)
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    original = MemoryMediaFileStorage.load_and_get_id

    def record(self, path_or_data, mimetype, kind, filename=None):
        if filename and isinstance(path_or_data, bytes):
            seen[filename] = path_or_data
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    return seen
