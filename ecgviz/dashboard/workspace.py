"""Server-side workspaces: what one browser session works with, kept under an unguessable id in its URL.

A reload, or a second tab opened with the same link, finds the workspace again: its data (uploads are kept on disk),
active model, threshold, normal labels, training job (live, in this process) and form settings. Workspaces idle
longer than a configurable time are removed, and their disk use is bounded per workspace and in all, when bytes
are written (see workspace_quota). A workspace no open page has used for a while is unloaded from memory (its
training job stopped), and reread from disk if its link is opened again; one a live session uses is never
deleted. This module is the store; the record is workspace_record, the files workspace_files.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator

from ecgviz.dashboard import session
from ecgviz.dashboard.workspace_files import clean_orphans, make_root, mtime, private_dir
from ecgviz.dashboard.workspace_quota import DiskQuota
from ecgviz.dashboard.workspace_record import STATE_FILE, Workspace

__all__ = ["DEFAULT_UNLOAD_S", "ROOT_ENV", "Workspace", "WorkspaceStore", "data_offers", "store_from_env"]

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
SWEEP_EVERY_S = 60.0  # the janitor looks for expired workspaces on disk at most this often
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


class WorkspaceStore:
    """All workspaces of one server: created on a first visit, found again by id, expired when idle."""

    def __init__(self, root: str | os.PathLike, *, idle_s: float = DEFAULT_IDLE_HOURS * 3600,
                 max_bytes_each: int = int(DEFAULT_MB_EACH * 1e6), max_bytes_total: int = int(DEFAULT_MB_TOTAL * 1e6),
                 unload_s: float = DEFAULT_UNLOAD_S, clock: Callable[[], float] = time.time):
        self.root = make_root(root)
        self.idle_s = float(idle_s)
        self.unload_s = float(unload_s)
        self.max_bytes_each, self.max_bytes_total = int(max_bytes_each), int(max_bytes_total)
        self.quota = DiskQuota(self.root, self.max_bytes_total)
        self._clock = clock
        self._lock = threading.Lock()
        self._open: dict[str, Workspace] = {}
        # the first sweep (the janitor's, seconds after the first visit) also cleans what killed writes left: walking
        # every workspace's files took ~0.1 s of a fresh server's first page with 500 of them
        self._swept = float("-inf")

    def _workspace(self, wid: str) -> Workspace:
        ws = Workspace(wid, self.root / wid, self.max_bytes_each)
        ws.room = lambda need: self._room(ws, need)
        return ws

    @contextlib.contextmanager
    def _room(self, ws: Workspace, need: int) -> Iterator[str | None]:
        """Room for `need` more bytes in `ws`: other workspaces no live page uses are evicted for it if need be."""
        with self.quota.claim(need, lambda: self._evictable(exclude=ws.id), self.remove) as why:
            yield why

    def _evictable(self, exclude: str = "") -> list[tuple[float, str]]:
        """(last used, id) of every workspace on disk that may be deleted for room: none that a live session
        uses or that trains."""
        out = []
        for folder in self.root.iterdir() if self.root.is_dir() else ():
            if folder.name == exclude or not _ID_RE.fullmatch(folder.name) or not folder.is_dir():
                continue
            with self._lock:
                ws = self._open.get(folder.name)
            if ws is not None and (_running(ws) or ws.sessions):
                continue
            out.append((ws.last_used if ws is not None and ws.last_used else mtime(folder), folder.name))
        return out

    def new(self) -> Workspace:
        """A fresh, empty workspace with a new random id (ids are never chosen by the browser)."""
        wid = secrets.token_urlsafe(18)
        ws = self._workspace(wid)
        private_dir(ws.dir)
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
            ws = self._workspace(wid)
            ws.restore()
            with self._lock:
                if self._open.get(wid) is None or self._open[wid].closed:
                    self._open[wid] = ws
                ws = self._open[wid]
            self._trim_memory()
        now = self._clock()
        last = ws.last_used or mtime(ws.dir)
        if now - last > self.idle_s and not _running(ws) and not ws.sessions:
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
        the workspace's model area) when it has finished an epoch; the workspace is unloaded once its job has ended.
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

    def sweep_if_due(self) -> list[str]:
        """sweep() when the last one is SWEEP_EVERY_S old (the janitor's call, off any page's run)."""
        return self.sweep() if self._clock() - self._swept >= SWEEP_EVERY_S else []

    def sweep(self) -> list[str]:
        """Remove idle workspaces (none a live session uses), then, while all of them hold more than the total
        cap (it may have been lowered), the least recently used that may go; clean up what killed writes left."""
        self._swept = self._clock()
        if not self.root.is_dir():
            return []
        now, removed = self._clock(), []
        for last, wid in self._evictable():
            if now - last > self.idle_s:
                self.remove(wid)
                removed.append(wid)
        removed += self.quota.trim(self._evictable, self.remove)
        clean_orphans(self.root, now=time.time())
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
