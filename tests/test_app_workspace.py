"""The dashboard's workspace through AppTest: a new session with the same link finds the work; the Model page
keeps its form values, uses the threshold percentile, and offers the data a model was trained on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from ecgviz.checkpoint.store import save_checkpoint
from ecgviz.dashboard import config, session
from ecgviz.io.data import load_files
from tests.app_support import APP, TIMEOUT, assert_clean
from tests.helpers import synthetic_beats, write_arff


@pytest.fixture(autouse=True)
def setup(monkeypatch, tmp_path, tiny_ckpt):
    st.cache_data.clear()
    st.cache_resource.clear()
    path = save_checkpoint(tiny_ckpt, tmp_path / "tiny_start.pt")
    monkeypatch.setenv(config.CHECKPOINT_ENV, str(path))
    monkeypatch.setenv(config.CHECKPOINT_DIR_ENV, str(tmp_path))
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def start(tiny_files) -> AppTest:
    """A first visit, on the tiny data (as if loaded) so the tiny start-up model fits it."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["active_data"] = session.make_data(load_files(tiny_files), "tiny")
    return assert_clean(at.run())


def upload(at: AppTest, files) -> None:
    at.switch_page("pages/data.py").run()
    at.file_uploader(key="data_upload").set_value([(n, raw, "text/plain") for n, raw in files]).run()
    assert_clean(at)


def test_a_second_session_with_the_same_link_finds_data_threshold_and_normals(tiny_files):
    at = start(tiny_files)
    wid = at.query_params["ws"][0] if isinstance(at.query_params["ws"], list) else at.query_params["ws"]
    upload(at, [(Path(p).name, Path(p).read_bytes()) for p in tiny_files])
    at.multiselect(key="normals_widget").set_value(["1", "2"]).run()
    at.switch_page("pages/explorer.py").run()
    chosen = round(at.session_state["threshold"] * 1.1, 4)
    at.number_input(key="thr_number").set_value(chosen).run()
    assert_clean(at)
    assert at.session_state["threshold"] == pytest.approx(chosen)

    again = AppTest.from_file(APP, default_timeout=TIMEOUT)
    again.query_params["ws"] = wid
    assert_clean(again.run())
    assert again.session_state["active_data"].name == "tiny_TRAIN.arff + tiny_TEST.arff"
    assert again.session_state["threshold"] == pytest.approx(chosen)
    assert again.session_state["normal_labels"] == ["1", "2"]
    assert again.number_input(key="thr_number").value == pytest.approx(chosen)

    # a server restart: the store forgets everything in memory and rereads the workspace from disk
    from pages.common import sync

    sync._store.cache_clear()
    restarted = AppTest.from_file(APP, default_timeout=TIMEOUT)
    restarted.query_params["ws"] = wid
    assert_clean(restarted.run())
    assert restarted.session_state["workspace"] is not again.session_state["workspace"]
    assert restarted.session_state["active_data"].fingerprint == again.session_state["active_data"].fingerprint
    assert restarted.session_state["threshold"] == pytest.approx(chosen)
    assert restarted.session_state["normal_labels"] == ["1", "2"]

    stranger = start(tiny_files)
    assert stranger.query_params["ws"] != again.query_params["ws"]
    assert stranger.session_state["active_data"].name == "tiny"
    assert stranger.session_state["normal_labels"] == ["1"]


def test_model_form_values_stay_and_the_percentile_sets_the_stored_threshold(tiny_files):
    at = start(tiny_files)
    upload(at, [(Path(p).name, Path(p).read_bytes()) for p in tiny_files])
    at.switch_page("pages/model.py").run()
    at.text_input[0].set_value("p90_model")
    fields = {n.label: n for n in at.number_input}
    fields["Embedding size"].set_value(4)
    fields["Epochs (at most)"].set_value(3)
    fields["Batch size"].set_value(8)
    fields["Threshold percentile"].set_value(90.0)
    at.selectbox[-1].set_value("cpu")
    at.form_submit_button[0].click().run()
    assert_clean(at)
    assert at.session_state["train_job"].join(TIMEOUT)
    at.run()
    model = at.session_state["active_model"]
    assert model.name == "p90_model" and model.ckpt.threshold_rule == "p90 of training normals"
    assert len(model.ckpt.history) == 3 and model.ckpt.data_sources == ("tiny_TRAIN.arff", "tiny_TEST.arff")
    at.switch_page("pages/data.py").run()
    at.switch_page("pages/model.py").run()
    fields = {n.label: n.value for n in at.number_input}
    assert (fields["Embedding size"], fields["Epochs (at most)"], fields["Batch size"]) == (4, 3, 8)
    assert fields["Threshold percentile"] == 90.0 and at.text_input[0].value == "p90_model"


def test_a_model_beside_other_data_names_its_data_and_offers_to_load_it(tiny_files, tmp_path):
    at = start(tiny_files)
    tiny = [(Path(p).name, Path(p).read_bytes()) for p in tiny_files]
    upload(at, tiny)
    tiny_fp = at.session_state["active_data"].fingerprint
    X, labels = synthetic_beats(n_normal=12, n_anomaly=4, length=24, seed=9)
    upload(at, [("other.arff", write_arff(tmp_path / "other.arff", X, labels).read_bytes())])
    at.switch_page("pages/model.py").run()
    assert_clean(at)
    info = " ".join(i.value for i in at.info)
    assert "tiny_TRAIN.arff, tiny_TEST.arff" in info and "beats of 24 samples" in info
    offer = [b for b in at.button if b.label.startswith("Load tiny_TRAIN.arff + tiny_TEST.arff")]
    assert len(offer) == 1
    offer[0].click().run()
    assert_clean(at)
    assert at.session_state["active_data"].fingerprint == tiny_fp


def test_a_run_cut_off_while_improving_is_continued_from_the_model_page(tiny_files, tiny_data, monkeypatch, tmp_path):
    from ecgviz.detectors.config import ModelConfig, TrainConfig
    from ecgviz.pipeline.protocol import fit

    short = fit(tiny_data, ["1"], ModelConfig(embedding_dim=4), TrainConfig(epochs=4, batch_size=4, lr=2e-2,
                                                                            device="cpu"),
                fractions=(0.6, 0.2, 0.2), name="short")
    assert short.train_config["still_improving"]
    monkeypatch.setenv(config.CHECKPOINT_ENV, str(save_checkpoint(short, tmp_path / "short.pt")))
    at = start(tiny_files)
    at.switch_page("pages/model.py").run()
    assert_clean(at)
    assert any("still falling" in w.value for w in at.warning)
    at.button(key="resume_start").click().run()
    assert_clean(at)
    job = at.session_state["train_job"]
    assert job.join(TIMEOUT) and job.state().status == "done", job.state().message
    assert [h["epoch"] for h in job.state().history][:4] == [1, 2, 3, 4]  # the live curve starts from the old one
    at.run()
    model = at.session_state["active_model"]
    assert model.name == "short_8ep" and [h["epoch"] for h in model.ckpt.history] == list(range(1, 9))
    assert list(model.ckpt.history[:4]) == list(short.history)
    assert all(np.array_equal(getattr(model.ckpt.split, k), getattr(short.split, k)) for k in ("train", "val", "test"))
