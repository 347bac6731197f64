"""Run the dashboard in a real browser: a Streamlit server subprocess, system Chromium, and a wait for idle.

The API is small and stable, for browser tests, benchmarks and concurrency tests alike:

    find_chromium() -> str | None                 the Chromium executable, or None
    StreamlitServer(app_path, port=None, env=None) context manager; .url, .port, .pid, .log()
    launch_browser(playwright, **options)         Playwright Browser on the system Chromium
    wait_idle(page, timeout=..., settle_ms=...)   wait until the app's script (or a fragment) finished running

    with StreamlitServer("app.py") as server, sync_playwright() as p:
        browser = launch_browser(p)
        page = browser.new_page()
        page.goto(server.url)
        wait_idle(page)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

CHROMIUM_ENV = "ECGVIZ_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
# No network beyond the app, no GPU, no sandbox (containers run as root); the same flags everywhere.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
)
SETTLE_MS = 500  # a widget change starts its run within this (measured up to ~300 ms on a busy 2-core machine)
QUIET_MS = 200  # idle means: no run, and no change to the page for this long
IDLE_TIMEOUT_MS = 60_000

# Watches the page: how many runs (full or fragment: both flip the stApp attribute) have started, and when the
# page last changed at all. "notRunning" alone is not idle: elements are drawn after the run ends (their code
# is loaded on first use), and st.rerun() shows "notRunning" for a few ms between its two runs.
_WATCH_JS = """() => {
  const app = document.querySelector("[data-testid=stApp]");
  if (window.__ecgvizIdle && window.__ecgvizIdle.app === app) return;
  const w = window.__ecgvizIdle = {app: app, runs: 0, seen: 0, changed: performance.now()};
  new MutationObserver((records) => {
    w.changed = performance.now();
    for (const r of records) {
      if (r.target === app && r.attributeName === "data-test-script-state"
          && app.getAttribute("data-test-script-state") !== "notRunning") w.runs += 1;
    }
  }).observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true});
}"""
# Still busy: an element whose code is loading (its placeholder), the app skeleton, a file upload in flight.
_BUSY = "[data-testid=stSkeleton], [data-testid=stAppSkeleton], [data-testid=stFileChipIconSpinner]"
_IDLE_JS = """([quietMs, busy]) => {
  const w = window.__ecgvizIdle, app = w.app;
  if (document.querySelector(busy)) w.changed = performance.now();
  return app.getAttribute("data-test-script-state") === "notRunning"
      && app.getAttribute("data-test-connection-state") === "CONNECTED"
      && performance.now() - w.changed >= quietMs;
}"""
_STARTED_JS = """(busy) => window.__ecgvizIdle.runs > window.__ecgvizIdle.seen
    || document.querySelector(busy) !== null"""


def find_chromium() -> str | None:
    """The Chromium to drive: $ECGVIZ_CHROMIUM when set (None if it is not executable), else the system one."""
    explicit = os.environ.get(CHROMIUM_ENV)
    if explicit:
        return explicit if _executable(explicit) else None
    for candidate in (DEFAULT_CHROMIUM, shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and _executable(candidate):
            return candidate
    return None


def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StreamlitServer:
    """`streamlit run app_path` on a free local port, from start-up until it answers its health check.

    Use as a context manager (or call start()/stop()). `env` entries are added to (None removes from) the
    current environment. Server output goes to a temporary log file, read with log(), so a full pipe can
    never stall the server. The file watcher is off: an edited source file must not rerun a session under test.
    """

    def __init__(self, app_path: str | os.PathLike, port: int | None = None,
                 env: Mapping[str, str | None] | None = None, *, startup_timeout: float = 90.0,
                 extra_args: Sequence[str] = ()) -> None:
        self.app_path = Path(app_path).resolve()
        if not self.app_path.is_file():
            raise FileNotFoundError(f"no Streamlit app at {self.app_path}")
        self._fixed_port = port
        self.port: int | None = port
        self._env = dict(env or {})
        self.startup_timeout = startup_timeout
        self.extra_args = tuple(extra_args)
        self._process: subprocess.Popen | None = None
        self._log = None

    @property
    def url(self) -> str:
        """The app's address, e.g. http://127.0.0.1:8531/ (only while started)."""
        if self.port is None or self._process is None:
            raise RuntimeError("the server is not running")
        return f"http://127.0.0.1:{self.port}/"

    @property
    def pid(self) -> int | None:
        """Process id of the server (None when stopped)."""
        return None if self._process is None else self._process.pid

    def log(self) -> str:
        """Everything the server has printed so far."""
        if self._log is None:
            return ""
        self._log.flush()
        return Path(self._log.name).read_text(errors="replace")

    def start(self) -> StreamlitServer:
        """Start the server and wait for /_stcore/health; RuntimeError (with the server log) if it never answers."""
        if self._process is not None:
            return self
        # a port chosen by free_port() can be taken before streamlit binds it; then try another one
        attempts = 1 if self._fixed_port is not None else 3
        for attempt in range(attempts):
            self.port = self._fixed_port or free_port()
            self._spawn()
            try:
                self._wait_healthy()
                return self
            except RuntimeError:
                log = self.log()
                self.stop()
                if attempt + 1 == attempts or "already in use" not in log:
                    raise
        raise AssertionError("unreachable")

    def _spawn(self) -> None:
        env = dict(os.environ)
        for key, value in self._env.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = str(value)
        env.setdefault("PYTHONUNBUFFERED", "1")
        cmd = [sys.executable, "-m", "streamlit", "run", str(self.app_path),
               "--server.headless", "true", "--server.port", str(self.port), "--server.address", "127.0.0.1",
               "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none", *self.extra_args]
        self._log = tempfile.NamedTemporaryFile("w+b", prefix="streamlit-", suffix=".log", delete=False)
        self._process = subprocess.Popen(cmd, cwd=self.app_path.parent, env=env, stdin=subprocess.DEVNULL,
                                         stdout=self._log, stderr=subprocess.STDOUT)

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        health = f"http://127.0.0.1:{self.port}/_stcore/health"
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"streamlit exited with status {self._process.returncode}:\n{self.log()}")
            with contextlib.suppress(urllib.error.URLError, OSError):
                with urllib.request.urlopen(health, timeout=2) as response:
                    if response.status == 200:
                        return
            time.sleep(0.1)
        raise RuntimeError(f"streamlit did not answer {health} within {self.startup_timeout:g} s:\n{self.log()}")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s) and delete its log."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            with contextlib.suppress(OSError):
                os.unlink(self._log.name)
            self._log = None

    def __enter__(self) -> StreamlitServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def launch_browser(playwright, *, headless: bool = True, **options):
    """A Playwright Browser on the system Chromium with CHROMIUM_ARGS; RuntimeError when none is found."""
    executable = find_chromium()
    if executable is None:
        raise RuntimeError(f"Chromium not found: install it at {DEFAULT_CHROMIUM} or set ${CHROMIUM_ENV}")
    args = [*CHROMIUM_ARGS, *options.pop("args", ())]
    return playwright.chromium.launch(executable_path=executable, headless=headless, args=args, **options)


def wait_idle(page, timeout: float = IDLE_TIMEOUT_MS, settle_ms: float = SETTLE_MS) -> None:
    """Wait (ms) until the app is connected, no script or fragment run is under way, and the page is drawn.

    Call it after each action. It waits up to `settle_ms` for the run the action may start (returning as soon
    as one starts), then until the app reports notRunning, no element is still loading, and nothing on the page
    has changed for QUIET_MS. Runs are counted in the page, so a run that ended before this call is not waited
    for again, a fragment rerun counts like a full one, and the two runs of an st.rerun() count as one.
    Pass settle_ms=0 when no new run is expected (e.g. right after an `expect` saw the action's effect).

    A run that starts later than `settle_ms` after the action (a very busy server) is missed; where that
    matters, follow with an auto-retrying `expect(...)` on what the action changes, then wait_idle again.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.wait_for_selector("[data-testid=stApp]", state="attached", timeout=timeout)
    page.evaluate(_WATCH_JS)
    if settle_ms > 0:
        with contextlib.suppress(PlaywrightTimeout):  # nothing started within the settle time: the action started none
            page.wait_for_function(_STARTED_JS, arg=_BUSY, timeout=settle_ms)
    page.wait_for_function(_IDLE_JS, arg=[QUIET_MS, _BUSY], polling=50, timeout=timeout)
    page.evaluate("() => { window.__ecgvizIdle.seen = window.__ecgvizIdle.runs; }")
