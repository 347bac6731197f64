"""Background training job: progress, ETA, cancel and errors, with fake training loops."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from ecgviz.dashboard.jobs import CANCELLED, DONE, ERROR, TrainingJob, format_seconds, train_job


class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def epoch(i, n, loss=1.0):
    return SimpleNamespace(epoch=i, epochs=n, train_loss=loss, val_loss=loss + 0.5, elapsed_s=float(i), best_epoch=i)


def test_progress_eta_and_result_with_a_stepped_clock():
    clock = FakeClock()
    gate = threading.Event()
    seen = []

    def run(on_epoch, stop):
        for i in (1, 2):
            clock.t += 10.0  # each epoch takes 10 s of fake time
            on_epoch(epoch(i, 5, loss=1.0 / i))
        seen.append("two epochs")
        gate.wait(5)
        return "trained"

    job = TrainingJob(run, epochs=5, finish=lambda r: r + " and saved", clock=clock).start()
    for _ in range(200):
        if seen:
            break
        threading.Event().wait(0.01)
    state = job.state()
    assert state.status == "running"
    assert state.epoch == 2 and state.epochs == 5
    assert state.progress == pytest.approx(0.4)
    assert state.elapsed_s == pytest.approx(20.0)
    assert state.eta_s == pytest.approx(30.0)  # 3 epochs left at 10 s each
    clock.t += 4.0  # time passes inside epoch 3: the ETA counts down
    assert job.state().eta_s == pytest.approx(26.0)
    assert state.since_epoch_s == 0.0 and job.state().since_epoch_s == pytest.approx(4.0)
    assert [h["train_loss"] for h in state.history] == [1.0, 0.5]
    assert state.history[0]["val_loss"] == 1.5
    assert job.result is None  # not done yet
    gate.set()
    assert job.join(5)
    final = job.state()
    assert final.status == DONE and final.finished and final.progress == 1.0 and final.eta_s == 0.0
    assert job.result == "trained and saved"


def test_cancel_stops_the_loop_and_discards_the_result():
    finished = []

    def run(on_epoch, stop):
        for i in range(1, 1000):
            if on_epoch(epoch(i, 999)) or stop.is_set():
                break
            threading.Event().wait(0.002)
        return "partial"

    job = TrainingJob(run, epochs=999, finish=lambda r: finished.append(r)).start()
    while job.state().epoch < 3:
        threading.Event().wait(0.005)
    job.cancel()
    assert job.join(5)
    state = job.state()
    assert state.status == CANCELLED and state.finished
    assert state.epoch < 999
    assert job.result is None and finished == []


def test_an_exception_becomes_an_error_state_with_its_message():
    def run(on_epoch, stop):
        on_epoch(epoch(1, 3))
        raise ValueError("need at least 2 validation beats")

    job = TrainingJob(run, epochs=3).start()
    assert job.join(5)
    state = job.state()
    assert state.status == ERROR
    assert state.message == "need at least 2 validation beats"
    assert job.result is None


def test_a_failing_finish_step_is_an_error_too():
    job = TrainingJob(lambda on_epoch, stop: 1, epochs=1, finish=lambda r: 1 / 0).start()
    job.join(5)
    assert job.state().status == ERROR
    assert "division" in job.state().message


def test_train_job_passes_arrays_configs_callback_and_stop_to_the_train_function():
    calls = {}

    def fake_train(X_train, X_val, model_config, config, on_epoch=None, stop=None):
        calls.update(X_train=X_train, X_val=X_val, model_config=model_config, config=config, stop=stop)
        on_epoch(epoch(1, config.epochs, loss=0.25))
        return SimpleNamespace(model="m", history=[{"epoch": 1}])

    config = SimpleNamespace(epochs=4)
    job = train_job("xt", "xv", "mc", config, train_fn=fake_train, finish=lambda r: r.model).start()
    assert job.join(5)
    assert job.result == "m"
    assert calls["X_train"] == "xt" and calls["X_val"] == "xv" and calls["model_config"] == "mc"
    assert isinstance(calls["stop"], threading.Event)
    assert job.state().history[0]["train_loss"] == 0.25
    assert job.state().epochs == 4


def test_job_starts_once_and_pending_state_is_empty():
    job = TrainingJob(lambda on_epoch, stop: None, epochs=2)
    state = job.state()
    assert state.status == "pending" and state.elapsed_s == 0.0 and state.eta_s is None and state.progress == 0.0
    assert not job.join(0.01)
    job.start()
    with pytest.raises(RuntimeError):
        job.start()
    job.join(5)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "—"), (0.4, "0 s"), (42, "42 s"), (185, "3 min 05 s"), (3720, "1 h 02 min")],
)
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text


def test_a_run_that_raises_after_cancel_ends_cancelled_not_failed():
    def run(on_epoch, stop):
        while not stop.is_set():
            on_epoch(epoch(1, 5))
            threading.Event().wait(0.002)
        raise RuntimeError("stopped mid-way")

    job = TrainingJob(run, epochs=5).start()
    job.cancel()
    assert job.join(5)
    assert job.state().status == CANCELLED and job.state().message == ""
