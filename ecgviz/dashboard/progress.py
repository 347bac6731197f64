"""How far a training run has got: an estimate of where early stopping will end it, from the validation curve.

A run ends at its epoch cap, after its time budget, or `patience` epochs after the last epoch whose validation loss
beat the previous mark by a share `rel_delta` (ecgviz.detectors.train). Scaled to the cap, a progress bar says
"5 minutes left" for a run that early stopping ends in 45 s. Here the validation losses so far are fitted with a
decaying exponential, runs that follow the fitted curve with the same scatter are played forward under the same
stopping rule, and the median epoch where that rule ends them is the estimate. Until enough epochs are in there is
no estimate (the bar counts against the cap); when the fit fails, the patience rule alone gives the earliest end.
The fraction never reaches 1 before the run has ended.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ecgviz.dashboard.jobs import format_seconds
from ecgviz.detectors.config import TrainConfig

MIN_FIT_EPOCHS = 4  # a curve of three parameters needs more points than that
DRAWS = 32  # simulated continuations of a run; the estimate is their median end
RUNNING_MAX = 0.99  # the bar's end is kept for a run that has ended

CURVE, PATIENCE, CAP, BUDGET = "validation curve", "patience", "epoch cap", "time budget"
EARLY, ENDING, DONE = "too few epochs", "ending", "done"


@dataclass(frozen=True)
class Stopping:
    """The rules that end a run, as ecgviz.detectors.train applies them."""

    cap: int  # the last epoch the run may reach (counted from the first epoch of the model, continued runs included)
    patience: int
    rel_delta: float = TrainConfig.rel_delta
    min_delta: float = TrainConfig.min_delta
    max_seconds: float | None = None
    first: int = 0  # epochs done before this run (a continued run starts after them)

    @classmethod
    def of(cls, config: TrainConfig, n_train: int, first: int = 0) -> Stopping:
        """The rules a TrainConfig gives a run on `n_train` training beats."""
        cap, patience = config.plan(n_train)
        return cls(cap=first + cap, patience=patience, rel_delta=config.rel_delta, min_delta=config.min_delta,
                   max_seconds=config.max_seconds, first=first)


@dataclass(frozen=True)
class Estimate:
    """Where the run is expected to end, what share of it is done, and the time left (all estimates)."""

    epoch: int  # the last epoch finished
    end_epoch: int  # the epoch after which the run is expected to stop
    fraction: float  # of this run's epochs, 0..1; 1 only once the run has ended
    seconds_left: float | None  # None until an epoch has finished
    basis: str  # what decided end_epoch: CURVE, PATIENCE, CAP, BUDGET; EARLY (no estimate yet), ENDING or DONE
    cap: int

    def text(self) -> str:
        """One line for a progress bar, saying that it is an estimate and what it rests on."""
        if self.basis == DONE:
            return f"Epoch {self.epoch}: done"
        if self.basis == ENDING:
            return f"Epoch {self.epoch}: validation loss has stopped improving, so early stopping ends the run here"
        if self.basis == EARLY:
            return (f"Epoch {self.epoch} of at most {self.cap} · the end is estimated from the validation curve "
                    f"after {MIN_FIT_EPOCHS} epochs")
        if self.basis == PATIENCE:
            return (f"Epoch {self.epoch} of at most {self.cap} · at least {format_seconds(self.seconds_left)} left "
                    f"(no sooner than epoch {self.end_epoch}: early stopping waits that long for a better loss)")
        why = {CURVE: "from the validation curve", CAP: "the epoch cap ends it", BUDGET: "the time budget ends it"}
        return (f"Epoch {self.epoch} of at most {self.cap} · about {format_seconds(self.seconds_left)} left "
                f"(estimate: stops near epoch {self.end_epoch}, {why[self.basis]})")


def _losses(history: Sequence[Mapping]) -> np.ndarray:
    return np.array([np.nan if h.get("val_loss") is None else float(h["val_loss"]) for h in history], dtype=float)


def last_mark(losses: Sequence[tuple[int, float]], rel_delta: float, min_delta: float,
              start: tuple[float, int]) -> tuple[float, int]:
    """(loss, epoch) of the last improvement that reset the patience, replaying the training loop's rule on
    (epoch, loss) pairs from `start`, the mark before them."""
    mark_loss, mark_epoch = start
    for epoch, loss in losses:
        if loss < mark_loss * (1 - rel_delta) - min_delta:
            mark_loss, mark_epoch = loss, epoch
    return mark_loss, mark_epoch


@dataclass(frozen=True)
class Curve:
    """loss = c + a exp(-b (epoch - origin)), fitted to a run's validation losses, with the scatter around it."""

    c: float
    a: float
    b: float
    origin: int
    noise: float  # standard deviation of the losses around the curve

    def at(self, epochs: np.ndarray) -> np.ndarray:
        """The curve's losses at these epochs."""
        return self.c + self.a * np.exp(-self.b * (np.asarray(epochs, dtype=float) - self.origin))


def fit_curve(epochs: np.ndarray, losses: np.ndarray) -> Curve | None:
    """The decaying exponential closest to these losses (least squares); None when none fits."""
    from scipy.optimize import curve_fit

    ok = np.isfinite(losses)
    x, y = np.asarray(epochs, dtype=float)[ok], np.asarray(losses, dtype=float)[ok]
    if x.size < MIN_FIT_EPOCHS or not np.all(y > 0):
        return None
    span = float(y.max() - y.min()) or float(y.max()) * 1e-3

    def curve(t, c, a, b):
        return c + a * np.exp(-b * (t - x[0]))

    try:
        (c, a, b), _ = curve_fit(curve, x, y, p0=(float(y.min()) * 0.9, span, 0.2),
                                 bounds=([0.0, 0.0, 1e-4], [np.inf, np.inf, 5.0]), maxfev=2000)
    except (RuntimeError, ValueError):
        return None
    if not np.all(np.isfinite((c, a, b))):
        return None
    residuals = y - curve(x, c, a, b)
    recent = residuals[len(residuals) // 2:]  # the scatter late in a run is what decides its last improvements
    return Curve(float(c), float(a), float(b), int(x[0]), float(np.std(recent, ddof=1)) if recent.size > 1 else 0.0)


def simulated_end(curve: Curve, mark: tuple[float, int], after: int, stopping: Stopping, draws: int = DRAWS,
                  seed: int = 0) -> int:
    """The median epoch where the training loop's rules end runs whose losses follow `curve`, with its scatter,
    from epoch `after` on: a run's noise gives it lucky lows that keep it going longer than the smooth curve."""
    epochs = np.arange(after + 1, stopping.cap + 1)
    if not epochs.size:
        return stopping.cap
    rng = np.random.default_rng(seed)
    losses = curve.at(epochs)[None, :] + rng.normal(0.0, curve.noise, (draws, epochs.size))
    mark_loss = np.full(draws, mark[0])
    mark_epoch = np.full(draws, mark[1])
    end = np.full(draws, stopping.cap)
    running = np.ones(draws, dtype=bool)
    for j, epoch in enumerate(epochs):
        better = running & (losses[:, j] < mark_loss * (1 - stopping.rel_delta) - stopping.min_delta)
        mark_loss[better], mark_epoch[better] = losses[better, j], epoch
        stops = running & (epoch - mark_epoch >= stopping.patience)
        end[stops], running[stops] = epoch, False
        if not running.any():
            break
    return int(np.median(end))


def estimate(history: Sequence[Mapping], stopping: Stopping, *, finished: bool = False,
             since_last_s: float = 0.0) -> Estimate:
    """Where a run with this loss curve (every epoch so far, earlier runs' included) is expected to end."""
    epoch = len(history)
    done = epoch - stopping.first
    if finished:
        return Estimate(epoch, epoch, 1.0, 0.0, DONE, stopping.cap)
    run_epochs = max(stopping.cap - stopping.first, 1)
    if done < MIN_FIT_EPOCHS:
        return Estimate(epoch, stopping.cap, min(max(done, 0) / run_epochs, RUNNING_MAX), None, EARLY, stopping.cap)
    losses = _losses(history)
    earlier = losses[:stopping.first]
    start = (float(np.nanmin(earlier)) if np.isfinite(earlier).any() else math.inf, stopping.first)
    run = [(stopping.first + i + 1, float(v)) for i, v in enumerate(losses[stopping.first:]) if np.isfinite(v)]
    mark = last_mark(run, stopping.rel_delta, stopping.min_delta, start)
    end, basis = min(mark[1] + stopping.patience, stopping.cap), PATIENCE
    epochs = np.arange(stopping.first + 1, epoch + 1, dtype=float)
    if epoch - mark[1] >= stopping.patience:  # this epoch ended it: the run is finishing
        return Estimate(epoch, epoch, RUNNING_MAX, 0.0, ENDING, stopping.cap)
    curve = fit_curve(epochs, losses[stopping.first:])
    if curve is not None:
        end, basis = simulated_end(curve, mark, epoch, stopping), CURVE
    if end >= stopping.cap:
        end, basis = stopping.cap, CAP
    elapsed = float(history[-1].get("elapsed_s") or 0.0) - (float(history[stopping.first - 1].get("elapsed_s") or 0.0)
                                                            if stopping.first else 0.0)
    per_epoch = max(elapsed, 0.0) / done
    if stopping.max_seconds is not None and per_epoch > 0:
        # the loop stops after the first epoch whose elapsed time reaches the budget
        by_budget = stopping.first + max(math.ceil(stopping.max_seconds / per_epoch), 1)
        if by_budget < end:
            end, basis = by_budget, BUDGET
    end = max(end, epoch)
    fraction = min(done / max(end - stopping.first, 1), RUNNING_MAX)
    left = max((end - epoch) * per_epoch - since_last_s, 0.0)
    return Estimate(epoch, end, fraction, left, basis, stopping.cap)


def forward_only(previous: float | None, est: Estimate) -> float:
    """The fraction to draw: never below what was drawn before while the run goes on (an estimate that moves the
    end further out holds the bar still instead of pulling it back); 1 once it has ended."""
    if est.basis == DONE or previous is None:
        return est.fraction
    return max(est.fraction, min(previous, RUNNING_MAX))
