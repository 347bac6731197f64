"""Browser rows: cold start and slider round trips in headless Chromium, the dashboard beside an empty app.

Both apps run at the same time and are measured in turns (start, start, move, move, ...), so load from
elsewhere on the machine falls on both alike. Times are taken inside the page (performance.now()):
a round trip runs from the keydown event to the first DOM change that shows the new value, a cold start
from launching `streamlit run` to the first chart (the dashboard) or the number (the empty app) in the page.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tests.browser_support import StreamlitServer, find_chromium, launch_browser, wait_idle

ROOT = Path(__file__).resolve().parent.parent
EMPTY_APP = Path(__file__).resolve().parent / "empty_app.py"
TIMEOUT_MS = 120_000  # a cold dashboard loads torch and scores 5,000 beats on a CPU shared with the browser
VIEWPORT = {"width": 1400, "height": 1000}

# What "drawn" and "updated" mean in each app, as JavaScript expressions read in the page.
# The dashboard's first chart is the error histogram; its threshold line is layout.shapes[0].
DASHBOARD_DRAWN = "[...document.querySelectorAll('.js-plotly-plot')].some(g => g._fullData && g._fullData.length)"
DASHBOARD_SIGNATURE = ("(() => { const g = document.querySelector('[data-testid=stPlotlyChart] .js-plotly-plot');"
                       " const s = g && g.layout && g.layout.shapes;"
                       " return s && s.length ? String(s[0].x0) : null; })()")
EMPTY_DRAWN = "!!document.querySelector('[data-testid=stMetricValue]')"
EMPTY_SIGNATURE = "(document.querySelector('[data-testid=stMetricValue]') || {}).textContent || null"

# Installed once per page: remembers the keydown time, then the first moment the signature differs.
_PROBE_JS = """(signature) => {
  const read = new Function("return " + signature);
  const r = window.__bench = {armed: false, old: null, t0: null, t1: null};
  const check = () => {
    if (!r.armed || r.t0 === null || r.t1 !== null) return;
    const now = read();  // null while a chart is being replaced: not yet the updated figure
    if (now !== null && now !== r.old) r.t1 = performance.now();
  };
  document.addEventListener("keydown", () => { if (r.armed && r.t0 === null) r.t0 = performance.now(); }, true);
  new MutationObserver(check).observe(document.body, {subtree: true, childList: true, attributes: true,
                                                      characterData: true});
  const frame = () => { check(); requestAnimationFrame(frame); };
  requestAnimationFrame(frame);
}"""
_ARM_JS = """(signature) => {
  const r = window.__bench;
  r.old = new Function("return " + signature)(); r.t0 = null; r.t1 = null; r.armed = true;
}"""


@dataclass
class _App:
    name: str
    path: Path
    drawn: str
    signature: str
    env: dict
    cold_s: list[float] = field(default_factory=list)
    round_trip_ms: list[float] = field(default_factory=list)
    server: StreamlitServer | None = None
    page: object = None


def chromium_available() -> bool:
    """True when the system Chromium the browser tests use is there."""
    return find_chromium() is not None


def _cold_start(app: _App, browser) -> None:
    """Launch the server, open the page, wait for the first drawing; keep both for the round trips."""
    if app.page is not None:
        app.page.close()
    if app.server is not None:
        app.server.stop()
    started = time.perf_counter()
    app.server = StreamlitServer(app.path, env=app.env, startup_timeout=TIMEOUT_MS / 1000).start()
    app.page = browser.new_page(viewport=VIEWPORT)
    app.page.goto(app.server.url, timeout=TIMEOUT_MS)
    app.page.wait_for_function(f"() => {app.drawn}", timeout=TIMEOUT_MS, polling="raf")
    app.cold_s.append(time.perf_counter() - started)


def _ready_for_moves(app: _App) -> None:
    wait_idle(app.page, timeout=TIMEOUT_MS)
    app.page.wait_for_function(f"() => ({app.signature}) !== null", timeout=TIMEOUT_MS)
    app.page.evaluate(_PROBE_JS, app.signature)
    app.page.locator("[data-testid=stSlider]").get_by_role("slider").first.focus()


def _move(app: _App, key: str, record: bool) -> None:
    """One key press on the focused slider; record the in-page time until the app shows the new value."""
    page = app.page
    page.evaluate(_ARM_JS, app.signature)
    page.keyboard.press(key)
    page.wait_for_function("() => window.__bench.t1 !== null", timeout=TIMEOUT_MS)
    ms = page.evaluate("() => { const r = window.__bench; r.armed = false; return r.t1 - r.t0; }")
    if record:
        app.round_trip_ms.append(float(ms))
    wait_idle(page, timeout=TIMEOUT_MS)  # the whole fragment run is over before the next press


def _summary(app: _App) -> dict:
    rt = app.round_trip_ms
    return {
        "app": app.name,
        "cold_start_s": statistics.median(app.cold_s) if app.cold_s else None,
        "cold_starts_s": app.cold_s,
        "round_trip_p50_ms": float(np.percentile(rt, 50)) if rt else None,
        "round_trip_p95_ms": float(np.percentile(rt, 95)) if rt else None,
        "round_trips_ms": rt,
    }


def measure(moves: int = 30, cold_starts: int = 3, warmup_moves: int = 2, threads: int | None = None) -> dict:
    """Cold starts and round trips of the dashboard and the empty app, measured in turns; `threads`: torch's."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="ecgviz-bench-") as tmp:
        # the shipped model whatever the caller's environment says, and nowhere to save over real checkpoints
        env = {"ECGVIZ_CHECKPOINT": None, "ECGVIZ_CHECKPOINT_DIR": tmp,
               "OMP_NUM_THREADS": None if threads is None else str(threads),
               "ECGVIZ_TORCH_THREADS": None if threads is None else str(threads)}
        apps = [_App("dashboard", ROOT / "app.py", DASHBOARD_DRAWN, DASHBOARD_SIGNATURE, env),
                _App("empty", EMPTY_APP, EMPTY_DRAWN, EMPTY_SIGNATURE, env)]
        with sync_playwright() as p:
            browser = launch_browser(p)
            try:
                for _ in range(max(cold_starts, 1)):
                    for app in apps:
                        _cold_start(app, browser)
                for app in apps:
                    _ready_for_moves(app)
                for i in range(warmup_moves + moves):
                    # right, then back left: the value stays near the model's threshold, where users look
                    key = "ArrowRight" if (i // 5) % 2 == 0 else "ArrowLeft"
                    for app in apps:
                        _move(app, key, record=i >= warmup_moves)
            finally:
                for app in apps:
                    if app.server is not None:
                        app.server.stop()
                browser.close()
    dashboard, empty = (_summary(app) for app in apps)
    return {"dashboard": dashboard, "empty": empty}
