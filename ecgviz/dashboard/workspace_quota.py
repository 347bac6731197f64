"""The workspaces' total disk cap, checked when bytes are about to be written, and who may be evicted for room.

Checking the cap only now and then let one visitor with many tabs put several times the cap on disk before the
next check, which then deleted other people's workspaces, open ones included. Here every write asks first: the
bytes already on disk (counted afresh, so nothing written since is missed) plus those other writes have claimed
but not yet written, plus these. When they do not fit, workspaces no open page uses are evicted, least recently
used first; a workspace in use by a live session is never evicted, and then the write is refused instead.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from ecgviz.dashboard.workspace_files import du

Candidates = Callable[[], list[tuple[float, str]]]  # (last used, id) of the workspaces that may be evicted


class DiskQuota:
    """At most `max_bytes_total` in all the workspaces under `root`, enforced at write time."""

    def __init__(self, root: Path, max_bytes_total: int):
        self.root, self.max_bytes_total = Path(root), int(max_bytes_total)
        self._lock = threading.Lock()
        self._claimed: dict[int, int] = {}  # claims not yet written: id(token) -> bytes

    def used(self) -> int:
        """Bytes on disk now, plus those claimed by writes still going on."""
        with self._lock:
            return self._used()

    def _used(self) -> int:
        return du(self.root) + sum(self._claimed.values())

    @contextlib.contextmanager
    def claim(self, need: int, candidates: Candidates, evict: Callable[[str], None]) -> Iterator[str | None]:
        """Room for `need` more bytes while the block runs: yields None (write them) or why there is none.

        To make room, `evict(id)` is called for `candidates()` in least recently used order until they fit.
        """
        token = object()
        with self._lock:
            used = self._used()
            for _, wid in sorted(candidates()):
                if used + need <= self.max_bytes_total:
                    break
                size = du(self.root / wid)
                evict(wid)
                used -= size
            why = None if used + need <= self.max_bytes_total else self._full(used, need)
            if why is None:
                self._claimed[id(token)] = need
        try:
            yield why
        finally:
            with self._lock:
                self._claimed.pop(id(token), None)

    def _full(self, used: int, need: int) -> str:
        return (f"the server's workspaces hold {used / 1e6:.0f} MB of their {self.max_bytes_total / 1e6:.0f} MB, all "
                f"of it in use by open pages, and {need / 1e6:.1f} MB more do not fit")

    def trim(self, candidates: Candidates, evict: Callable[[str], None]) -> list[str]:
        """Evict candidates, least recently used first, while all workspaces hold more than the cap (e.g. after
        the cap was lowered); the ids evicted."""
        done = []
        with self._lock:
            used = self._used()
            for _, wid in sorted(candidates()):
                if used <= self.max_bytes_total:
                    break
                size = du(self.root / wid)
                evict(wid)
                used -= size
                done.append(wid)
        return done
