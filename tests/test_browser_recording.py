"""A recording in headless Chromium: cut from the server folder, shown as a strip, a flagged beat in context."""

from __future__ import annotations

import pytest
from playwright.sync_api import Expect, sync_playwright

from ecgviz.checkpoint.store import save_checkpoint
from ecgviz.dashboard import config
from ecgviz.detectors.config import ModelConfig, TrainConfig
from ecgviz.io.recording import read_recording
from ecgviz.pipeline.protocol import fit
from ecgviz.signal.beats import cut_beats
from tests.browser_support import StreamlitServer, launch_browser
from tests.test_browser import ARTIFACTS, ROOT, cut_recording, goto, screenshot

pytestmark = pytest.mark.browser
MITDB = ROOT / "data" / "mitdb"
expect = Expect()
expect.set_options(timeout=60_000)


@pytest.fixture(scope="module")
def server(chromium, tmp_path_factory):
    """The app starting with a small model trained on record 100's normal beats."""
    folder = tmp_path_factory.mktemp("rec")
    beats = cut_beats(read_recording(MITDB / "100.hea"))
    ckpt = fit(beats.data, ["N"], ModelConfig(embedding_dim=16),
               TrainConfig(epochs=10, batch_size=32, patience=100, device="cpu"), name="mitdb-100-normals")
    env = {config.CHECKPOINT_ENV: str(save_checkpoint(ckpt, folder / "mitdb100.pt")),
           config.CHECKPOINT_DIR_ENV: str(folder), "OMP_NUM_THREADS": "1"}
    with StreamlitServer(ROOT / "app.py", env=env) as srv:
        yield srv


def test_recording_strip_and_beat_in_context(server):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = launch_browser(p)
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        cut_recording(page, server.url, "mitdb/100.hea", 60_000)
        expect(page.locator("h3").filter(has_text="The recording")).to_be_visible()
        expect(page.get_by_text("Not cut: 2 of 2,273 beats")).to_be_visible()
        expect(page.locator("[data-testid=stMetricValue]").first).to_have_text("2,271")
        page.locator("h3").filter(has_text="The recording").scroll_into_view_if_needed()
        screenshot(page, "recording_strip")

        goto(page, "Threshold explorer")
        # the beat viewer opens on the most anomalous beat of the first abnormal class
        expect(page.locator(".gtitle").filter(has_text="in context")).to_have_count(1)
        assert page.locator("[data-testid=stAlertContentError]").count() == 0
        screenshot(page, "recording_context")
        browser.close()
