"""Workspace files on disk: private folders and files, written whole or not at all, and what killed writes leave.

Uploads are other people's data: the workspace root is 0700 and every file 0600, so no other local user can list
or read them. A write goes to a temporary name (ending in .tmp) and is renamed into place, so a reader never sees
half a file; a write killed half-way leaves only such a temporary, which is not counted as the workspace's disk
use and is deleted once it is older than any write could take.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import time
from collections.abc import Sequence
from pathlib import Path

from ecgviz.errors import UserError

TMP_SUFFIX = ".tmp"
ORPHAN_AGE_S = 600.0  # a temporary older than this belongs to no write still going on


def make_root(path: str | os.PathLike) -> Path:
    """The workspace root: created 0700, or an existing folder of this user's made 0700; anything else refused."""
    root = Path(path)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(root)
    if not stat.S_ISDIR(info.st_mode):  # e.g. a link another user put where the folder would be made
        raise UserError(f"workspace folder {root} is not a folder; set ECGVIZ_WORKSPACE_DIR to another place")
    if hasattr(os, "geteuid") and info.st_uid != os.geteuid():
        raise UserError(f"workspace folder {root} belongs to another user; set ECGVIZ_WORKSPACE_DIR to a folder "
                        "of yours")
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(root, 0o700)
    return root


def private_dir(path: Path) -> Path:
    """A folder only this user can open (parents made the same way)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}{TMP_SUFFIX}")


def _write_fd(path: Path, raw: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(raw)


def write_private(path: Path, raw: bytes) -> None:
    """Write `raw` to `path` (mode 0600) through a temporary, so the file is either whole or absent."""
    private_dir(path.parent)
    tmp = _tmp_name(path)
    try:
        _write_fd(tmp, raw)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_folder(folder: Path, files: Sequence[tuple[str, bytes]]) -> bool:
    """Create `folder` holding `files` (name, bytes) as a whole: built under a temporary name, then renamed.

    False when the folder exists already (another tab kept the same files first); nothing is then written.
    """
    private_dir(folder.parent)
    tmp = private_dir(_tmp_name(folder))
    try:
        for name, raw in files:
            _write_fd(tmp / name, raw)
        try:
            os.rename(tmp, folder)
        except OSError:
            if folder.is_dir():
                return False
            raise
        return True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def du(folder: Path) -> int:
    """Bytes of the files under `folder`; temporaries (a write going on, or one that was killed) not counted."""
    total = 0
    for dirpath, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.endswith(TMP_SUFFIX)]
        for name in files:
            if name.endswith(TMP_SUFFIX):
                continue
            try:
                total += os.path.getsize(os.path.join(dirpath, name))
            except OSError:
                pass
    return total


def clean_orphans(folder: Path, now: float | None = None, age_s: float = ORPHAN_AGE_S) -> int:
    """Delete temporaries under `folder` older than `age_s` (left by killed writes); how many were deleted."""
    now = time.time() if now is None else now
    gone = 0
    for dirpath, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            if not name.endswith(TMP_SUFFIX):
                continue
            path = Path(dirpath) / name
            if now - mtime(path) < age_s:
                continue
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            gone += 1
        dirs[:] = [d for d in dirs if not d.endswith(TMP_SUFFIX)]
    return gone


def mtime(path: Path) -> float:
    """Modification time, 0 when the path is gone."""
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
