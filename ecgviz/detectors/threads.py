"""How many torch threads a job gets: chosen per job from its work, the cores this process may use and their load.

The rule (measured with `python -m bench.threads`, see docs/benchmarks.md):

* A job runs on one thread per WORK_PER_THREAD multiply-adds per LSTM step (batch x LSTM weights), at least one:
  for a small job a second thread mostly waits on the first and burns a core doing it. Default training (batch
  32: 2 M) gets one thread; scoring the default model in batches of 1,024 (65 M) would fill four.
* Only free cores count: the cores this process may run on (os.sched_getaffinity) minus the 1-minute load
  average, shared among the torch jobs this process is running. Beside other busy processes torch's spinning
  threads take turns with them, so a busy machine gets one thread per job whatever the work.
* $ECGVIZ_TORCH_THREADS (or `force`, e.g. `serve --threads`) sets the count for every job instead;
  $OMP_NUM_THREADS, the usual cap (e.g. on Dask workers), caps it.

`job(work)` applies the rule to the calling thread for the length of a training run or a scoring call; torch keeps
the count per OS thread, so jobs in the dashboard's threads or the service's request threads each get their own.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Iterator

THREADS_ENV = "ECGVIZ_TORCH_THREADS"
# Multiply-adds per LSTM step of one batch that keep one more thread busy. On a quiet 2-core machine (load 0.7,
# python -m bench) two threads tied with one for default training (2 M: 0.33 s/epoch each, twice the CPU time)
# and scored 1.34x the beats per second of one in batches of 1,024 (65 M); a job gets its second thread from
# 2 x this (32 M) on. Beside other work two threads lost everywhere (bench.threads: 1.2x to 47x slower).
WORK_PER_THREAD = 16_000_000

_forced: int | None = None
_running = 0  # torch jobs running in this process now
_lock = threading.Lock()


def force(n: int | None) -> None:
    """Run every job on `n` threads from now on (None: back to the rule)."""
    global _forced
    _forced = None if n is None else max(int(n), 1)


def forced() -> int | None:
    """The count set by `force` or $ECGVIZ_TORCH_THREADS (a positive whole number), else None."""
    if _forced is not None:
        return _forced
    raw = os.environ.get(THREADS_ENV, "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else None


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. a container's CPU set)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):
        return max(os.cpu_count() or 1, 1)


def machine_load() -> float:
    """The 1-minute load average (0 where the system does not report one)."""
    try:
        return max(os.getloadavg()[0], 0.0)
    except (AttributeError, OSError):
        return 0.0


def lstm_work(config, batch: int) -> int:
    """Multiply-adds per LSTM step of a batch: `batch` x the weights of the autoencoder's four LSTMs."""
    e, inp = config.embedding_dim, config.n_features * config.chunk
    layers = ((inp, 2 * e), (2 * e, e), (e, e), (e, 2 * e))  # (input, hidden): encoder 1, 2, decoder 1, 2
    return int(batch) * sum(4 * h * (i + h) for i, h in layers)


def choose(work: int, jobs: int = 1, cores: int | None = None, load: float | None = None) -> int:
    """Threads for one of `jobs` concurrent jobs doing `work` multiply-adds per step (see the module's rule)."""
    if (n := forced()) is not None:
        return n
    wanted = max(1, int(work // WORK_PER_THREAD))
    cap = os.environ.get("OMP_NUM_THREADS", "").strip()
    if cap.isdigit() and int(cap) > 0:
        wanted = min(wanted, int(cap))
    if wanted == 1:
        return 1
    cores = usable_cores() if cores is None else cores
    load = machine_load() if load is None else load
    free = max(cores - load, 0.0)
    return max(1, min(wanted, math.floor(free / max(jobs, 1) + 0.5), cores))


@contextlib.contextmanager
def job(work: int) -> Iterator[int]:
    """Run the block on the threads the rule gives one more job of `work` here; yields the count."""
    import torch

    global _running
    with _lock:
        _running += 1
        jobs = _running
    before = torch.get_num_threads()
    n = choose(work, jobs)
    try:
        if n != before:
            torch.set_num_threads(n)
        yield n
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
        with _lock:
            _running -= 1
