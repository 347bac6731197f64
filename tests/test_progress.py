"""The training progress estimate: where early stopping will end a run, from its validation curve."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ecgviz.checkpoint.store import SHIPPED_CHECKPOINT, load_checkpoint
from ecgviz.dashboard import progress
from ecgviz.dashboard.jobs import TrainingJob
from ecgviz.detectors.config import TrainConfig


def run_like_training(losses, stopping: progress.Stopping, s_per_epoch: float = 0.2,
                      best_before: float = math.inf) -> list[dict]:
    """The history the training loop records for these validation losses, cut where its rules end the run
    (`best_before`: a continued run's best loss so far, which it must beat)."""
    history, mark = [], (best_before, stopping.first)
    for epoch, loss in enumerate(losses, start=stopping.first + 1):
        history.append({"epoch": epoch, "train_loss": loss, "val_loss": float(loss),
                        "elapsed_s": s_per_epoch * (epoch - stopping.first)})
        if loss < mark[0] * (1 - stopping.rel_delta) - stopping.min_delta:
            mark = (loss, epoch)
        if epoch - mark[1] >= stopping.patience or epoch >= stopping.cap:
            break
    return history


def noisy_decay(n: int, seed: int, scale: float = 50.0, rate: float = 0.08, floor: float = 10.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(1, n + 1)
    return floor + scale * np.exp(-rate * t) + rng.normal(0.0, 0.05, n)


@pytest.mark.parametrize("seed", range(5))
def test_the_estimate_finds_the_early_end_that_the_epoch_cap_misses(seed):
    stopping = progress.Stopping(cap=500, patience=50)
    history = run_like_training(noisy_decay(500, seed), stopping)
    end = len(history)
    assert end < 250  # early stopping ends it at less than half the cap
    for k in (end // 5, end // 2, 4 * end // 5):
        est = progress.estimate(history[:k], stopping)
        assert est.basis == progress.CURVE
        assert abs(est.end_epoch - end) / end < 0.3, (k, est.end_epoch, end)
        # time left, as the loop's own clock will show it
        actual_left = history[end - 1]["elapsed_s"] - history[k - 1]["elapsed_s"]
        assert est.seconds_left == pytest.approx(actual_left, rel=0.5)
        cap_based = (stopping.cap - k) * 0.2
        assert cap_based > 2.5 * actual_left  # what a bar scaled to the cap would have said


def test_the_bar_stays_below_its_end_until_the_run_has_ended():
    stopping = progress.Stopping(cap=500, patience=50)
    history = run_like_training(noisy_decay(500, 0), stopping)
    shown = None
    for k in range(1, len(history) + 1):
        est = progress.estimate(history[:k], stopping)
        fraction = progress.forward_only(shown, est)
        assert fraction < 1.0 and (shown is None or fraction >= shown)
        shown = fraction
    last = progress.estimate(history, stopping)
    assert last.basis == progress.ENDING and last.end_epoch == len(history)  # patience ran out at this epoch
    done = progress.estimate(history, stopping, finished=True)
    assert progress.forward_only(shown, done) == 1.0 and done.seconds_left == 0.0


def test_the_shipped_models_run_reaches_its_cap_and_the_estimate_says_so_at_the_end():
    ckpt = load_checkpoint(SHIPPED_CHECKPOINT)
    cap, patience = TrainConfig(epochs=ckpt.train_config["epochs"]).plan(1)
    stopping = progress.Stopping(cap=cap, patience=ckpt.train_config.get("patience") or patience)
    history = list(ckpt.history)
    assert len(history) == cap  # its cosine schedule kept improving to the cap
    for k in (len(history) - 3, len(history) - 1):
        est = progress.estimate(history[:k], stopping)
        assert est.end_epoch == cap and est.basis == progress.CAP
        assert est.fraction == pytest.approx(k / cap)
    assert "estimate" in progress.estimate(history[:-3], stopping).text()


def test_too_few_epochs_give_no_estimate_yet():
    stopping = progress.Stopping(cap=100, patience=10)
    history = run_like_training(noisy_decay(100, 1), stopping)
    est = progress.estimate(history[:progress.MIN_FIT_EPOCHS - 1], stopping)
    assert est.basis == progress.EARLY and est.seconds_left is None
    assert "after 4 epochs" in est.text()


def test_a_time_budget_ends_the_run_before_the_curve_would():
    stopping = progress.Stopping(cap=500, patience=50, max_seconds=10.0)
    history = run_like_training(noisy_decay(500, 2), stopping, s_per_epoch=0.2)[:20]
    est = progress.estimate(history, stopping)
    assert est.basis == progress.BUDGET and est.end_epoch == 50  # the first epoch whose clock reaches 10 s
    assert est.seconds_left == pytest.approx(30 * 0.2)


def test_a_flat_curve_ends_by_patience_and_a_continued_run_counts_from_its_own_start():
    flat = [5.0 + 0.001 * (i % 2) for i in range(60)]
    stopping = progress.Stopping(cap=200, patience=10, first=30)
    earlier = [{"epoch": i + 1, "val_loss": 5.0, "elapsed_s": 0.1 * (i + 1)} for i in range(30)]
    run = run_like_training(flat, stopping, best_before=5.0)
    history = earlier + [{**h, "elapsed_s": 3.0 + h["elapsed_s"]} for h in run]
    assert len(run) == 10  # nothing beat the earlier run's best: patience ends it
    est = progress.estimate(history[:36], stopping)
    assert est.end_epoch == 40 and est.fraction == pytest.approx(6 / 10)
    assert progress.Stopping.of(TrainConfig(epochs=7, patience=3), 100, first=30) == progress.Stopping(
        cap=37, patience=3, first=30)


def test_a_job_carries_its_stopping_rules_and_its_state_gives_the_estimate():
    stopping = progress.Stopping(cap=500, patience=50)
    history = run_like_training(noisy_decay(500, 3), stopping)

    def run(on_epoch, stop):
        for h in history:
            on_epoch(type("Info", (), {"epoch": h["epoch"], "epochs": 500, "train_loss": h["train_loss"],
                                       "val_loss": h["val_loss"], "elapsed_s": h["elapsed_s"], "best_epoch": 1})())
        return "trained"

    job = TrainingJob(run, epochs=500, stopping=stopping).start()
    assert job.join(10)
    s = job.state()
    assert progress.estimate(s.history, job.stopping, finished=s.finished).fraction == 1.0
    assert progress.estimate(s.history[:len(history) // 2], job.stopping).fraction < 0.9
