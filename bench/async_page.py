"""Async Playwright helpers for the dashboard: wait for idle, find a metric, open a page, time a slider move."""

from __future__ import annotations

import re

TIMEOUT_MS = 120_000  # page loads and uploads on a 2-core machine shared with N renderers

# Idle: the app is connected, no run is under way, nothing is loading, and the page has not changed for `quiet` ms.
_IDLE_JS = """(quiet) => {
  const app = document.querySelector("[data-testid=stApp]");
  if (!app) return false;
  let w = window.__concIdle;
  if (!w || w.app !== app) {
    w = window.__concIdle = {app: app, changed: performance.now()};
    new MutationObserver(() => { w.changed = performance.now(); })
      .observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true});
  }
  if (document.querySelector("[data-testid=stSkeleton], [data-testid=stAppSkeleton], "
                             + "[data-testid=stFileChipIconSpinner]")) w.changed = performance.now();
  return app.getAttribute("data-test-script-state") === "notRunning"
      && app.getAttribute("data-test-connection-state") === "CONNECTED"
      && performance.now() - w.changed >= quiet;
}"""
_RUNNING_JS = """() => (document.querySelector("[data-testid=stApp]") || {getAttribute: () => null})
    .getAttribute("data-test-script-state") === "running" """
# Two ends per key press, both timed from the keydown taken in the page. The figure: the threshold chart's line
# and counts, redrawn in the browser; its time is the frame after the change, when it is painted. The cards: the
# explorer's metric texts (headline figures, per class, the shown beat's error), which come from the server once
# the slider rests; the first change with every metric still there counts (a half-drawn page must not).
# Install PROBE_JS once per page; run ARM_JS before each key press, then wait for window.__rt.done.
PROBE_JS = """() => {
  const figure = () => {
    const line = document.querySelector("line.ecgviz-tc-threshold");
    const text = document.querySelector(".ecgviz-tc-readout");
    return (line ? line.getAttribute("x1") : "") + "|" + (text ? text.textContent : "");
  };
  const cards = () => Array.from(document.querySelectorAll("[data-testid=stMain] [data-testid=stMetric]"),
                                 e => e.textContent);
  const r = window.__rt = {armed: false, t0: null, figure: figure, cards: cards, done: false};
  const check = () => {
    if (!r.armed || r.t0 === null) return;
    if (!r.figSeen && figure() !== r.oldFigure) {
      r.figSeen = true;
      requestAnimationFrame(() => { r.tFigure = performance.now(); r.done = r.tCards !== null; });
    }
    const now = cards();
    if (r.tCards === null && now.length === r.oldCards.length && now.join("|") !== r.oldCards.join("|")) {
      r.tCards = performance.now();
      r.done = r.tFigure !== null;
    }
  };
  document.addEventListener("keydown", () => { if (r.armed && r.t0 === null) r.t0 = performance.now(); }, true);
  new MutationObserver(check).observe(document.body, {subtree: true, childList: true, attributes: true,
                                                      characterData: true});
  const frame = () => { check(); requestAnimationFrame(frame); };
  requestAnimationFrame(frame);
}"""
ARM_JS = """() => {
  const r = window.__rt;
  Object.assign(r, {oldFigure: r.figure(), oldCards: r.cards(), t0: null, tFigure: null, tCards: null,
                    figSeen: false, done: false, armed: true});
}"""


async def idle(page, settle_ms: int = 500, quiet_ms: int = 200) -> None:
    """Wait for the run an action may have started (up to settle_ms), then until the app is idle."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    if settle_ms:
        try:
            await page.wait_for_function(_RUNNING_JS, timeout=settle_ms, polling=20)
        except PlaywrightTimeout:
            pass  # nothing started: the action needed no run, or it already ended
    await page.wait_for_function(_IDLE_JS, arg=quiet_ms, polling=50, timeout=TIMEOUT_MS)


def metric(page, label: str):
    """The value element of the metric with exactly this label."""
    box = page.locator("[data-testid=stMetric]").filter(
        has=page.locator("[data-testid=stMetricLabel]", has_text=re.compile(f"^{re.escape(label)}$")))
    return box.locator("[data-testid=stMetricValue]")


async def goto(page, title: str) -> None:
    """Open a page through the sidebar navigation and wait until it has run."""
    from playwright.async_api import expect

    await page.locator(".st-key-menu").get_by_role("link", name=title, exact=True).click()
    await expect(page.locator("h1")).to_have_text(title, timeout=TIMEOUT_MS)
    await idle(page)
