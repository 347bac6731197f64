"""Browser rows: cold start and slider round trips in headless Chromium, the dashboard beside an empty app.

Both apps run at the same time and are measured in turns (start, start, move, move, ...), so load from
elsewhere on the machine falls on both alike. Times are taken inside the page (performance.now()):
a round trip runs from the keydown event to the first frame after the DOM shows the new value, a cold start
from launching `streamlit run` to the first chart (the dashboard) or the number (the empty app) in the page.

The dashboard's disk cache (ecgviz.dashboard.disk_cache) starts empty in a folder of the run's own: its first start
is a fresh install's, timed and reported apart ("first start"); the later ones are a restarted server's, which
finds the card, scores and parsed beats the first start kept (the "cold start" rows).
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
# The dashboard's figure is the threshold chart (histogram + recall curves), drawn in the browser: its threshold
# line moves on the key press. The server's part (metric cards, ROC/PR, beat viewer) follows once the slider
# rests (chart.js's DEBOUNCE_MS); it is timed too, as a second signature. The empty app has one number for both.
DASHBOARD_DRAWN = "!!document.querySelector('.ecgviz-tc-bars rect')"
DASHBOARD_SIGNATURE = ("(document.querySelector('line.ecgviz-tc-threshold') || {getAttribute: () => null})"
                       ".getAttribute('x1')")
# the fragment's last element: the sidebar's threshold line, rewritten after the cards and charts of the step
DASHBOARD_CARDS = ("[...document.querySelectorAll('[data-testid=stSidebar] [data-testid=stCaptionContainer]')]"
                   ".map((e) => e.textContent).join('|') || null")
DASHBOARD_SLIDER = "input.ecgviz-tc-range"
EMPTY_DRAWN = "!!document.querySelector('[data-testid=stMetricValue]')"
EMPTY_SIGNATURE = "(document.querySelector('[data-testid=stMetricValue]') || {}).textContent || null"
EMPTY_SLIDER = "[data-testid=stSlider] >> role=slider"

# Installed once per page: remembers the keydown time, then the first moment each signature differs.
_PROBE_JS = """(signatures) => {
  const reads = signatures.map((s) => new Function("return " + s));
  const r = window.__bench = {armed: false, old: [], t0: null, t1: [], seen: []};
  const check = () => {
    if (!r.armed || r.t0 === null) return;
    reads.forEach((read, k) => {
      if (r.t1[k] !== null) return;
      const now = read();  // null while an element is being replaced: not yet updated
      if (now === null || now === r.old[k] || r.seen[k]) return;
      // updated on screen: the frame after the change, when the browser paints it
      r.seen[k] = true;
      requestAnimationFrame(() => { r.t1[k] = performance.now(); });
    });
  };
  document.addEventListener("keydown", () => { if (r.armed && r.t0 === null) r.t0 = performance.now(); }, true);
  new MutationObserver(check).observe(document.body, {subtree: true, childList: true, attributes: true,
                                                      characterData: true});
  const frame = () => { check(); requestAnimationFrame(frame); };
  requestAnimationFrame(frame);
}"""
_ARM_JS = """(signatures) => {
  const r = window.__bench;
  r.old = signatures.map((s) => new Function("return " + s)()); r.t0 = null;
  r.t1 = signatures.map(() => null); r.seen = signatures.map(() => false); r.armed = true;
}"""


@dataclass
class _App:
    name: str
    path: Path
    drawn: str
    signature: str  # the figure
    cards: str  # the numbers the server computes
    slider: str  # CSS selector of the element that takes the key presses
    env: dict
    cold_s: list[float] = field(default_factory=list)
    first_s: float | None = None  # the first start, with the disk cache empty
    round_trip_ms: list[float] = field(default_factory=list)
    cards_ms: list[float] = field(default_factory=list)
    server: StreamlitServer | None = None
    page: object = None


def chromium_available() -> bool:
    """True when the system Chromium the browser tests use is there."""
    return find_chromium() is not None


def _cold_start(app: _App, browser, others: list[_App]) -> None:
    """Launch the server, open the page, wait for the first drawing; keep both for the round trips.

    The other apps' pages are idle first: the dashboard goes on working after its first chart (intervals,
    baselines), and measured meanwhile the empty app's cold start took twice as long (3.4 s alone, 7.3 s after
    the dashboard's, on a busy two-core machine).
    """
    for other in others:
        if other.page is not None:
            wait_idle(other.page, timeout=TIMEOUT_MS)
    if app.page is not None:
        app.page.close()
    if app.server is not None:
        app.server.stop()
    started = time.perf_counter()
    app.server = StreamlitServer(app.path, env=app.env, startup_timeout=TIMEOUT_MS / 1000).start()
    app.page = browser.new_page(viewport=VIEWPORT)
    app.page.goto(app.server.url, timeout=TIMEOUT_MS)
    app.page.wait_for_function(f"() => {app.drawn}", timeout=TIMEOUT_MS, polling="raf")
    took = time.perf_counter() - started
    if app.first_s is None:
        app.first_s = took
    else:
        app.cold_s.append(took)


def _ready_for_moves(app: _App) -> None:
    wait_idle(app.page, timeout=TIMEOUT_MS)
    app.page.wait_for_function(f"() => ({app.signature}) !== null", timeout=TIMEOUT_MS)
    app.page.evaluate(_PROBE_JS, [app.signature, app.cards])
    app.page.locator(app.slider).first.focus()


def _move(app: _App, key: str, record: bool) -> None:
    """One key press on the focused slider; record the in-page time until the app shows the new value."""
    page = app.page
    page.evaluate(_ARM_JS, [app.signature, app.cards])
    page.keyboard.press(key)
    page.wait_for_function("() => window.__bench.t1.every((t) => t !== null)", timeout=TIMEOUT_MS)
    figure, cards = page.evaluate(
        "() => { const r = window.__bench; r.armed = false; return r.t1.map((t) => t - r.t0); }")
    if record:
        app.round_trip_ms.append(float(figure))
        app.cards_ms.append(float(cards))
    wait_idle(page, timeout=TIMEOUT_MS)  # the whole fragment run is over before the next press


def _summary(app: _App) -> dict:
    rt, cards = app.round_trip_ms, app.cards_ms
    return {
        "app": app.name,
        "first_start_s": app.first_s,
        "cold_start_s": statistics.median(app.cold_s) if app.cold_s else None,
        "cold_starts_s": app.cold_s,
        "round_trip_p50_ms": float(np.percentile(rt, 50)) if rt else None,
        "round_trip_p95_ms": float(np.percentile(rt, 95)) if rt else None,
        "round_trips_ms": rt,
        "cards_p50_ms": float(np.percentile(cards, 50)) if cards else None,
        "cards_p95_ms": float(np.percentile(cards, 95)) if cards else None,
        "cards_ms": cards,
    }


def measure(moves: int = 30, cold_starts: int = 3, warmup_moves: int = 2, threads: int | None = None) -> dict:
    """A first start, then `cold_starts` restarts, and round trips of the dashboard and the empty app, measured in
    turns; `threads`: torch's."""
    import compileall

    from playwright.sync_api import sync_playwright

    # the bytecode a first import writes (and `pip install` writes at once): a machine that sets
    # PYTHONDONTWRITEBYTECODE, like the one this project is built on, would otherwise compile ecgviz on every start
    for folder in ("ecgviz", "pages"):
        compileall.compile_dir(ROOT / folder, quiet=1)
    with tempfile.TemporaryDirectory(prefix="ecgviz-bench-") as tmp:
        # the shipped model whatever the caller's environment says, and nowhere to save over real checkpoints
        env = {"ECGVIZ_CHECKPOINT": None, "ECGVIZ_CHECKPOINT_DIR": tmp,
               "OMP_NUM_THREADS": None if threads is None else str(threads),
               "ECGVIZ_TORCH_THREADS": None if threads is None else str(threads),
               "ECGVIZ_CACHE_DIR": str(Path(tmp) / "cache"),
               # its own workspaces: the machine's shared folder holds whatever other runs and tests left there
               "ECGVIZ_WORKSPACE_DIR": str(Path(tmp) / "workspaces")}
        apps = [_App("dashboard", ROOT / "app.py", DASHBOARD_DRAWN, DASHBOARD_SIGNATURE, DASHBOARD_CARDS,
                     DASHBOARD_SLIDER, env),
                _App("empty", EMPTY_APP, EMPTY_DRAWN, EMPTY_SIGNATURE, EMPTY_SIGNATURE, EMPTY_SLIDER, env)]
        with sync_playwright() as p:
            browser = launch_browser(p)
            try:
                for _ in range(1 + max(cold_starts, 1)):
                    for app in apps:
                        _cold_start(app, browser, [a for a in apps if a is not app])
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
