"""'Analyze this recording' in headless Chromium: MIT-BIH record 100 cut with the shipped ECG5000 model (which the
explorer cautions about), analysed on the Data page, reviewed flag by flag on the strip, then the explorer on it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Expect, sync_playwright

from tests.browser_support import launch_browser, wait_idle
from tests.test_browser import ARTIFACTS, cut_recording, goto, metric, screenshot

pytestmark = pytest.mark.browser
expect = Expect()
expect.set_options(timeout=120_000)  # the shipped model scores record 100 on a CPU shared with the browser
TIMEOUT_MS = 240_000


def _idle(page) -> None:
    wait_idle(page, timeout=TIMEOUT_MS)


def _shot(page, selector: str, name: str) -> None:
    """One part of the page to tests/artifacts, drawn in a window tall enough that nothing scrolls over it."""
    size = page.viewport_size
    height = page.evaluate("() => document.querySelector('[data-testid=stMain]').scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": min(max(height, size["height"]), 8000)})
    try:
        _idle(page)
        page.locator(selector).first.screenshot(path=str(ARTIFACTS / f"{name}.png"), animations="disabled")
    finally:
        page.set_viewport_size(size)


def test_analyze_a_recording_and_review_its_flags(shipped_server):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = launch_browser(p)
        page = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True).new_page()
        cut_recording(page, shipped_server.url, "mitdb/100.hea", TIMEOUT_MS)
        expect(metric(page, "Beats")).to_have_text("2,271")

        # the shipped ECG5000 model flags every beat of record 100: the explorer says so and offers the analysis
        goto(page, "Threshold explorer")
        caution = page.locator("[data-testid=stAlertContentWarning]").filter(has_text="fitted on other data")
        expect(caution).to_contain_text("The shipped ECG5000 model was fitted on other data: here it flags 2,271 of "
                                        "2,271 beats")
        screenshot(page, "explorer_guard")

        goto(page, "Data")
        page.get_by_role("button", name="Analyze this recording").click()
        _idle(page)
        expect(page.get_by_text(re.compile(r"Analysed 100 \(lead MLII\) without labels"))).to_be_visible()
        expect(metric(page, "Flagged")).to_have_text("44")
        expect(metric(page, "By shape / timing / both")).to_have_text("10 / 32 / 2")
        expect(page.get_by_text(re.compile(r"Balanced accuracy 0\.99"))).to_be_visible()
        assert page.locator("[data-testid=stAlertContentError]").count() == 0
        screenshot(page, "data_analysis")
        _shot(page, ".st-key-analysis_summary", "analysis_summary")

        # the reviewer: the next flag is centred and shaded on the strip, a row of the table does the same
        page.get_by_role("button", name="Next flag").click()
        _idle(page)
        expect(page.get_by_text(re.compile(r"^Beat 7 at 0:\u2060?05\.7 .*flagged for timing"))).to_be_visible()
        table = page.locator(".st-key-recording_review [data-testid=stDataFrame]").first
        table.scroll_into_view_if_needed()
        box = table.bounding_box()
        # the third flagged beat (beat 258, 3:28.3): its row's selection box, left of the first column
        page.mouse.click(box["x"] + 18, box["y"] + 35 * 3 + 17)
        _idle(page)
        expect(page.get_by_text(re.compile(r"^Beat 258 at 3:\u2060?28\.3 "))).to_be_visible()
        expect(page.locator(".gtitle").filter(has_text="100, lead MLII: 193-223 s")).to_have_count(1)
        _shot(page, ".st-key-recording_review", "recording_review")

        goto(page, "Threshold explorer")
        expect(metric(page, "Anomalies caught")).to_have_text("34 / 34")
        assert page.locator("[data-testid=stAlertContentWarning]").filter(has_text="fitted on other data").count() == 0
        browser.close()
