"""One workspace: what a browser session works with, kept in memory and written to its folder as it changes.

Its folder holds state.json (the record: data set, model, threshold, normal labels, form settings), data/ (the
uploads of each data set kept, so a reload can reread them), models/ (uploaded checkpoints) and checkpoints/
(the models trained or saved here: this workspace's own model area, seen by no one else until shared).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecgviz.dashboard import session
from ecgviz.dashboard.workspace_files import du, mtime, private_dir, write_folder, write_private
from ecgviz.errors import NameInUse, UserError

STATE_FILE = "state.json"
MODEL_AREA = "checkpoints"  # this workspace's models (trained or saved here), under its folder
# Room for `n` more bytes while a block runs: yields None (go ahead) or why not (see WorkspaceStore._room).
Room = Callable[[int], contextlib.AbstractContextManager[str | None]]


@contextlib.contextmanager
def _always_room(need: int) -> Iterator[str | None]:
    yield None


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
    room: Room = field(default=_always_room, repr=False)  # the store's total disk cap, asked before each write
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    # -- changes ---------------------------------------------------------------------------------------------
    def set_data(self, data: session.ActiveData, files: Sequence[tuple[str, bytes]] | None = None) -> None:
        """Make `data` active; uploaded `files` are kept on disk (within the limits) so a reload can reread them."""
        with self.lock:
            self.data = data
            self._changed()
        # files are written outside the lock: making room may evict other workspaces, which takes their locks
        why = self._store_files(data.fingerprint, files) if files else None
        if why is not None:
            with self.lock:
                self.note = (f"{data.name} is loaded, but not kept on disk: {why}. It stays loaded while this "
                             "page is open; a reload after a while, or after a server restart, may not find it.")

    def set_model(self, model: session.ActiveModel | None) -> None:
        """Make `model` active; an uploaded checkpoint's bytes are kept on disk."""
        with self.lock:
            self.model = model
            self._changed()
        if model is not None and model.raw is not None and model.path is None:
            target = self.dir / "models" / f"{model.id}.pt"
            if not target.exists() and self._fits(len(model.raw)):
                with self.room(len(model.raw)) as why:
                    if why is None:
                        write_private(target, model.raw)

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

    # -- the model area --------------------------------------------------------------------------------------
    def model_dir(self) -> Path:
        """Where this workspace's models are trained and saved to (created on first use, private)."""
        return private_dir(self.dir / MODEL_AREA)

    def model_files(self) -> list[Path]:
        """This workspace's model files, newest first."""
        folder = self.dir / MODEL_AREA
        return sorted(folder.glob("*.pt"), key=mtime, reverse=True) if folder.is_dir() else []

    def share(self, path: str | os.PathLike, shared_dir: str | os.PathLike) -> Path:
        """Copy one of this workspace's models into `shared_dir` (the checkpoints every visitor sees).

        Never replaces a file there (NameInUse instead); only files of this workspace's model area are shared.
        """
        path = Path(path)
        if path.parent.resolve() != (self.dir / MODEL_AREA).resolve() or not path.is_file():
            raise UserError(f"{path.name} is not a model of this workspace")
        target = Path(shared_dir) / path.name
        Path(shared_dir).mkdir(parents=True, exist_ok=True)
        try:
            with open(target, "xb") as out, open(path, "rb") as src:
                shutil.copyfileobj(src, out)
        except FileExistsError:
            raise NameInUse(f"{target.name} exists in {shared_dir} already; rename the model before sharing it") \
                from None
        return target

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
        """Bytes this workspace holds on disk (a write killed half-way is not counted)."""
        return du(self.dir)

    def _fits(self, extra: int) -> bool:
        return self.disk_bytes() + extra <= self.max_bytes

    def _store_files(self, fingerprint: str, files: Sequence[tuple[str, bytes]]) -> str | None:
        """Keep the files of one data set; None when kept, else why not."""
        folder = self.dir / "data" / fingerprint[:32]
        if (folder / "order.json").is_file():
            return None
        need = sum(len(raw) for _, raw in files)
        # make room by forgetting earlier uploads, oldest first (the active data set is this one)
        older = sorted((f for f in (self.dir / "data").glob("*") if f.is_dir() and f.name != folder.name), key=mtime)
        while not self._fits(need) and older:
            shutil.rmtree(older.pop(0), ignore_errors=True)
        if not self._fits(need):
            return f"a workspace keeps at most {self.max_bytes / 1e6:.0f} MB"
        order = json.dumps([name for name, _ in files]).encode()
        with self.room(need + len(order)) as why:
            if why is None:
                write_folder(folder, [*((f"{i:02d}", raw) for i, (_, raw) in enumerate(files)), ("order.json", order)])
        return why

    # -- persistence -----------------------------------------------------------------------------------------
    def _changed(self) -> None:
        self.revision += 1
        self.last_used = time.time()
        write_private(self.dir / STATE_FILE, json.dumps(self._record()).encode())

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

    def restore(self) -> None:
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
        self.job_adopted = True  # a job from another process is gone; its model, if saved, is in the model area
        self.revision = 1  # sessions read it, rather than start it afresh
