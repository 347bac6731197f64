"""Checkpoint files on disk: atomic writes, and names held while a model trains so two trainings never share one.

A name is held by an exclusive lock (flock) on a marker file beside the checkpoint, `.NAME.pt.reserved`. The
operating system drops the lock when its holder ends, however it ends, so a crashed server never blocks a name:
the next request finds the marker unlocked and takes it over.
"""

from __future__ import annotations

import errno
import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from ecgviz.errors import NameInUse
from ecgviz.io.shipped import shipped_folder

# The shipped model and where trained ones are saved: the top-level checkpoints/ folder (see io.shipped).
CHECKPOINT_DIR = shipped_folder("checkpoints")
SHIPPED_CHECKPOINT = CHECKPOINT_DIR / "ecg5000_lstm_ae.pt"

try:
    import fcntl
except ImportError:  # not POSIX: names are then only checked against existing files, not held
    fcntl = None

MAX_SUFFIX = 1000  # name_2 ... name_1000 are tried when a file appears under a held name


def write_atomically(raw: bytes, path: str | os.PathLike, *, exclusive: bool = False) -> Path:
    """Write `raw` to a temporary file of its own beside `path`, flush it to disk, then move it into place.

    Every write has its own temporary name, so writers saving to one name at the same instant never share (and
    break) one file; the temporary file is removed whatever goes wrong. `exclusive`: the file is linked into
    place, which fails with FileExistsError when `path` exists, so two writers can never both win.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
    # mode 0o666 less the umask, as a plain open() gives (mkstemp's 0o600 would hide the file from other users)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        if exclusive:
            _link_into_place(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # after a link it is a second name of the file; after a replace, already gone
    _sync_folder(path.parent)
    return path


def _link_into_place(tmp: Path, path: Path) -> None:
    """Give the finished file its final name unless that name exists (FileExistsError)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:
        # a file system without hard links: the check and the move are two steps here, so not race-free
        if path.exists():
            raise FileExistsError(errno.EEXIST, "File exists", str(path)) from None
        os.replace(tmp, path)


def _sync_folder(folder: Path) -> None:
    """Make the new name itself durable (best effort: not every platform can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def marker_for(path: Path) -> Path:
    """The marker file whose lock holds the name `path`."""
    return path.with_name(f".{path.name}.reserved")


class Reservation:
    """A checkpoint name held until release() (or until the process ends); save() writes under it."""

    def __init__(self, path: Path, fd: int | None):
        self.path = path
        self._fd = fd
        self._lock = threading.Lock()

    @property
    def held(self) -> bool:
        """True until released."""
        return self._fd is not None

    def release(self) -> None:
        """Give the name back (again: nothing)."""
        with self._lock:
            fd, self._fd = self._fd, None
            if fd is None or fd < 0:
                return
            try:
                # unlink while still locked: whoever opened the old marker finds it unlinked once locked, and retries
                marker_for(self.path).unlink(missing_ok=True)
            finally:
                os.close(fd)

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:  # nothing can be reported from a finaliser; the lock dies with the fd anyway
            pass

    def save(self, make: Callable[[str], bytes]) -> tuple[Path, bytes]:
        """Write `make(stem)` under the held name and return (path, bytes written).

        The name was free when reserved and no other reserving writer can take it, but a writer that does not
        reserve (`train --force`, a copy by hand) still can: then the model is saved as NAME_2 (NAME_3, ...)
        rather than replacing that file or losing the training.
        """
        candidates = [self.path] + [self.path.with_name(f"{self.path.stem}_{n}{self.path.suffix}")
                                    for n in range(2, MAX_SUFFIX + 1)]
        for target in candidates:
            try:
                held = self if target == self.path else reserve(target)
            except NameInUse:
                continue
            try:
                raw = make(target.stem)
                return write_atomically(raw, target, exclusive=True), raw
            except FileExistsError:
                continue
            finally:
                if held is not self:
                    held.release()
        raise NameInUse(f"no free name like '{self.path.name}' in {self.path.parent}")


def reserve(path: str | os.PathLike) -> Reservation:
    """Hold the checkpoint name `path` for one writer; NameInUse when it exists or another writer holds it."""
    path = Path(path)
    if path.exists():
        raise NameInUse(f"a checkpoint named '{path.name}' already exists; choose another name")
    if fcntl is None:
        return Reservation(path, -1)
    path.parent.mkdir(parents=True, exist_ok=True)
    marker = marker_for(path)
    for _ in range(100):
        fd = os.open(marker, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise NameInUse(f"the name '{path.stem}' is being used by another training; choose another") from None
        except BaseException:
            os.close(fd)
            raise
        if _same_file(fd, marker):
            break
        os.close(fd)  # the holder released (and unlinked) the marker between our open and our lock: open anew
    else:
        raise NameInUse(f"the name '{path.stem}' is being used by another training; choose another")
    held = Reservation(path, fd)
    if path.exists():  # saved by another writer just before we took the lock
        held.release()
        raise NameInUse(f"a checkpoint named '{path.name}' already exists; choose another name")
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}\n".encode())  # for a person wondering what the file is
    except OSError:
        pass  # the lock holds the name; the text is only a courtesy
    return held


def _same_file(fd: int, marker: Path) -> bool:
    try:
        on_disk, ours = os.stat(marker), os.fstat(fd)
    except FileNotFoundError:
        return False
    return (on_disk.st_dev, on_disk.st_ino) == (ours.st_dev, ours.st_ino)
