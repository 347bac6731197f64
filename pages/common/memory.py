"""Streamlit glue for giving memory back: which sessions are alive, closed tabs' sessions, the server's janitor.

The decisions (what to unload, when a job is stopped) live in ecgviz.dashboard.workspace and .janitor; this
module only asks Streamlit's runtime what they need to know.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable

from ecgviz.dashboard import janitor, workspace

_RELEASE = threading.Event()  # set when a session dropped big data: the next sweep gives the memory back


def release_soon() -> None:
    """Ask the janitor's next sweep (within janitor.EVERY_S) to collect and trim: the caller's run still holds
    the old data in its frames, so doing it now would free nothing."""
    _RELEASE.set()


def session_id() -> str | None:
    """The id of the browser session whose script runs in this thread, if any."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx(suppress_warning=True)
    return ctx.session_id if ctx is not None else None


def _runtime():
    """Streamlit's runtime when this is a real server (AppTest runs a stand-in), else None."""
    from streamlit import runtime

    if not runtime.exists():
        return None
    rt = runtime.get_instance()
    return rt if isinstance(rt, runtime.Runtime) else None


def reap_expired_sessions() -> int:
    """Shut down the closed tabs' sessions whose reconnect time is over; how many.

    Workaround for Streamlit 1.67: a closed tab's session is kept for server.disconnectedSessionTTL in a TTL
    cache that drops expired entries only when another session is stored, and never shuts them down, so their
    session state and uploaded files stay in memory for good. Private attributes, read defensively: on another
    Streamlit version this does nothing.
    """
    manager = getattr(_runtime(), "_session_mgr", None)
    cache = getattr(getattr(manager, "_session_storage", None), "_cache", None)
    if not callable(getattr(cache, "expire", None)):
        return 0
    with getattr(manager, "_storage_lock", None) or contextlib.nullcontext():
        expired = cache.expire()
    for _, info in expired:
        with contextlib.suppress(Exception):
            info.session.shutdown()
    return len(expired)


def sweep(store: workspace.WorkspaceStore) -> dict[str, list[str]]:
    """Unload workspaces no open page uses (stopping their training), end expired sessions, give memory back;
    remove expired workspaces from disk when that is due."""
    rt = _runtime()
    is_live = rt.is_active_session if rt is not None else None
    store.sweep_if_due()
    done = store.release_unattended(is_live)
    reaped = reap_expired_sessions()
    if done["unloaded"] or done["stopped"] or reaped or _RELEASE.is_set():
        _RELEASE.clear()
        janitor.release_memory()
    return done


@functools.cache
def ensure_janitor(store: Callable[[], workspace.WorkspaceStore]) -> janitor.Janitor:
    """The server's janitor (one per process, started by the first page run): sweep(store()) every 10 s."""
    return janitor.Janitor(lambda: sweep(store())).start()
