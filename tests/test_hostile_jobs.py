"""Training jobs are capped per workspace and per server, and a job whose workspace no one uses is stopped."""

from __future__ import annotations

import gc
import threading
import weakref
from pathlib import Path
from types import SimpleNamespace

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from ecgviz.checkpoint.store import save_checkpoint
from ecgviz.dashboard import config, jobs, session, training
from ecgviz.dashboard.jobs import CANCELLED, JobRefused, JobSlots, TrainingJob
from ecgviz.dashboard.text import plain
from ecgviz.dashboard.workspace import WorkspaceStore
from ecgviz.io.data import load_files

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TIMEOUT = 120


def waiting_job(release: threading.Event, epochs: int = 50) -> TrainingJob:
    """A job whose loop runs until it is stopped or `release` is set."""

    def run(on_epoch, stop):
        while not stop.is_set() and not release.is_set():
            stop.wait(0.01)
        return "trained"

    return TrainingJob(run, epochs=epochs, label="waiting: a fake loop")


@pytest.fixture
def release():
    gate = threading.Event()
    yield gate
    gate.set()


def tiny_training(tiny_files, tmp_path, name: str) -> TrainingJob:
    """A real (tiny) training job, long enough to still run while the test looks."""
    data = session.make_data(load_files(tiny_files), "tiny")
    settings = training.TrainSettings(embedding_dim=4, epochs=500, batch_size=4, patience=500, device="cpu")
    return training.start_training(data, ["1"], name, settings, directory=tmp_path)


def test_one_job_per_workspace_and_at_most_the_cap_per_server(tiny_files, tmp_path):
    slots = JobSlots(max_total=2)
    first = slots.start("ws-a", tiny_training(tiny_files, tmp_path, "first"))
    try:
        with pytest.raises(JobRefused, match="this workspace already trains first"):
            slots.start("ws-a", tiny_training(tiny_files, tmp_path, "again"))
        second = slots.start("ws-b", tiny_training(tiny_files, tmp_path, "second"))
        third = tiny_training(tiny_files, tmp_path, "third")
        with pytest.raises(JobRefused, match=r"already runs 2 training jobs, its limit \(ECGVIZ_MAX_TRAINING_JOBS=2\)"):
            slots.start("ws-c", third)
        assert third.state().status == "pending"  # refused, not queued: its thread never started
        assert len(slots.running()) == 2 and slots.running("ws-a") == [first]
        first.cancel()
        assert first.join(TIMEOUT)
        assert slots.start("ws-c", third) is third  # a finished job frees its slot by itself
        assert third.state().status == "running"
    finally:
        for job in slots.running():
            job.cancel()
            job.join(TIMEOUT)
    assert second.state().status == CANCELLED and not slots.running()


def test_a_refused_job_lets_go_of_the_checkpoint_name_it_holds(release):
    class Reservation:
        released = 0

        def release(self):
            self.released += 1

    slots = JobSlots(max_total=1)
    running = slots.start("ws-a", waiting_job(release))
    refused = waiting_job(release)
    refused.reservation = Reservation()  # as a job that holds its name from the moment it is made
    with pytest.raises(JobRefused, match="already runs 1 training job"):
        slots.start("ws-b", refused)
    assert refused.reservation.released == 1 and slots.running() == [running]


def test_the_server_cap_comes_from_the_environment_else_the_cores(monkeypatch):
    monkeypatch.setenv(jobs.MAX_JOBS_ENV, "3")
    assert JobSlots().max_total == 3
    for bad in ("0", "-2", "many", ""):
        monkeypatch.setenv(jobs.MAX_JOBS_ENV, bad)
        assert JobSlots().max_total == jobs.default_max_jobs() >= 1
    assert JobSlots(max_total=0).max_total == 1


def test_the_model_page_refuses_a_job_over_the_server_cap(monkeypatch, tmp_path, tiny_ckpt, tiny_files, release):
    st.cache_data.clear()
    st.cache_resource.clear()
    monkeypatch.setenv(config.CHECKPOINT_ENV, str(save_checkpoint(tiny_ckpt, tmp_path / "tiny_start.pt")))
    monkeypatch.setenv(config.CHECKPOINT_DIR_ENV, str(tmp_path))
    slots = JobSlots(max_total=1)
    monkeypatch.setattr(jobs, "_SLOTS", slots)
    elsewhere = slots.start("another-workspace", waiting_job(release))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["active_data"] = session.make_data(load_files(tiny_files), "tiny")
    at.run()
    at.switch_page("pages/model.py").run()
    at.text_input[0].set_value("over_the_cap")
    {n.label: n for n in at.number_input}["Epochs (at most)"].set_value(2)
    at.form_submit_button[0].click()
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == [plain(
        "the server already runs 1 training job, its limit (ECGVIZ_MAX_TRAINING_JOBS=1); start again when one "
        "has finished, or train with `python -m ecgviz train`")]
    assert "train_job" not in at.session_state and slots.running() == [elsewhere]
    assert not (tmp_path / "over_the_cap.pt").exists()


def test_a_job_whose_workspace_no_one_uses_is_stopped_then_the_workspace_unloaded(tmp_path, tiny_files, release):
    store = WorkspaceStore(tmp_path / "ws", unload_s=120)
    ws = store.new()
    files = [(Path(p).name, Path(p).read_bytes()) for p in tiny_files]
    ws.set_data(session.data_from_uploads(files), files)
    slots = JobSlots(max_total=4)
    job = slots.start(ws.id, waiting_job(release))
    ws.update(job=job, job_adopted=False)
    store.attach(ws, "tab-1")
    beats = weakref.ref(ws.data.data)
    live = {"tab-1"}

    def later(s: float) -> float:
        return ws.last_used + s

    # the tab is open (its progress view polls) though no full run touched the workspace for long
    assert store.release_unattended(live.__contains__, now=later(600)) == {"unloaded": [], "stopped": []}
    assert not job.cancel_requested

    live.clear()  # the tab closed: the workspace waits unload_s for a reload or a reconnect
    assert store.release_unattended(live.__contains__, now=later(60)) == {"unloaded": [], "stopped": []}
    assert store.release_unattended(live.__contains__, now=later(121)) == {"unloaded": [], "stopped": [ws.id]}
    assert job.cancel_requested and not job.keep_requested  # no epoch finished: nothing to keep
    assert job.join(10) and job.state().status == CANCELLED and not slots.running()
    assert store.release_unattended(live.__contains__, now=later(122)) == {"unloaded": [ws.id], "stopped": []}
    assert ws.closed and ws.data is None and ws.job is None
    del job
    gc.collect()
    assert beats() is None
    again = store.get(ws.id)  # the link still works: its data is reread from disk
    assert again is not ws and not again.closed and again.data.name == " + ".join(name for name, _ in files)


def test_a_stopped_orphan_keeps_the_best_model_when_an_epoch_finished(tmp_path, release):
    store = WorkspaceStore(tmp_path / "ws", unload_s=5)
    ws = store.new()
    epoch_done = threading.Event()

    def run(on_epoch, stop):
        on_epoch(SimpleNamespace(epoch=1, epochs=9, train_loss=1.0, val_loss=1.0, best_epoch=1))
        epoch_done.set()
        stop.wait(10)
        return "best so far"

    job = JobSlots().start(ws.id, TrainingJob(run, epochs=9, finish=lambda r: r + ", saved"))
    ws.update(job=job)
    assert epoch_done.wait(10)
    assert store.release_unattended(lambda sid: False, now=ws.last_used + 6)["stopped"] == [ws.id]
    assert job.join(10) and job.state().status == "done" and job.result == "best so far, saved"
