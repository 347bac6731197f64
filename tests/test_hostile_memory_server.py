"""Memory a server gives back: replaced data, workspaces no open page uses, closed tabs' sessions, freed heap pages.

The numbers for a real server (uploads replaced ten times, sessions closed) come from bench/upload_memory.py.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import weakref
from pathlib import Path

import pytest
import streamlit as st
from streamlit.runtime.caching.ttl_cache import TTLCache
from streamlit.runtime.memory_session_storage import MemorySessionStorage
from streamlit.runtime.session_manager import SessionInfo
from streamlit.testing.v1 import AppTest

from ecgviz.checkpoint.store import save_checkpoint
from ecgviz.dashboard import config, session
from ecgviz.dashboard.text import plain
from ecgviz.dashboard.workspace import DEFAULT_UNLOAD_S, WorkspaceStore
from ecgviz.io.data import load_files
from tests.helpers import synthetic_beats, write_arff

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
TIMEOUT = 120


def uploads(tmp_path, name: str, seed: int) -> list[tuple[str, bytes]]:
    X, labels = synthetic_beats(n_normal=40, n_anomaly=15, length=24, seed=seed)
    return [(name, write_arff(tmp_path / name, X, labels).read_bytes())]


def test_a_workspace_no_session_uses_is_unloaded_and_its_data_freed_but_a_reload_rereads_it(tmp_path):
    store = WorkspaceStore(tmp_path / "ws", unload_s=120)
    ws = store.new()
    files = uploads(tmp_path, "mine.arff", seed=1)
    ws.set_data(session.data_from_uploads(files), files)
    ws.update(threshold=0.5)
    store.attach(ws, "tab-1")
    beats = weakref.ref(ws.data.data)
    live = {"tab-1"}
    assert store.release_unattended(live.__contains__, now=ws.last_used + 3600)["unloaded"] == []  # open, idle
    live.clear()  # the tab closed
    assert store.release_unattended(live.__contains__, now=ws.last_used + 119)["unloaded"] == []  # a reload now...
    assert store.get(ws.id) is ws and ws.data.data is beats()  # ...finds it in memory
    assert store.release_unattended(live.__contains__, now=ws.last_used + 121)["unloaded"] == [ws.id]
    assert ws.closed and ws.data is None and ws not in store.loaded()
    gc.collect()
    assert beats() is None
    again = store.get(ws.id)  # a later reload rereads the kept files
    assert again is not ws and again.data.name == "mine.arff" and again.threshold == 0.5


def test_without_session_information_the_time_since_last_use_decides(tmp_path):
    store = WorkspaceStore(tmp_path / "ws", unload_s=30)
    ws = store.new()
    store.attach(ws, "tab-1")
    assert store.release_unattended(None, now=ws.last_used + 29)["unloaded"] == []
    assert store.release_unattended(None, now=ws.last_used + 31)["unloaded"] == [ws.id]
    assert DEFAULT_UNLOAD_S == 120  # as long as Streamlit keeps a closed tab's session for a reconnect


def test_replacing_a_sessions_data_frees_the_old_beats_and_asks_for_memory_back(monkeypatch, tmp_path, tiny_ckpt,
                                                                                 tiny_files):
    from pages.common import memory, sync

    st.cache_data.clear()
    st.cache_resource.clear()
    monkeypatch.setenv(config.CHECKPOINT_ENV, str(save_checkpoint(tiny_ckpt, tmp_path / "tiny_start.pt")))
    monkeypatch.setenv(config.CHECKPOINT_DIR_ENV, str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["active_data"] = session.make_data(load_files(tiny_files), "tiny")
    at.run()
    at.switch_page("pages/data.py").run()
    at.file_uploader(key="data_upload").set_value([(n, raw, "text/plain") for n, raw in uploads(tmp_path, "a.arff", 2)])
    at.run()
    at.switch_page("pages/explorer.py").run()  # scores, evaluation and chart caches now hold results for a.arff
    assert not at.exception and at.session_state["active_data"].name == "a.arff"
    old = weakref.ref(at.session_state["active_data"].data)
    # recorded from here on: the janitor's own thread (a sweep every 10 s) may be the one that gives memory back
    calls = []
    monkeypatch.setattr(memory.janitor, "release_memory", lambda: calls.append(1) or True)
    memory._RELEASE.clear()
    at.switch_page("pages/data.py").run()
    at.file_uploader(key="data_upload").set_value([(n, raw, "text/plain") for n, raw in uploads(tmp_path, "b.arff", 3)])
    at.run()
    at.switch_page("pages/explorer.py").run()
    assert not at.exception and at.session_state["active_data"].name == "b.arff"
    gc.collect()
    assert old() is None  # no session state, workspace or server-wide cache holds the replaced beats
    # the replacement asked for memory back: the next sweep (the janitor's, or this one) collects and trims
    memory.sweep(sync.store())
    assert calls and not memory._RELEASE.is_set()


class _Session:
    def __init__(self, sid: str):
        self.id, self.shut_down = sid, False

    def shutdown(self) -> None:
        self.shut_down = True


def test_closed_tabs_sessions_are_shut_down_once_their_reconnect_time_is_over(monkeypatch):
    """Streamlit keeps them in a TTL cache that never shuts them down (their uploads would stay for good)."""
    from pages.common import memory

    clock = [0.0]
    storage = MemorySessionStorage(ttl_seconds=120)
    storage._cache = TTLCache(maxsize=128, ttl=120, timer=lambda: clock[0])
    sessions = [_Session("a"), _Session("b")]
    storage.save(SessionInfo(client=None, session=sessions[0], script_run_count=1))
    clock[0] = 60.0
    storage.save(SessionInfo(client=None, session=sessions[1], script_run_count=1))

    class Manager:
        _session_storage = storage

    class Runtime:
        _session_mgr = Manager()

    monkeypatch.setattr(memory, "_runtime", lambda: Runtime())
    clock[0] = 150.0  # the first one's 120 s are over; the second may still reconnect
    assert memory.reap_expired_sessions() == 1
    assert [s.shut_down for s in sessions] == [True, False]
    assert storage.get("b") is not None
    clock[0] = 200.0
    assert memory.reap_expired_sessions() == 1 and sessions[1].shut_down


RELEASE_SCRIPT = """
import sys, threading
from ecgviz.dashboard import janitor, session
import os
from bench.server_stats import memory_mib
def rss_mb(): return memory_mib(os.getpid())["rss"]
raw = open(sys.argv[1], "rb").read()
box = {}
t = threading.Thread(target=lambda: box.update(d=session.data_from_uploads([("big.arff", raw)])))  # as a session
t.start(); t.join()
box.clear()
before = rss_mb()
janitor.release_memory()
print(before, rss_mb())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="resident memory is read from /proc")
def test_release_memory_returns_a_dropped_uploads_pages_to_the_os(tmp_path):
    X, labels = synthetic_beats(n_normal=6000, n_anomaly=1500, length=140, seed=5)
    path = write_arff(tmp_path / "big.arff", X, labels)  # about 20 MB
    out = subprocess.run([sys.executable, "-c", RELEASE_SCRIPT, str(path)], cwd=ROOT, capture_output=True,
                         text=True, timeout=300, check=True).stdout.split()
    before, after = float(out[0]), float(out[1])
    assert before - after > 10, (before, after)  # glibc kept the freed pages until trimmed


def test_the_upload_limit_is_in_mb_of_a_million_bytes_as_the_browser_counts(monkeypatch, tmp_path, tiny_files):
    """The uploader refuses a file over maxUploadSize x 10^6 bytes and says "50.0MB": the page counts the same way."""
    from streamlit import config as st_config

    X, labels = synthetic_beats(n_normal=320, n_anomaly=50, length=140, seed=6)
    raw = write_arff(tmp_path / "just_over.arff", X, labels).read_bytes()
    assert 1_000_000 < len(raw) <= 2**20  # over 1 MB, within 1 MiB (what Streamlit's server allows)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["active_data"] = session.make_data(load_files(tiny_files), "tiny")
    at.run()
    at.switch_page("pages/data.py").run()
    previous = st_config.get_option("server.maxUploadSize")
    st_config.set_option("server.maxUploadSize", 1)
    try:
        at.file_uploader(key="data_upload").set_value([("just_over.arff", raw, "text/plain")]).run()
    finally:
        st_config.set_option("server.maxUploadSize", previous)
    assert [e.value for e in at.error] == [plain(
        f"just_over.arff: {len(raw) / 1e6:.2f} MB, but the dashboard loads at most 1 MB at once; score larger data "
        "with `python -m ecgviz score`, which has no limit")]
    assert at.session_state["active_data"].name == "tiny"


def _uploaded_bytes(url: str) -> int:
    """Bytes Streamlit's uploaded-file manager holds, from the server's /_stcore/metrics (0 when it holds none)."""
    import re
    import urllib.request

    with urllib.request.urlopen(url + "_stcore/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(int(float(v)) for v in re.findall(r'^cache_memory_bytes\{[^}]*UploadedFileManager[^}]*\}\s+(\S+)',
                                                   text, re.M))


@pytest.mark.browser
def test_a_closed_tabs_uploaded_file_is_freed_once_its_reconnect_time_is_over(chromium, tmp_path):
    """On a real server: Streamlit alone would keep the closed tab's session, and its upload, for good."""
    import time

    from playwright.sync_api import sync_playwright

    from tests.browser_support import StreamlitServer, launch_browser, wait_idle

    X, labels = synthetic_beats(n_normal=300, n_anomaly=60, length=140, seed=7)
    path = write_arff(tmp_path / "closed_tab.arff", X, labels)
    env = {"ECGVIZ_WORKSPACE_DIR": str(tmp_path / "ws"), "ECGVIZ_WORKSPACE_UNLOAD_S": "2", "OMP_NUM_THREADS": "1"}
    with StreamlitServer(ROOT / "app.py", env=env, extra_args=("--server.disconnectedSessionTTL", "2")) as server, \
            sync_playwright() as p:
        browser = launch_browser(p)
        context = browser.new_context()
        page = context.new_page()
        page.goto(server.url + "data", timeout=120_000)
        wait_idle(page)
        page.locator("[data-testid=stFileUploader] input[type=file]").first.set_input_files(str(path))
        page.get_by_text("closed_tab.arff").first.wait_for(timeout=120_000)
        wait_idle(page)
        held = _uploaded_bytes(server.url)
        assert held >= path.stat().st_size
        context.close()
        deadline, left = time.monotonic() + 90, held
        while time.monotonic() < deadline and left:
            time.sleep(2)
            left = _uploaded_bytes(server.url)
        browser.close()
    assert left == 0, f"{left:,} uploaded bytes still held 90 s after the tab closed (reconnect time 2 s)"
