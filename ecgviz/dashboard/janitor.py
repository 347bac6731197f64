"""Giving memory back: a periodic sweep in a daemon thread, and a collection that returns freed pages to the OS."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import threading
from collections.abc import Callable

EVERY_S = 10.0  # how often the server looks for workspaces and sessions no one uses


@functools.cache
def _libc_trim() -> Callable[[int], int] | None:
    # glibc only: musl and other C libraries have no malloc_trim, and there is nothing to do there
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_memory() -> bool:
    """Collect unreachable cycles, then hand free heap pages back to the OS; True when the C library could trim.

    Why both: the server turns Streamlit's collection after every run off (it costs ~240 ms per slider step), so
    big arrays caught in reference cycles wait for Python's rare full collection; and glibc keeps freed memory in
    each thread's arena (every session runs in its own thread) instead of returning it, so RSS would not drop.
    """
    gc.collect()
    trim = _libc_trim()
    return bool(trim(0)) if trim is not None else False


class Janitor:
    """Calls `sweep()` every `every_s` seconds in a daemon thread until stopped; a failing sweep is retried later."""

    def __init__(self, sweep: Callable[[], object], every_s: float = EVERY_S):
        self._sweep, self.every_s = sweep, float(every_s)
        self._stop = threading.Event()
        self.sweeps = 0
        self.last_error: str = ""
        self._thread = threading.Thread(target=self._loop, name="ecgviz-janitor", daemon=True)

    def start(self) -> Janitor:
        """Start the thread (once)."""
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 5.0) -> None:
        """Ask the thread to end and wait for it."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self._sweep()
            except Exception as exc:  # a janitor that dies silently would let memory grow again
                self.last_error = f"{type(exc).__name__}: {exc}"
            self.sweeps += 1
