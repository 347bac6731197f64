"""Torch threads follow one rule per job: the model's work, the free cores, the jobs running, or a forced count."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from ecgviz.detectors import threads
from ecgviz.detectors.config import ModelConfig, TrainConfig
from ecgviz.detectors.lstm import RecurrentAutoencoder
from ecgviz.detectors.reconstruction import measure as score
from ecgviz.detectors.train import train

DEFAULT = ModelConfig()
BIG = threads.WORK_PER_THREAD * 8  # work enough for eight threads


@pytest.fixture(autouse=True)
def rule(monkeypatch):
    """The rule itself: no forced count from the environment or an earlier test."""
    monkeypatch.delenv(threads.THREADS_ENV, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    threads.force(None)
    yield
    threads.force(None)


def test_the_default_model_trains_on_one_thread_even_on_an_idle_machine():
    work = threads.lstm_work(DEFAULT, TrainConfig().batch_size)
    assert work < threads.WORK_PER_THREAD
    assert threads.choose(work, cores=16, load=0.0) == 1


def test_a_big_job_uses_the_free_cores_and_only_those():
    assert threads.choose(BIG, cores=16, load=0.0) == 8  # as many as the work fills
    assert threads.choose(BIG, cores=4, load=0.0) == 4  # no more than the cores
    assert threads.choose(BIG, cores=4, load=1.0) == 3  # one core busy elsewhere
    assert threads.choose(BIG, cores=2, load=1.0) == 1  # 2 cores and one busy loop: the case
    assert threads.choose(BIG, cores=2, load=6.0) == 1  # a loaded machine
    assert threads.choose(threads.WORK_PER_THREAD * 2, cores=16, load=0.0) == 2


def test_concurrent_jobs_share_the_free_cores():
    assert threads.choose(BIG, jobs=2, cores=8, load=0.0) == 4
    assert threads.choose(BIG, jobs=3, cores=8, load=2.0) == 2
    assert threads.choose(BIG, jobs=8, cores=8, load=0.0) == 1


def test_the_machine_is_read_from_affinity_and_load(monkeypatch):
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (0.2, 0.0, 0.0))
    assert (threads.usable_cores(), threads.machine_load()) == (4, 0.2)
    assert threads.choose(BIG) == 4
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (3.4, 3.0, 3.0))  # a fake load: three busy cores
    assert threads.choose(BIG) == 1


def test_a_forced_count_wins(monkeypatch):
    monkeypatch.setenv(threads.THREADS_ENV, "3")
    assert threads.choose(0, cores=1, load=9.0) == 3
    for bad in ("0", "", "two", "-1"):
        monkeypatch.setenv(threads.THREADS_ENV, bad)
        assert threads.choose(0, cores=16, load=0.0) == 1
    threads.force(2)
    assert threads.choose(BIG, cores=16, load=0.0) == 2


def test_omp_num_threads_caps_the_rule(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert threads.choose(BIG, cores=16, load=0.0) == 2
    monkeypatch.setenv(threads.THREADS_ENV, "3")  # a forced count is not capped
    assert threads.choose(BIG, cores=16, load=0.0) == 3


def test_lstm_work_counts_the_four_lstms_weights_per_beat():
    model = RecurrentAutoencoder(DEFAULT)
    lstm_weights = sum(p.numel() for name, p in model.named_parameters() if "rnn" in name and "weight" in name)
    assert threads.lstm_work(DEFAULT, 1) == lstm_weights
    assert threads.lstm_work(DEFAULT, 32) == 32 * lstm_weights


def test_training_runs_on_the_rules_count_and_restores_the_callers(monkeypatch):
    monkeypatch.setattr(threads, "machine_load", lambda: 0.0)
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    seen = []
    X = np.sin(np.linspace(0, 6, 140, dtype=np.float32))[None].repeat(8, 0)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        result = train(X, X, DEFAULT, TrainConfig(epochs=1, device="cpu"),
                       on_epoch=lambda info: seen.append(torch.get_num_threads()))
        assert seen == [1] and result.threads == 1  # the default model, even with two idle cores
        assert torch.get_num_threads() == 2
        threads.force(2)
        assert train(X, X, DEFAULT, TrainConfig(epochs=1, device="cpu")).threads == 2
    finally:
        torch.set_num_threads(before)


def test_scoring_takes_more_threads_only_for_work_and_free_cores(monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    used = []
    model = RecurrentAutoencoder(ModelConfig(embedding_dim=128, chunk=10)).eval()
    forward = model.forward
    monkeypatch.setattr(model, "forward", lambda x: (used.append(torch.get_num_threads()), forward(x))[1])
    X = np.zeros((64, 140), dtype=np.float32)
    assert threads.lstm_work(model.config, 64) >= 2 * threads.WORK_PER_THREAD
    monkeypatch.setattr(threads, "machine_load", lambda: 0.0)
    score(model, X, reconstructions=False)
    monkeypatch.setattr(threads, "machine_load", lambda: 1.2)  # a fake load: one core busy elsewhere
    score(model, X, reconstructions=False)
    monkeypatch.setattr(threads, "machine_load", lambda: 0.0)
    score(model, X[:2], reconstructions=False)  # two beats: too little work for a second thread
    assert used == [2, 1, 1]


def test_jobs_in_threads_count_each_other(monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    monkeypatch.setattr(threads, "machine_load", lambda: 0.0)
    first_in, both_in, leave = threading.Event(), threading.Barrier(3), threading.Event()
    got = []

    def one():
        with threads.job(BIG) as n:
            got.append(n)
            first_in.set()
            both_in.wait(timeout=10)
            leave.wait(timeout=10)

    workers = [threading.Thread(target=one) for _ in range(2)]
    workers[0].start()
    assert first_in.wait(timeout=10)
    workers[1].start()
    both_in.wait(timeout=10)
    leave.set()
    for w in workers:
        w.join(timeout=10)
    assert got == [4, 2]  # alone: all four cores; the second job, while the first runs: half of them
    with threads.job(BIG) as n:
        assert n == 4  # both ended: the count is back to one job


def test_scores_do_not_depend_on_the_thread_count():
    # the rule may score one call on two threads and the next on one: a verdict must not change with it
    from ecgviz.io.data import load_ecg5000

    torch.manual_seed(0)
    model = RecurrentAutoencoder(DEFAULT).eval()
    X = load_ecg5000().X[:2048]
    got = []
    for n in (1, 2):
        threads.force(n)
        got.append(score(model, X))
    np.testing.assert_array_equal(got[0][0], got[1][0])
    np.testing.assert_array_equal(got[0][1], got[1][1])
