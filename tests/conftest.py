"""Shared test setup: the tiny data and model, the app started on them, Chromium."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from ecgviz.detectors.config import ModelConfig, TrainConfig
from ecgviz.io.data import load_files
from ecgviz.pipeline.protocol import fit
from tests.helpers import synthetic_beats, write_arff

# Tiny models run fastest on one thread, and parallel test processes must not fight over cores.
torch.set_num_threads(1)


def _env_folder(tmp_path_factory, variable: str, name: str):
    """Point `variable` at a fresh temporary folder for the session, then put back what it was."""
    old = os.environ.get(variable)
    os.environ[variable] = str(tmp_path_factory.mktemp(name))
    yield os.environ[variable]
    if old is None:
        os.environ.pop(variable, None)
    else:
        os.environ[variable] = old


@pytest.fixture(scope="session", autouse=True)
def workspace_dir(tmp_path_factory):
    """Dashboard workspaces (of AppTest runs and of servers the browser tests start) go to a temporary folder."""
    from ecgviz.dashboard.workspace import ROOT_ENV

    yield from _env_folder(tmp_path_factory, ROOT_ENV, "workspaces")


@pytest.fixture(scope="session", autouse=True)
def cache_dir(tmp_path_factory):
    """The dashboard's disk cache (cards, scores, parsed beats) goes to a temporary folder, shared by the tests."""
    from ecgviz.dashboard.disk_cache import CACHE_DIR_ENV

    yield from _env_folder(tmp_path_factory, CACHE_DIR_ENV, "cache")


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


@pytest.fixture(scope="module")
def tiny_start(tmp_path_factory, tiny_files, tiny_data, tiny_ckpt) -> dict:
    """The tiny data and model, the model saved in a folder of the module's own where the app looks for models."""
    from ecgviz.checkpoint.store import save_checkpoint

    folder = tmp_path_factory.mktemp("app")
    return {"files": tiny_files, "data": tiny_data, "ckpt": tiny_ckpt, "dir": folder,
            "ckpt_path": save_checkpoint(tiny_ckpt, folder / "tiny_start.pt")}


@pytest.fixture
def tiny_app(monkeypatch, tiny_start) -> dict:
    """The app starts with the tiny model and lists that folder; Streamlit's caches (which outlive an AppTest) are
    cleared before and after."""
    import streamlit as st

    from ecgviz.dashboard import config

    st.cache_data.clear()
    st.cache_resource.clear()
    monkeypatch.setenv(config.CHECKPOINT_ENV, str(tiny_start["ckpt_path"]))
    monkeypatch.setenv(config.CHECKPOINT_DIR_ENV, str(tiny_start["dir"]))
    yield tiny_start
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture(scope="session")
def tiny_ckpt_path(tiny_ckpt, tmp_path_factory):
    """The tiny model saved to a file."""
    from ecgviz.checkpoint.store import save_checkpoint

    return save_checkpoint(tiny_ckpt, tmp_path_factory.mktemp("saved") / "tiny.pt")


@pytest.fixture(scope="session")
def chromium() -> str:
    """The Chromium executable; a test that needs it skips without one, except under CI (CI=true): a failure there."""
    from tests.browser_support import CHROMIUM_ENV, DEFAULT_CHROMIUM, find_chromium

    path = find_chromium()
    if path is None:
        where = os.environ.get(CHROMIUM_ENV)
        looked = f"${CHROMIUM_ENV}={where} is not an executable" if where else f"no executable {DEFAULT_CHROMIUM}"
        reason = f"Chromium not found ({looked}); install it with `apt-get install chromium` to run the browser tests"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def shipped_server(chromium, tmp_path_factory):
    """The app as shipped, served for the module: the shipped model (whatever the caller's environment names) and
    an empty folder of the module's own for saved models."""
    from ecgviz.dashboard import config
    from tests.browser_support import StreamlitServer

    env = {config.CHECKPOINT_ENV: None, config.CHECKPOINT_DIR_ENV: str(tmp_path_factory.mktemp("checkpoints")),
           "OMP_NUM_THREADS": "1"}  # two cores shared with Chromium
    with StreamlitServer(Path(__file__).resolve().parent.parent / "app.py", env=env) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser(chromium):
    """One headless Chromium for the module; each test opens its own context, hence its own app session."""
    from playwright.sync_api import sync_playwright

    from tests.browser_support import launch_browser

    with sync_playwright() as p:
        b = launch_browser(p)
        yield b
        b.close()


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
