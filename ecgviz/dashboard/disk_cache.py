"""What a restarted dashboard server would otherwise compute again, kept on disk under hashed names: checkpoint
cards, scores, and the parsed built-in beats.

A restarted server draws its first chart from these files without importing torch, parsing ARFF text or scoring
a beat: a card is named by the sha256 of its checkpoint file's bytes, scores by that and the data's fingerprint,
parsed beats by the hash of their files' names, sizes and modification times, so a changed file or data set
never finds another's entry. The folder is this user's alone (0700), and a file that does not read back as
expected is ignored, as if it were not there. Anything unwritable turns the cache off, never the dashboard.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import re
from pathlib import Path

import numpy as np

from ecgviz import __version__
from ecgviz.checkpoint.card import CheckpointCard, card_from_json, card_to_json
from ecgviz.checkpoint.files import SHIPPED_CHECKPOINT
from ecgviz.dashboard.workspace_files import make_root, write_private
from ecgviz.errors import CheckpointError, UserError
from ecgviz.io.data import BeatData

CACHE_DIR_ENV = "ECGVIZ_CACHE_DIR"
MAX_SCORE_BYTES = 64 << 20  # the scores folder's size: beyond it the oldest files go (a million beats are 8 MB)
MAX_CARDS = 256
MAX_BEAT_FILES = 4  # parsed copies of the shipped data sets, each a few MB
# The shipped model's card and its scores on the bundled data, shipped beside it: a fresh install's first start
# needs no torch either. Written by `python -m ecgviz.dashboard.shipped_start`; tests/test_disk_cache.py checks
# it against the model.
SHIPPED_START = SHIPPED_CHECKPOINT.with_name(SHIPPED_CHECKPOINT.stem + ".start.npz")
_HASH = re.compile(r"[0-9a-f]{64}")


def cache_folder() -> Path:
    """$ECGVIZ_CACHE_DIR, else $XDG_CACHE_HOME/ecgviz, else ~/.cache/ecgviz."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ecgviz"


def _folder(part: str) -> Path | None:
    """cache_folder()/part, made private; None when it cannot be (the cache is then off)."""
    try:
        return make_root(make_root(cache_folder()) / part)
    except (OSError, UserError):
        return None


def _checked(*hashes: str) -> None:
    for h in hashes:
        if not _HASH.fullmatch(h):
            raise ValueError(f"not a sha256 hex digest: {h[:80]!r}")


def load_card(ckpt_sha: str) -> CheckpointCard | None:
    """The card kept for the checkpoint whose bytes hash to `ckpt_sha`, or None."""
    _checked(ckpt_sha)
    folder = _folder("cards")
    try:
        if folder is not None and (folder / f"{ckpt_sha}.json").is_file():
            return card_from_json((folder / f"{ckpt_sha}.json").read_bytes())
        start = _shipped_start()
        return card_from_json(start["card"]) if start and start["checkpoint"] == ckpt_sha else None
    except (OSError, CheckpointError):
        return None


def save_card(ckpt_sha: str, card: CheckpointCard) -> None:
    """Keep `card` for the checkpoint whose bytes hash to `ckpt_sha` (silently not, when it cannot be)."""
    _checked(ckpt_sha)
    folder = _folder("cards")
    if folder is None:
        return
    with contextlib.suppress(OSError, TypeError, ValueError):
        write_private(folder / f"{ckpt_sha}.json", card_to_json(card))
        _trim(folder, "*.json", max_files=MAX_CARDS)


def load_scores(ckpt_sha: str, data_fp: str, n_beats: int) -> np.ndarray | None:
    """The scores (n_beats,) kept for this checkpoint and data, read-only, or None."""
    _checked(ckpt_sha, data_fp)
    folder = _folder("scores")
    start = _shipped_start()
    try:
        if folder is not None and (folder / f"{ckpt_sha}-{data_fp}.npy").is_file():
            scores = np.load(folder / f"{ckpt_sha}-{data_fp}.npy", allow_pickle=False)
        elif start and (start["checkpoint"], start["data"]) == (ckpt_sha, data_fp):
            scores = start["scores"].copy()
        else:
            return None
    except (OSError, ValueError):
        return None
    if scores.dtype.kind != "f" or scores.shape != (n_beats,):
        return None
    scores.flags.writeable = False
    return scores


def save_scores(ckpt_sha: str, data_fp: str, scores: np.ndarray) -> None:
    """Keep the scores of this checkpoint on this data (silently not, when they cannot be)."""
    _checked(ckpt_sha, data_fp)
    folder = _folder("scores")
    if folder is None or scores.nbytes > MAX_SCORE_BYTES // 4:
        return
    with contextlib.suppress(OSError, ValueError):
        buf = _npy_bytes(scores)
        write_private(folder / f"{ckpt_sha}-{data_fp}.npy", buf)
        _trim(folder, "*.npy", max_bytes=MAX_SCORE_BYTES)


def load_beats(files_sha: str) -> BeatData | None:
    """The beats parsed before from the files `files_sha` names (see files_key), or None."""
    _checked(files_sha)
    folder = _folder("beats")
    if folder is None:
        return None
    try:
        with np.load(folder / f"{files_sha}.npz", allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("ecgviz") != __version__:
                return None
            return BeatData.from_codes(
                z["X"], z["label_codes"] if meta["labelled"] else None, meta["label_names"], meta["class_names"],
                z["source_codes"], meta["source_names"], z["rows"], tuple(meta["warnings"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_beats(files_sha: str, data: BeatData) -> None:
    """Keep parsed beats (not cut from a recording) for the next start (silently not, when they cannot be)."""
    _checked(files_sha)
    folder = _folder("beats")
    if folder is None or data.origin is not None:
        return
    meta = {"ecgviz": __version__, "labelled": data.label_codes is not None, "label_names": list(data.label_names),
            "class_names": dict(data.class_names), "source_names": list(data.source_names),
            "warnings": list(data.warnings)}
    arrays = {"X": data.X, "source_codes": data.source_codes, "rows": data.rows, "meta": np.array(json.dumps(meta))}
    if data.label_codes is not None:
        arrays["label_codes"] = data.label_codes
    with contextlib.suppress(OSError, ValueError, TypeError):
        buf = io.BytesIO()
        np.savez(buf, allow_pickle=False, **arrays)
        write_private(folder / f"{files_sha}.npz", buf.getvalue())
        _trim(folder, "*.npz", max_files=MAX_BEAT_FILES)


def files_key(paths) -> str:
    """A key for the beats parsed from these files: sha256 over each one's name, size and modification time.

    Not over their bytes: hashing the 8 MB of the bundled files took longer than reading their parsed copy. A file
    rewritten in place gets a new modification time, and so a new key.
    """
    digest = hashlib.sha256(b"ecgviz-files-v2\0")
    for path in paths:
        info = os.stat(path)
        digest.update(f"{Path(path).name}\0{info.st_size}\0{info.st_mtime_ns}\0".encode())
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def _shipped_start() -> dict | None:
    """The shipped start-up file's entries, or None when it is missing or unreadable."""
    try:
        with np.load(SHIPPED_START, allow_pickle=False) as z:
            return {"checkpoint": str(z["checkpoint"]), "data": str(z["data"]), "card": z["card"].tobytes(),
                    "scores": z["scores"]}
    except (OSError, ValueError, KeyError):
        return None


def forget_shipped_start() -> None:
    """Read the shipped start-up file afresh next time (after it was rewritten)."""
    _shipped_start.cache_clear()


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def _trim(folder: Path, pattern: str, *, max_files: int | None = None, max_bytes: int | None = None) -> None:
    """Delete the least recently written files until the folder is within its limits."""
    files = []
    for p in folder.glob(pattern):
        with contextlib.suppress(OSError):
            info = p.stat()
            files.append((info.st_mtime_ns, info.st_size, p))
    files.sort()
    total = sum(size for _, size, _ in files)
    while files and ((max_files is not None and len(files) > max_files)
                     or (max_bytes is not None and total > max_bytes)):
        _, size, p = files.pop(0)
        with contextlib.suppress(OSError):
            p.unlink()
        total -= size

