"""Score many files: one function turns a path into its result rows, run in this process or on a Dask cluster.

Files are independent, so an archive spreads over workers file by file. Each worker process keeps the model in
a small cache keyed by the checkpoint's path, size and modification time: it is read once per worker, not once
per task. Results come back in the order the files were given and are written as one CSV as soon as every file
before them is done, so the client holds at most the files that finished early. A file that fails (bad input)
becomes an error line naming it; the others' rows are still written.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ecgviz.checkpoint.store import Checkpoint, CheckpointError, load_checkpoint
from ecgviz.errors import UserError
from ecgviz.evaluation.split import SplitError
from ecgviz.io.data import BeatData, DataError, load_files
from ecgviz.pipeline import export

if TYPE_CHECKING:
    import pandas
    from dask.distributed import Client

INSTALL_HINT = "distributed scoring needs Dask: pip install -r requirements-cluster.txt"
# Errors that mean "this file is bad", reported per file; anything else is a bug and stops the run.
FILE_ERRORS = (DataError, CheckpointError, SplitError, ValueError, OSError)

_cache_lock = threading.Lock()
_cache: dict[tuple[str, int, int], Checkpoint] = {}
_loads = 0  # checkpoint reads by this process: what "once per worker" is measured with


@dataclass(frozen=True)
class ScoreOptions:
    """What every file is scored with."""

    checkpoint: str
    threshold: float | None = None  # None: the checkpoint's stored threshold
    flagged_only: bool = False
    include_samples: bool = False


@dataclass(frozen=True)
class FileResult:
    """One file's rows, or why it has none."""

    path: str
    table: pandas.DataFrame | None = field(repr=False)
    error: str | None
    n_beats: int
    n_flagged: int
    threshold: float | None
    seconds: float
    pid: int  # the process that scored it
    model_loads: int  # checkpoint reads by that process so far
    warnings: tuple[str, ...] = ()  # what loading the file said about it

    @property
    def ok(self) -> bool:
        """True when the file was scored."""
        return self.error is None


def expand(patterns: Sequence[str]) -> tuple[list[str], list[str]]:
    """(files, problems): each pattern's matches in sorted order (a plain path is kept as given), no repeats."""
    files, problems, seen = [], [], set()
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            problems.append(f"{pattern}: no file matches")
        for path in matches:
            key = os.path.abspath(path)
            if key not in seen:
                seen.add(key)
                files.append(path)
    return files, problems


def cached_checkpoint(path: str) -> Checkpoint:
    """The checkpoint at `path`, read once per process (reread when the file changes)."""
    global _loads
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
    with _cache_lock:
        ckpt = _cache.get(key)
        if ckpt is None:
            ckpt = load_checkpoint(path)
            _cache.clear()  # one model per worker: a new file replaces the old one
            _cache[key] = ckpt
            _loads += 1
        return ckpt


def model_loads() -> int:
    """How many times this process has read a checkpoint."""
    return _loads


def load_one(path: str) -> BeatData:
    """The beats of one input file."""
    return load_files([path])


def score_data(ckpt: Checkpoint, data: BeatData, options: ScoreOptions):
    """(table, errors, threshold) for one data set: the per-beat table `ecgviz score` writes.

    Split roles and outcomes are those the dashboard shows: on the checkpoint's own data set only the beats it
    never trained on are evaluated (with their roles); on other labelled data every beat is.
    """
    from ecgviz.pipeline.protocol import (  # deferred: a worker imports torch only to score
        evaluation_indices,
        score_beats,
    )

    errors = score_beats(ckpt, data.X)
    threshold = ckpt.threshold if options.threshold is None else float(options.threshold)
    roles, outcome = None, None
    if data.has_labels:
        idx, is_anomaly, held_out = evaluation_indices(ckpt, data)
        outcome = export.outcomes(data.n_beats, threshold, errors, idx, is_anomaly)
        if held_out:
            roles = ckpt.split.roles(idx)
    table = export.beat_table(data, errors, threshold, flagged_only=options.flagged_only,
                              include_samples=options.include_samples, roles=roles, outcome=outcome)
    return table, errors, threshold


def score_file(path: str, options: ScoreOptions) -> FileResult:
    """Score one file: its per-beat table (as `ecgviz score` writes it), or the error that stopped it."""
    started = time.perf_counter()
    try:
        ckpt = cached_checkpoint(options.checkpoint)
        data = load_one(path)
        table, errors, threshold = score_data(ckpt, data, options)
        return FileResult(path, table, None, data.n_beats, int((errors > threshold).sum()), threshold,
                          time.perf_counter() - started, os.getpid(), _loads, data.warnings)
    except FILE_ERRORS as exc:
        message = str(exc) if Path(path).name in str(exc) else f"{Path(path).name}: {exc}"
        return FileResult(path, None, message, 0, 0, None, time.perf_counter() - started, os.getpid(), _loads)


def score_together(paths: Sequence[str], options: ScoreOptions) -> Iterator[FileResult] | None:
    """The files as one data set, scored in this process (one result), or None when they do not load together.

    This is what makes the split roles right when the files are the checkpoint's own data set (e.g. its TRAIN
    and TEST files): their indices refer to the files taken together.
    """
    started = time.perf_counter()
    try:
        data = load_files(paths)
    except DataError:
        return None
    ckpt = cached_checkpoint(options.checkpoint)
    table, errors, threshold = score_data(ckpt, data, options)
    name = " + ".join(Path(p).name for p in paths)
    return iter([FileResult(name, table, None, data.n_beats, int((errors > threshold).sum()), threshold,
                            time.perf_counter() - started, os.getpid(), _loads, data.warnings)])


def score_serial(paths: Sequence[str], options: ScoreOptions) -> Iterator[FileResult]:
    """Score the files one after another in this process, in order."""
    for path in paths:
        yield score_file(path, options)


class DaskMissing(UserError):
    """Dask is not installed (a user error: the message says how to install it)."""


SCHEMES = ("tcp", "tls")  # Dask's own TCP transports; ucx:// and others need extra packages and set-up
DEFAULT_SCHEDULER_PORT = 8786
CONNECT_TIMEOUT_S = 10.0


def scheduler_address(address: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a --scheduler address (`tcp://host:port`, `tls://...` or `host:port`)."""
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "tcp", address
    if scheme not in SCHEMES:
        raise UserError(f"--scheduler {address}: the {scheme}:// transport is not supported; give "
                        "tcp://HOST:PORT (or tls://HOST:PORT)")
    rest = rest.rstrip("/")
    if rest.startswith("["):  # an IPv6 address: [::1]:8786
        host, _, tail = rest[1:].partition("]")
        port = tail.removeprefix(":")
    else:
        host, _, port = rest.partition(":")
    try:
        number = int(port) if port else DEFAULT_SCHEDULER_PORT
    except ValueError:
        number = -1
    if not host or not 0 < number < 65536:
        raise UserError(f"--scheduler {address}: expected tcp://HOST:PORT")
    return scheme, host, number


def _connect(address: str) -> Client:
    """A client of the Dask scheduler at `address`, or a one-line UserError within about CONNECT_TIMEOUT_S."""
    import asyncio

    from dask.distributed import Client
    from distributed.comm import connect

    scheme, host, port = scheduler_address(address)
    url = f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"
    try:  # a closed port or an unknown host: said at once, not after Dask's retries
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        why = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise UserError(f"--scheduler {address}: cannot connect ({why})") from None

    async def handshake() -> None:
        # Dask's own client waits for a silent service's handshake for good, and takes another service's
        # answer for a frame length (an allocation of exabytes); here both end in time, as one line
        comm = await asyncio.wait_for(connect(url, timeout=CONNECT_TIMEOUT_S), CONNECT_TIMEOUT_S)
        await comm.close()

    quiet = logging.getLogger("distributed")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # its comm logs a traceback for every failed handshake
    try:
        asyncio.run(handshake())
    except TimeoutError:
        raise UserError(f"--scheduler {address}: no Dask scheduler answered within {CONNECT_TIMEOUT_S:g} s") from None
    except Exception as exc:  # whatever another service answers, the user gets one line
        raise UserError(f"--scheduler {address}: what answers there is not a Dask scheduler "
                        f"({type(exc).__name__})") from None
    finally:
        quiet.setLevel(level)
    return Client(url, timeout=CONNECT_TIMEOUT_S)


@contextlib.contextmanager
def cluster_client(scheduler: str | None = None, workers: int = 2) -> Iterator:
    """A Dask client on the scheduler at `scheduler`, else on a local cluster of `workers` one-thread processes."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise DaskMissing(INSTALL_HINT) from None
    if scheduler:
        with _connect(scheduler) as client:
            yield client
        return
    if workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    import dask

    # Dask's nannies start workers with MALLOC_TRIM_THRESHOLD_=65536, which also pins glibc's mmap threshold:
    # every array over 128 kB is then a fresh mmap, and reading a file ran ~3x slower in a worker than here
    environ = {k: v for k, v in dask.config.get("distributed.nanny.pre-spawn-environ", {}).items()
               if k != "MALLOC_TRIM_THRESHOLD_"}
    # one thread per process: torch scores a file on one core, and processes give each its own interpreter
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}), \
            LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                         env={"OMP_NUM_THREADS": "1"}) as cluster, Client(cluster) as client:
        yield client


def score_on_cluster(client, paths: Sequence[str], options: ScoreOptions) -> Iterator[FileResult]:
    """Score the files on the client's workers; results are yielded in the order of `paths`."""
    from dask.distributed import as_completed

    # pure=False: the same file given twice is scored twice, as it would be in this process
    futures = client.map(score_file, list(paths), options=options, pure=False)
    position = {f.key: i for i, f in enumerate(futures)}
    ready: dict[int, FileResult] = {}
    following = 0
    for future in as_completed(futures):
        ready[position[future.key]] = future.result()
        future.release()
        while following in ready:
            yield ready.pop(following)
            following += 1


@dataclass(frozen=True)
class Summary:
    """What a batch run did."""

    n_files: int
    n_failed: int
    n_beats: int
    n_flagged: int
    n_rows: int
    seconds: float
    errors: tuple[str, ...]


def write_results(results: Iterable[FileResult], out: str | os.PathLike,
                  on_file: Callable[[FileResult], None] | None = None) -> Summary:
    """Write the scored rows of `results` (in order) to one CSV, under a temporary name until the last file is in.

    No file is written when no input could be scored.
    """
    out = Path(out)
    if out.is_dir():
        raise UserError(f"{out} is a directory; give a CSV file name")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    started = time.perf_counter()
    n_files = n_beats = n_flagged = n_rows = 0
    errors: list[str] = []
    header_written = False
    try:
        with open(tmp, "wb") as fh:
            for result in results:
                n_files += 1
                if on_file is not None:
                    on_file(result)
                if not result.ok:
                    errors.append(result.error)
                    continue
                n_beats += result.n_beats
                n_flagged += result.n_flagged
                if len(result.table) or not header_written:
                    chunk = export.to_csv(result.table)
                    if header_written:
                        chunk = chunk.split(b"\r\n", 1)[1]  # the header once, at the top
                    fh.write(chunk)
                    header_written = True
                n_rows += len(result.table)
        if header_written:  # nothing scored: no file, as when a single file fails
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return Summary(n_files, len(errors), n_beats, n_flagged, n_rows, time.perf_counter() - started, tuple(errors))
