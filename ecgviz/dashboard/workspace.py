"""Server-side workspaces: what one browser session works with, kept under an unguessable id in its URL.

A reload, or a second tab opened with the same link, finds the workspace again: its data (uploads are kept on disk),
active model, threshold, normal labels, training job (live, in this process) and form settings. Workspaces idle
longer than a configurable time are removed, and their disk use is bounded per workspace and in all. A workspace
no open page has used for a while is unloaded from memory (its training job stopped), and reread from disk if
its link is opened again.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecgviz.dashboard import session

ROOT_ENV = "ECGVIZ_WORKSPACE_DIR"
IDLE_HOURS_ENV = "ECGVIZ_WORKSPACE_IDLE_HOURS"
MB_EACH_ENV = "ECGVIZ_WORKSPACE_MB"
MB_TOTAL_ENV = "ECGVIZ_WORKSPACES_MB"
UNLOAD_S_ENV = "ECGVIZ_WORKSPACE_UNLOAD_S"
DEFAULT_IDLE_HOURS = 24.0
DEFAULT_MB_EACH = 200.0  # four full-size uploads (server.maxUploadSize is 50 MB)
DEFAULT_MB_TOTAL = 2000.0
# Streamlit keeps a closed tab's session 120 s (server.disconnectedSessionTTL) for it to reconnect; a workspace stays
# loaded as long, so a reconnect or a quick reload finds it in memory, and is reread from its files after that
DEFAULT_UNLOAD_S = 120.0
MAX_IN_MEMORY = 64  # workspaces whose data and model stay loaded; the others are reread from disk when visited
SWEEP_EVERY_S = 60.0  # a new visitor sweeps at most this often
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
STATE_FILE = "state.json"


@dataclass(eq=False)
class Workspace:
    """One browser session's work; every change bumps `revision`, so other tabs know to reread it."""

    id: str
    dir: Path
    max_bytes: int
    data: session.ActiveData | None = None
    model: session.ActiveModel | None = None
    threshold: float | None = None
    normals: list[str] | None = None
    job: Any = None  # a TrainingJob: lives only in this server process
    job_adopted: bool = False
    form: dict = field(default_factory=dict)  # the Model page's settings and tab
    revision: int = 0
    last_used: float = 0.0
    note: str = ""  # why something could not be kept (e.g. over the disk limit), shown once
    sessions: set = field(default_factory=set)  # ids of the browser sessions that use it (see WorkspaceStore.attach)
    closed: bool = False  # unloaded from memory: a session still holding this object must look its id up again
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    # -- changes ---------------------------------------------------------------------------------------------
    def set_data(self, data: session.ActiveData, files: Sequence[tuple[str, bytes]] | None = None) -> None:
        """Make `data` active; uploaded `files` are kept on disk (within the limit) so a reload can reread them."""
        with self.lock:
            self.data = data
            if files and not self._store_files(data.fingerprint, files):
                self.note = (f"{data.name} is too large to keep on disk (a workspace keeps at most "
                             f"{self.max_bytes / 1e6:.0f} MB): it is loaded now, but a reload after a while or "
                             "after a server restart may not find it.")
            self._changed()

    def set_model(self, model: session.ActiveModel | None) -> None:
        """Make `model` active; an uploaded checkpoint's bytes are kept on disk."""
        with self.lock:
            self.model = model
            if model is not None and model.raw is not None and model.path is None:
                target = self.dir / "models" / f"{model.id}.pt"
                if not target.exists() and self._fits(len(model.raw)):
                    _write(target, model.raw)
            self._changed()

    def update(self, **values: Any) -> None:
        """Set plain fields (threshold, normals, job, job_adopted, form) and save."""
        with self.lock:
            for key, value in values.items():
                if key not in ("threshold", "normals", "job", "job_adopted", "form"):
                    raise KeyError(key)
                setattr(self, key, value)
            self._changed()

    def adopt_job(self) -> bool:
        """True exactly once per finished job: whichever tab asks first activates its model."""
        with self.lock:
            if self.job is None or self.job_adopted:
                return False
            self.job_adopted = True
            self._changed()
            return True

    def touch(self, now: float | None = None) -> None:
        """Mark the workspace as in use (idle expiry counts from here)."""
        self.last_used = time.time() if now is None else now
        with self.lock:
            try:
                os.utime(self.dir)
            except OSError:
                pass

    # -- files -----------------------------------------------------------------------------------------------
    def data_files(self, fingerprint: str) -> list[tuple[str, bytes]] | None:
        """The uploaded files kept for a data set with this fingerprint, in their order; None when not kept."""
        folder = self.dir / "data" / fingerprint[:32]
        order = folder / "order.json"
        if not order.is_file():
            return None
        try:
            names = json.loads(order.read_text())
            return [(name, (folder / f"{i:02d}").read_bytes()) for i, name in enumerate(names)]
        except (OSError, ValueError, TypeError):
            return None

    def kept_data(self) -> dict[str, list[str]]:
        """Fingerprint prefix -> file names of every data set kept in this workspace."""
        out = {}
        for order in sorted((self.dir / "data").glob("*/order.json")):
            try:
                out[order.parent.name] = list(json.loads(order.read_text()))
            except (OSError, ValueError):
                continue
        return out

    def disk_bytes(self) -> int:
        """Bytes this workspace holds on disk."""
        return _du(self.dir)

    def _fits(self, extra: int) -> bool:
        return self.disk_bytes() + extra <= self.max_bytes

    def _store_files(self, fingerprint: str, files: Sequence[tuple[str, bytes]]) -> bool:
        folder = self.dir / "data" / fingerprint[:32]
        if (folder / "order.json").is_file():
            return True
        need = sum(len(raw) for _, raw in files)
        # make room by forgetting earlier uploads, oldest first (the active data set is this one)
        older = sorted((f for f in (self.dir / "data").glob("*") if f.is_dir()), key=_mtime)
        while not self._fits(need) and older:
            shutil.rmtree(older.pop(0), ignore_errors=True)
        if not self._fits(need):
            return False
        for i, (_, raw) in enumerate(files):
            _write(folder / f"{i:02d}", raw)
        _write(folder / "order.json", json.dumps([name for name, _ in files]).encode())
        return True

    # -- persistence -----------------------------------------------------------------------------------------
    def _changed(self) -> None:
        self.revision += 1
        self.last_used = time.time()
        _write(self.dir / STATE_FILE, json.dumps(self._record()).encode())

    def _record(self) -> dict:
        data = None
        if self.data is not None:
            data = ({"kind": "builtin"} if self.data.name == session.BUILTIN_NAME
                    else {"kind": "uploads", "fingerprint": self.data.fingerprint, "name": self.data.name})
        model = None
        if self.model is not None:
            if self.model.path is not None:
                model = {"kind": "path", "path": str(self.model.path), "source": self.model.source}
            else:
                model = {"kind": "file", "id": self.model.id, "name": self.model.name}
        form = {k: v for k, v in self.form.items() if isinstance(v, str | int | float | bool | type(None))}
        return {"data": data, "model": model, "threshold": self.threshold, "normals": self.normals,
                "job_adopted": self.job_adopted, "form": form}

    def _restore(self) -> None:
        """Reread a workspace written by an earlier server process; whatever cannot be reread is left unset."""
        try:
            record = json.loads((self.dir / STATE_FILE).read_text())
        except (OSError, ValueError):
            return
        data, model = record.get("data") or {}, record.get("model") or {}
        try:
            if data.get("kind") == "builtin":
                self.data = session.builtin_data()
            elif data.get("kind") == "uploads":
                files = self.data_files(str(data.get("fingerprint", "")))
                if files:
                    self.data = session.data_from_uploads(files)
            if model.get("kind") == "path" and Path(model.get("path", "")).is_file():
                self.model = session.model_from_path(model["path"], source=str(model.get("source", "saved")))
            elif model.get("kind") == "file":
                raw = (self.dir / "models" / f"{model.get('id')}.pt").read_bytes()
                self.model = session.model_from_bytes(raw, f"{model.get('name', 'model')}.pt")
        except (OSError, ValueError):  # a file gone or damaged since: start that part afresh
            pass
        if isinstance(record.get("threshold"), int | float):
            self.threshold = float(record["threshold"])
        if isinstance(record.get("normals"), list):
            self.normals = [str(x) for x in record["normals"]]
        self.form = dict(record.get("form") or {})
        self.job_adopted = True  # a job from another process is gone; its model, if saved, is in checkpoints/
        self.revision = 1  # sessions read it, rather than start it afresh


class WorkspaceStore:
    """All workspaces of one server: created on a first visit, found again by id, expired when idle."""

    def __init__(self, root: str | os.PathLike, *, idle_s: float = DEFAULT_IDLE_HOURS * 3600,
                 max_bytes_each: int = int(DEFAULT_MB_EACH * 1e6), max_bytes_total: int = int(DEFAULT_MB_TOTAL * 1e6),
                 unload_s: float = DEFAULT_UNLOAD_S, clock: Callable[[], float] = time.time):
        self.root = Path(root)
        self.idle_s = float(idle_s)
        self.unload_s = float(unload_s)
        self.max_bytes_each, self.max_bytes_total = int(max_bytes_each), int(max_bytes_total)
        self._clock = clock
        self._lock = threading.Lock()
        self._open: dict[str, Workspace] = {}
        self._swept = float("-inf")

    def new(self) -> Workspace:
        """A fresh, empty workspace with a new random id (ids are never chosen by the browser)."""
        if self._clock() - self._swept >= SWEEP_EVERY_S:
            self.sweep()
        wid = secrets.token_urlsafe(18)
        ws = Workspace(wid, self.root / wid, self.max_bytes_each)
        ws.dir.mkdir(parents=True, exist_ok=True)
        ws.touch(self._clock())
        with self._lock:
            self._open[wid] = ws
        self._trim_memory()
        return ws

    def _trim_memory(self) -> None:
        """Keep at most MAX_IN_MEMORY workspaces loaded; never one that trains (its job lives only here)."""
        with self._lock:
            idle = sorted((ws.last_used, wid) for wid, ws in self._open.items() if not _running(ws) and not ws.sessions)
            for _, wid in idle[: max(len(self._open) - MAX_IN_MEMORY, 0)]:
                _unload(self._open.pop(wid))

    def get(self, wid: str | None) -> Workspace | None:
        """The workspace with this id, if it exists and has not expired."""
        if not wid or not _ID_RE.fullmatch(wid):
            return None
        with self._lock:
            ws = self._open.get(wid)
        if ws is None or ws.closed:
            folder = self.root / wid
            if not (folder / STATE_FILE).is_file() and not folder.is_dir():
                return None
            ws = Workspace(wid, folder, self.max_bytes_each)
            ws._restore()
            with self._lock:
                if self._open.get(wid) is None or self._open[wid].closed:
                    self._open[wid] = ws
                ws = self._open[wid]
            self._trim_memory()
        now = self._clock()
        last = ws.last_used or _mtime(ws.dir)
        if now - last > self.idle_s and not _running(ws):
            self.remove(wid)
            return None
        ws.touch(now)
        return ws

    def remove(self, wid: str) -> None:
        """Forget a workspace and delete its files."""
        with self._lock:
            ws = self._open.pop(wid, None)
        if ws is not None and _running(ws):
            ws.job.cancel()
        if ws is not None and not _running(ws):
            _unload(ws)
        shutil.rmtree(self.root / wid, ignore_errors=True)

    def attach(self, ws: Workspace, session_id: str | None) -> None:
        """Note that the browser session `session_id` uses `ws` (every run of its page says so again)."""
        if session_id:
            with ws.lock:
                ws.sessions.add(session_id)

    def loaded(self) -> list[Workspace]:
        """The workspaces held in memory now."""
        with self._lock:
            return list(self._open.values())

    def release_unattended(self, is_live: Callable[[str], bool] | None = None,
                           now: float | None = None) -> dict[str, list[str]]:
        """Unload the workspaces no live session has used for `unload_s`; stop their training first.

        `is_live(session_id)` says whether a browser session is still connected (None: not known, and then only
        the time since a page last used the workspace counts). A stopped job keeps the best model so far (saved in
        the checkpoint folder) when it has finished an epoch; the workspace is unloaded once its job has ended.
        Its files stay on disk until it expires, so its link still finds the data. Returns the ids acted on.
        """
        now = self._clock() if now is None else now
        done: dict[str, list[str]] = {"unloaded": [], "stopped": []}
        for ws in self.loaded():
            with ws.lock:
                if is_live is not None:
                    ws.sessions = {sid for sid in ws.sessions if is_live(sid)}
                attended = bool(ws.sessions) if is_live is not None else False
            if attended or now - ws.last_used < self.unload_s:
                continue
            if _running(ws):
                if not ws.job.cancel_requested:
                    ws.job.cancel(keep=ws.job.state().best_epoch is not None)
                    done["stopped"].append(ws.id)
                continue
            with self._lock:
                if self._open.get(ws.id) is ws:
                    del self._open[ws.id]
            _unload(ws)
            done["unloaded"].append(ws.id)
        return done

    def sweep(self) -> list[str]:
        """Remove idle workspaces, then the least recently used ones while all of them hold too much disk."""
        self._swept = self._clock()
        if not self.root.is_dir():
            return []
        now, removed = self._clock(), []
        entries = []
        for folder in self.root.iterdir():
            if not folder.is_dir() or not _ID_RE.fullmatch(folder.name):
                continue
            with self._lock:
                ws = self._open.get(folder.name)
            last = ws.last_used if ws is not None and ws.last_used else _mtime(folder)
            busy = ws is not None and _running(ws)
            if now - last > self.idle_s and not busy:
                self.remove(folder.name)
                removed.append(folder.name)
            else:
                entries.append((last, folder.name, _du(folder), busy))
        total = sum(size for _, _, size, _ in entries)
        for _, wid, size, busy in sorted(entries):
            if total <= self.max_bytes_total:
                break
            if not busy:
                self.remove(wid)
                removed.append(wid)
                total -= size
        return removed


def store_from_env() -> WorkspaceStore:
    """The server's store, configured by $ECGVIZ_WORKSPACE_DIR, _IDLE_HOURS, _MB, _UNLOAD_S, $ECGVIZ_WORKSPACES_MB."""
    root = os.environ.get(ROOT_ENV) or os.path.join(tempfile.gettempdir(), "ecgviz-workspaces")
    return WorkspaceStore(root, idle_s=_env_float(IDLE_HOURS_ENV, DEFAULT_IDLE_HOURS) * 3600,
                          max_bytes_each=int(_env_float(MB_EACH_ENV, DEFAULT_MB_EACH) * 1e6),
                          max_bytes_total=int(_env_float(MB_TOTAL_ENV, DEFAULT_MB_TOTAL) * 1e6),
                          unload_s=_env_float(UNLOAD_S_ENV, DEFAULT_UNLOAD_S))


def _env_float(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value > 0 else default


def _running(ws: Workspace) -> bool:
    return ws.job is not None and not ws.job.state().finished


def _unload(ws: Workspace) -> None:
    # drop the references, not only the store's entry: a stray holder of the object must not keep the arrays alive
    with ws.lock:
        ws.closed = True
        ws.data = ws.model = ws.job = None
        ws.sessions = set()


def _write(path: Path, raw: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_bytes(raw)
    os.replace(tmp, path)


def _du(folder: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(dirpath, name))
            except OSError:
                pass
    return total


def _mtime(folder: Path) -> float:
    try:
        return folder.stat().st_mtime
    except OSError:
        return 0.0


def data_offers(ws: Workspace | None, fingerprint: str) -> list[tuple[str, Callable[[], tuple]]]:
    """Where the data with this fingerprint is at hand: (label, load) pairs; load() -> (ActiveData, files or None)."""
    offers: list[tuple[str, Callable[[], tuple]]] = []
    builtin = session.builtin_data()
    if builtin.fingerprint == fingerprint:
        offers.append((session.BUILTIN_NAME, lambda: (builtin, None)))
    if ws is not None:
        files = ws.data_files(fingerprint)
        if files:
            label = " + ".join(name for name, _ in files)
            offers.append((f"{label} (kept in this workspace)", lambda: (session.data_from_uploads(files), files)))
    return offers
