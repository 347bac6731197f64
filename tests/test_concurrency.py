"""Concurrent sessions on one server: each sees only its own data while one trains, sliders answer, memory is bounded.

A lighter run of bench/concurrency.py (which checks the strict 300 ms p95 requirement): four browser sessions of
one Chromium, each uploading its own file and moving its slider at the same time, while session 0 trains.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.concurrency import Outcome, run_scenario
from bench.sessions import SessionResult, make_files
from ecgviz.checkpoint.store import SHIPPED_CHECKPOINT, load_checkpoint
from ecgviz.evaluation.split import make_split
from ecgviz.io.data import load_files

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"  # a screenshot of any session that fails
SESSIONS, MOVES = 4, 5
# Test machines are shared and run the browser on the server's CPUs: only a slider that hangs fails here (a clean
# CI run on two cores measured p50 0.72 s, p95 2.24 s with the training running; bench.concurrency measures latency).
ROUND_TRIP_BOUND_MS = 5000.0
# Four sessions with one training grew the server by 130-150 MB on a 2-core machine (torch's training buffers and a
# malloc arena per script thread included): the bound allows for noise and catches a session holding far more.
MAX_GROWTH_MB = 250.0


def seen(index: int, file: str, n_beats: int, shown: dict) -> SessionResult:
    """What session `index` (its own file and beat count) reported, when the page showed the file `shown`."""
    totals = (str(shown["n_normal"]), str(shown["n_anomaly"]))
    caption_file = shown["name"]
    return SessionResult(index, file, n_beats, trainer=False, round_trips_ms=[10.0], cards_ms=[150.0],
                         pressed_at=[0.0],
                         data_captions=[f"{caption_file} {shown['n_beats']} beats of 140 samples, 3 labels "
                                        "normal: Normal (1)"],
                         model_names=["shipped"], beat_captions=[f"beat 3: {caption_file}, row 3, Normal (1)"],
                         totals=[totals])


def test_a_session_showing_another_sessions_data_is_reported():
    files = [{"name": "session_00.arff", "n_beats": 60, "n_normal": 40, "n_anomaly": 20},
             {"name": "session_01.arff", "n_beats": 70, "n_normal": 47, "n_anomaly": 23}]
    own = seen(0, "session_00.arff", 60, files[0])
    leaked = seen(1, "session_01.arff", 70, files[0])
    outcome = Outcome([own, leaked], 1, files, {}, {"misses": 1, "hits": 2}, 0.0, {"train": False})
    problems = outcome.isolation_problems()
    assert len(problems) == 4 and all(p.startswith("session 1") for p in problems)  # caption, beat, count, totals
    assert Outcome([own], 1, files[:1], {}, {"misses": 1, "hits": 1}, 0.0, {"train": False}).problems() == []


@pytest.fixture(scope="module")
def outcome(chromium) -> Outcome:
    """The run (the chromium fixture skips it without Chromium, except under CI)."""
    # one torch thread: the test machine's cores are shared with Chromium and other tests
    return run_scenario(SESSIONS, MOVES, env={"OMP_NUM_THREADS": "1"}, artifacts=ARTIFACTS)


@pytest.fixture(scope="module")
def held_out_normals(tmp_path_factory) -> int:
    """Normal beats a model trained on session 0's file keeps out of training and validation (seed 0)."""
    data = make_files(tmp_path_factory.mktemp("session_files"), 1)[0]
    return len(make_split(load_files([data.path]).labels, ["1"], seed=0).test)


@pytest.mark.browser
def test_every_session_ran_without_an_error(outcome):
    assert [s.failure for s in outcome.sessions] == [None] * SESSIONS
    assert [s.page_errors for s in outcome.sessions] == [[]] * SESSIONS


@pytest.mark.browser
def test_each_session_sees_only_its_own_data(outcome, held_out_normals):
    names = [f"session_{i:02d}.arff" for i in range(SESSIONS)]
    assert [f["name"] for f in outcome.files] == names
    assert [f["n_beats"] for f in outcome.files] == [60 + 10 * i for i in range(SESSIONS)]
    for s, f in zip(outcome.sessions, outcome.files, strict=True):
        expected = f"{f['name']} {f['n_beats']} beats of 140 samples, 3 labels normal: Normal (1)"
        assert s.data_captions and set(s.data_captions) == {expected}, s.index
        assert s.beat_captions, s.index
        for caption in s.beat_captions:
            assert f": {f['name']}, row " in caption
            assert not any(other in caption for other in names if other != f["name"])
        # the model session 0 trained leaves its training and validation normals out of the metrics
        normal = held_out_normals if s.trainer else f["n_normal"]
        assert set(s.totals) == {(str(normal), str(f["n_anomaly"]))}, s.index
    assert outcome.isolation_problems() == []


@pytest.mark.browser
def test_one_session_trains_and_only_its_model_changes(outcome):
    shipped = load_checkpoint(SHIPPED_CHECKPOINT).name
    trainer, *others = outcome.sessions
    assert trainer.trainer and not any(s.trainer for s in others)
    assert trainer.training["finished"]
    assert trainer.training["summary"].startswith("Training finished after 3 epochs")
    assert trainer.model_names[0] == shipped
    assert set(trainer.model_names[1:]) == {"concurrency_00"}
    for s in others:
        assert set(s.model_names) == {shipped}


@pytest.mark.browser
def test_the_start_up_model_is_loaded_once_for_every_session(outcome):
    # the warm-up session loads it, each of the others finds it in st.cache_resource
    assert outcome.model_loads == {"misses": 1, "hits": SESSIONS}


@pytest.mark.browser
def test_server_memory_stays_bounded(outcome):
    mem = outcome.memory_mib
    assert 0 < mem["start"] < mem["before"]  # torch, the model and the built-in data are in "before"
    assert mem["after"] - mem["before"] < MAX_GROWTH_MB
    assert mem["peak"] - mem["before"] < MAX_GROWTH_MB + 100


@pytest.mark.browser
def test_every_slider_move_answers_within_a_generous_bound(outcome):
    rt = outcome.round_trips()
    assert len(rt) == SESSIONS * MOVES and outcome.stats()["timeouts"] == 0
    assert np.all(rt > 0)
    assert outcome.stats()["p95_ms"] < ROUND_TRIP_BOUND_MS, outcome.stats()
    # the server's part of every move (metric cards) arrived too, after the figure
    cards = outcome.round_trips(cards=True)
    assert len(cards) == len(rt) and np.all(cards >= rt)
    assert outcome.stats(cards=True)["p95_ms"] < ROUND_TRIP_BOUND_MS, outcome.stats(cards=True)
