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
# The explorer's metric texts (headline figures, per class, the shown beat's error and its distance to the threshold).
# The keydown time is taken in the page; the end is the first frame or mutation where those texts differ, with
# every metric still there (a run never blanks them, but a half-drawn page must not count). Install PROBE_JS once
# per page; run ARM_JS before each key press, then wait for window.__rt.t1 and read t1 - t0.
PROBE_JS = """() => {
  const read = () => Array.from(document.querySelectorAll("[data-testid=stMain] [data-testid=stMetric]"),
                                e => e.textContent);
  const r = window.__rt = {armed: false, old: null, t0: null, t1: null, read: read};
  const check = () => {
    if (!r.armed || r.t0 === null || r.t1 !== null) return;
    const now = read();
    if (now.length === r.old.length && now.join("|") !== r.old.join("|")) r.t1 = performance.now();
  };
  document.addEventListener("keydown", () => { if (r.armed && r.t0 === null) r.t0 = performance.now(); }, true);
  new MutationObserver(check).observe(document.body, {subtree: true, childList: true, attributes: true,
                                                      characterData: true});
  const frame = () => { check(); requestAnimationFrame(frame); };
  requestAnimationFrame(frame);
}"""
ARM_JS = "() => { const r = window.__rt; r.old = r.read(); r.t0 = null; r.t1 = null; r.armed = true; }"


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

    await page.locator("[data-testid=stSidebarNav]").get_by_role("link", name=title, exact=True).click()
    await expect(page.locator("h1")).to_have_text(title, timeout=TIMEOUT_MS)
    await idle(page)
