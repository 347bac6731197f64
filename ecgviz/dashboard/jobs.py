"""Background training: a thread runs the training loop and records progress a UI can poll."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ecgviz.detectors.threads import usable_cores
from ecgviz.errors import UserError

T = TypeVar("T")

PENDING, RUNNING, FINISHING, DONE, ERROR, CANCELLED = "pending", "running", "finishing", "done", "error", "cancelled"
# RunFn receives the per-epoch callback and the stop event and returns the training result
RunFn = Callable[[Callable[[Any], bool | None], threading.Event], Any]


class StopRequest(threading.Event):
    """The stop event a training loop polls; `keep` says whether the best model so far is wanted."""

    keep = False


@dataclass(frozen=True)
class JobState:
    """A consistent snapshot of a job, safe to read from any thread."""

    status: str
    epoch: int
    epochs: int
    history: tuple[dict, ...]
    best_epoch: int | None
    elapsed_s: float
    eta_s: float | None  # None until one epoch has finished; an upper bound because early stopping may end sooner
    message: str  # the error message when status is "error"
    kept: bool = False  # the user stopped it and kept the best model so far
    since_epoch_s: float = 0.0  # time since the last epoch ended (or the run started), for a countdown

    @property
    def finished(self) -> bool:
        """True once the thread has nothing left to do."""
        return self.status in (DONE, ERROR, CANCELLED)

    @property
    def progress(self) -> float:
        """Fraction of the planned epochs completed, 0..1."""
        return 1.0 if self.status == DONE else min(self.epoch / self.epochs, 1.0) if self.epochs else 0.0


class TrainingJob(Generic[T]):
    """Runs `run(on_epoch, stop)` in a daemon thread, then `finish(train_result)` unless cancelled.

    The thread only ever writes through the lock and readers only take snapshots, so a page can poll
    `state()` every second while training goes on, and the job survives page changes.
    """

    def __init__(self, run: RunFn, epochs: int, *, finish: Callable[[Any], T] | None = None,
                 clock: Callable[[], float] = time.monotonic, label: str = "", history: tuple[dict, ...] = (),
                 stopping: Any = None):
        self.label = label  # what is being trained, for display
        self.stopping = stopping  # the rules that end the run (progress.Stopping), for the progress estimate
        self._run = run
        self._finish = finish
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = StopRequest()
        self._thread: threading.Thread | None = None
        self._status = PENDING
        self._epochs = int(epochs)
        # a continued run starts from its earlier loss curve
        self._history: list[dict] = [dict(h) for h in history]
        self._epoch = self._first = len(self._history)
        self._best_epoch: int | None = None
        self._message = ""
        self._started = 0.0
        self._ended: float | None = None
        self._last_epoch_at = 0.0
        self._result: T | None = None

    def start(self) -> TrainingJob[T]:
        """Start the thread (once)."""
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("job already started")
            self._status = RUNNING
            self._started = self._last_epoch_at = self._clock()
            self._thread = threading.Thread(target=self._work, name="ecgviz-training", daemon=True)
        self._thread.start()
        return self

    def cancel(self, keep: bool = False) -> None:
        """Ask the training loop to stop after the current batch; `keep`: finish the best model so far, else discard."""
        if not self._stop.is_set():
            self._stop.keep = bool(keep)
        self._stop.set()

    def stop_and_keep(self) -> None:
        """Stop now and keep (save, activate) the best model so far."""
        self.cancel(keep=True)

    @property
    def keep_requested(self) -> bool:
        """True when the user stopped the job and asked for the best model so far."""
        return self._stop.is_set() and self._stop.keep

    @property
    def cancel_requested(self) -> bool:
        """True once cancel() was called."""
        return self._stop.is_set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; True when it has ended."""
        if self._thread is None:
            return False
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def result(self) -> T | None:
        """What finish() returned (or the training result without finish); None unless done."""
        with self._lock:
            return self._result if self._status == DONE else None

    def state(self) -> JobState:
        """Snapshot of progress; elapsed time and ETA are computed at call time so they move between epochs."""
        with self._lock:
            now = self._ended if self._ended is not None else self._clock()
            elapsed = max(now - self._started, 0.0) if self._status != PENDING else 0.0
            eta = None
            if self._status == RUNNING and self._epoch > self._first:
                per_epoch = (self._last_epoch_at - self._started) / max(self._epoch - self._first, 1)
                since_last = now - self._last_epoch_at
                eta = max(per_epoch * (self._epochs - self._epoch) - since_last, 0.0)
            elif self._status in (FINISHING, DONE):
                eta = 0.0
            since = max(now - self._last_epoch_at, 0.0) if self._status == RUNNING else 0.0
            return JobState(status=self._status, epoch=self._epoch, epochs=self._epochs,
                            history=tuple(dict(h) for h in self._history), best_epoch=self._best_epoch,
                            elapsed_s=elapsed, eta_s=eta, message=self._message, kept=self.keep_requested,
                            since_epoch_s=since)

    def _on_epoch(self, info: Any) -> bool:
        # info is an ecgviz.detectors.train.EpochInfo; read by attribute so tests can pass any look-alike
        with self._lock:
            self._epoch = int(info.epoch)
            self._epochs = int(getattr(info, "epochs", self._epochs))
            self._best_epoch = getattr(info, "best_epoch", None)
            self._last_epoch_at = self._clock()
            self._history.append({"epoch": int(info.epoch), "train_loss": float(info.train_loss),
                                  "val_loss": _maybe_float(getattr(info, "val_loss", None)),
                                  "elapsed_s": float(getattr(info, "elapsed_s", 0.0))})
        return self._stop.is_set()

    @property
    def epochs(self) -> int:
        """The planned epochs (the cap), as the training loop last reported them."""
        with self._lock:
            return self._epochs

    def _work(self) -> None:
        try:
            trained = self._run(self._on_epoch, self._stop)
            if self._stop.is_set() and not self._stop.keep:
                self._end(CANCELLED)
                return
            with self._lock:
                self._status = FINISHING
            result = self._finish(trained) if self._finish is not None else trained
            with self._lock:
                self._result = result
            self._end(DONE)
        except Exception as exc:  # the UI shows the message; the thread must never die silently
            if self._stop.is_set() and not self._stop.keep:  # a run may raise once asked to stop: a cancel
                self._end(CANCELLED)
                return
            self._end(ERROR, str(exc) or type(exc).__name__)

    def _end(self, status: str, message: str = "") -> None:
        with self._lock:
            self._status = status
            self._message = message
            self._ended = self._clock()


def train_job(X_train, X_val, model_config, train_config, *, finish: Callable[[Any], T] | None = None,
              train_fn: Callable[..., Any] | None = None) -> TrainingJob[T]:
    """A not-yet-started job that runs ecgviz.train.train (or train_fn) on the given arrays."""
    if train_fn is None:
        # deferred: importing torch is slow and callers that inject train_fn never need it
        from ecgviz.detectors.train import train as train_fn

    def run(on_epoch, stop):
        return train_fn(X_train, X_val, model_config, train_config, on_epoch=on_epoch, stop=stop)

    return TrainingJob(run, epochs=int(getattr(train_config, "epochs", 0) or 0), finish=finish)


MAX_JOBS_ENV = "ECGVIZ_MAX_TRAINING_JOBS"
PER_CLIENT_ENV = "ECGVIZ_MAX_TRAINING_JOBS_PER_CLIENT"
BUDGET_ENV = "ECGVIZ_TRAINING_MAX_MINUTES"
DEFAULT_BUDGET_MIN = 60.0  # a dashboard job's time budget when none (or a longer one) is asked for


class JobRefused(UserError):
    """A training job not started because the server or its workspace already trains as many as allowed."""


class JobSlots:
    """Caps training jobs: at most `max_total` running in this server, `max_per_client` for one client (a browser's
    address: its tabs may have several workspaces) and one per owner (a workspace).

    A further start is refused rather than queued: a queued job would hold its data and wait for an unknown
    time, unseen and uncancellable by anyone, which is what a cap is meant to prevent. Finished jobs free their
    slot by themselves (a slot is a running job, counted when asked), so nothing has to remember to release it.
    """

    def __init__(self, max_total: int | None = None, max_per_client: int | None = None):
        self.max_total = max(int(max_total if max_total is not None else default_max_jobs()), 1)
        per_client = max_per_client if max_per_client is not None else _env_int(PER_CLIENT_ENV)
        # by default half the server's slots, so one client with many tabs cannot take them all
        self.max_per_client = max(int(per_client or self.max_total // 2), 1)
        self._lock = threading.Lock()
        self._jobs: dict[int, tuple[str, str | None, TrainingJob]] = {}

    def running(self, owner: str | None = None) -> list[TrainingJob]:
        """Jobs still running, all of them or one owner's."""
        with self._lock:
            self._forget_finished()
            return [job for who, _, job in self._jobs.values() if owner is None or who == owner]

    def start(self, owner: str, job: TrainingJob[T], client: str | None = None) -> TrainingJob[T]:
        """Start `job` for `owner` (and `client`, where known) if a slot is free, else raise JobRefused saying why."""
        with self._lock:
            self._forget_finished()
            mine = [j for who, _, j in self._jobs.values() if who == owner]
            theirs = [j for _, c, j in self._jobs.values() if client is not None and c == client]
            refusal = None
            if mine:
                refusal = (f"this workspace already trains {mine[0].label.split(':')[0] or 'a model'}: "
                           "stop it, or wait until it has finished, before starting another")
            elif len(theirs) >= self.max_per_client:
                refusal = (f"your other tabs already train {len(theirs)} model{'s' if len(theirs) != 1 else ''}, "
                           f"as many as one visitor may ({PER_CLIENT_ENV}={self.max_per_client}); stop one, or "
                           "wait until one has finished")
            elif len(self._jobs) >= self.max_total:
                refusal = (f"the server already runs {len(self._jobs)} training job"
                           f"{'s' if len(self._jobs) != 1 else ''}, its limit ({MAX_JOBS_ENV}={self.max_total}); "
                           "start again when one has finished, or train with `python -m ecgviz train`")
            else:
                job.start()
                self._jobs[id(job)] = (owner, client, job)
        if refusal is not None:
            _release_unstarted(job)
            raise JobRefused(refusal)
        return job

    def cancel_owner(self, owner: str, keep: bool = False) -> int:
        """Stop every running job of `owner` (e.g. a workspace no one uses any more); how many were asked."""
        jobs = self.running(owner)
        for job in jobs:
            job.cancel(keep=keep)
        return len(jobs)

    def _forget_finished(self) -> None:
        for key in [k for k, (_, _, job) in self._jobs.items() if job.state().finished]:
            del self._jobs[key]


def time_budget_s(asked_minutes: float | None = None) -> float:
    """A dashboard job's time budget in seconds: the one asked for, at most $ECGVIZ_TRAINING_MAX_MINUTES (default
    60), which is also the budget when none is asked for; the command line has no such bound."""
    try:
        most = float(os.environ.get(BUDGET_ENV, ""))
    except ValueError:
        most = DEFAULT_BUDGET_MIN
    if not (most > 0 and most != float("inf")):
        most = DEFAULT_BUDGET_MIN
    minutes = most if not asked_minutes or asked_minutes <= 0 else min(float(asked_minutes), most)
    return minutes * 60.0


def _release_unstarted(job: TrainingJob) -> None:
    # a job may hold its checkpoint name from the moment it is made (`reservation`), and lets it go when its
    # thread ends; a refused job's thread never runs, so its name is let go here
    reservation = getattr(job, "reservation", None)
    release = getattr(reservation, "release", None)
    if callable(release):
        release()


def _env_int(name: str) -> int:
    try:
        value = int(os.environ.get(name, ""))
    except ValueError:
        return 0
    return max(value, 0)


def default_max_jobs() -> int:
    """Concurrent training jobs per server: $ECGVIZ_MAX_TRAINING_JOBS, else one per CPU core the process may use."""
    value = _env_int(MAX_JOBS_ENV)
    return value if value > 0 else usable_cores()


_SLOTS: JobSlots | None = None
_SLOTS_LOCK = threading.Lock()


def slots() -> JobSlots:
    """This server process's job caps (made on first use, from the environment)."""
    global _SLOTS
    with _SLOTS_LOCK:
        if _SLOTS is None:
            _SLOTS = JobSlots()
        return _SLOTS


def _maybe_float(value) -> float | None:
    return None if value is None else float(value)


def format_seconds(seconds: float | None) -> str:
    """Human-readable duration: '42 s', '3 min 05 s', '1 h 02 min'; an em dash when unknown."""
    if seconds is None:
        return "—"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"
