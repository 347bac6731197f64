"""Work survives a reload and a second tab, in headless Chromium: the workspace named in the URL brings it back."""

from __future__ import annotations

import re

import pytest

from tests.browser_support import wait_idle
from tests.helpers import synthetic_beats, write_arff
from tests.test_browser import TIMEOUT_MS, assert_no_error, expect, goto, metric, threshold_input

pytestmark = pytest.mark.browser

N_BEATS = 80


@pytest.fixture(scope="module")
def beats_file(tmp_path_factory):
    X, labels = synthetic_beats(n_normal=N_BEATS - 20, n_anomaly=20, length=140)
    return write_arff(tmp_path_factory.mktemp("up") / "reload_beats.arff", X, labels)


def new_page(browser, url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    pg = context.new_page()
    pg.goto(url)
    wait_idle(pg)
    return pg


def workspace_id(pg) -> str:
    found = re.search(r"[?&]ws=([A-Za-z0-9_-]+)", pg.url)
    assert found, pg.url
    return found.group(1)


def upload(pg, path) -> None:
    goto(pg, "Data")
    pg.locator("[data-testid=stFileUploader] input[type=file]").first.set_input_files(str(path))
    wait_idle(pg)
    expect(metric(pg, "Beats")).to_have_text(str(N_BEATS))


def test_uploaded_data_and_threshold_survive_a_reload_and_a_second_tab(browser, shipped_server, beats_file):
    pg = new_page(browser, shipped_server.url)
    wid = workspace_id(pg)
    upload(pg, beats_file)
    goto(pg, "Threshold explorer")
    box = threshold_input(pg)
    box.fill("55.5")
    box.press("Enter")
    wait_idle(pg)
    expect(box).to_have_value("55.5000")
    pg.reload()
    wait_idle(pg)
    assert workspace_id(pg) == wid
    expect(threshold_input(pg)).to_have_value("55.5000")
    sidebar = pg.locator("[data-testid=stSidebarUserContent]")
    expect(sidebar).to_contain_text("reload_beats.arff")
    goto(pg, "Data")
    expect(metric(pg, "Beats")).to_have_text(str(N_BEATS))
    assert_no_error(pg)

    # another browser (its own cookies and session) with the same link finds the same work
    other = new_page(browser, f"{shipped_server.url}?ws={wid}")
    expect(other.locator("[data-testid=stSidebarUserContent]")).to_contain_text("reload_beats.arff")
    expect(threshold_input(other)).to_have_value("55.5000")
    # ... and one without the link (or with a made-up id) starts its own, on the built-in data
    for url in (shipped_server.url, f"{shipped_server.url}?ws=made-up-id-000000000000"):
        stranger = new_page(browser, url)
        expect(stranger.locator("[data-testid=stSidebarUserContent]")).to_contain_text("ECG5000")
        assert workspace_id(stranger) not in (wid, "made-up-id-000000000000")
        stranger.context.close()
    other.context.close()
    pg.context.close()


def test_a_reload_mid_training_reattaches_to_the_progress_view(browser, shipped_server, beats_file):
    pg = new_page(browser, shipped_server.url)
    upload(pg, beats_file)
    goto(pg, "Model")
    pg.get_by_role("tab", name=re.compile("Train a model")).click()
    wait_idle(pg)
    pg.get_by_label("Save as", exact=True).fill("reloaded")
    pg.get_by_label("Embedding size", exact=True).fill("4")
    pg.get_by_label("Epochs (at most)", exact=True).fill("3000")
    # one beat per step and a long patience: the job must outlive the reload below on any machine (with the
    # defaults, a fast one ended it by patience after 1,443 epochs in 32 s)
    pg.get_by_label("Batch size", exact=True).fill("1")
    pg.get_by_label("Patience (epochs)", exact=True).fill("1000")
    pg.get_by_role("button", name=re.compile("Start training")).click()
    progress = pg.locator("[data-testid=stProgress]")
    expect(progress).to_contain_text(re.compile(r"Epoch [1-9]"))

    pg.reload()
    wait_idle(pg)
    expect(pg.locator("h1")).to_have_text("Model")
    # the job re-attached: its live progress is in view (the training tab opens by itself) and still moves
    progress = pg.locator("[data-testid=stProgress]")
    expect(progress).to_contain_text(re.compile(r"Epoch \d+ of at most 3000"))
    first = int(re.search(r"Epoch (\d+)", progress.inner_text()).group(1))
    expect(progress).not_to_contain_text(f"Epoch {first} ")
    expect(pg.get_by_role("tab", name=re.compile("Train a model"))).to_have_attribute("aria-selected", "true")

    # the tab and the form values stay put across page changes
    goto(pg, "Data")
    goto(pg, "Model")
    expect(pg.get_by_label("Epochs (at most)", exact=True)).to_have_value("3000")
    expect(pg.locator("[data-testid=stProgress]")).to_be_visible()

    pg.get_by_role("button", name=re.compile("Stop and keep the best")).click()
    expect(pg.get_by_text(re.compile("stopped early by you, best model kept"))).to_be_visible()
    expect(pg.locator("[data-testid=stSidebarUserContent]")).to_contain_text("reloaded")
    pg.reload()
    wait_idle(pg)
    expect(pg.locator("[data-testid=stSidebarUserContent]")).to_contain_text("reloaded")
    expect(pg.get_by_text(re.compile("Stopped early by the user"))).to_be_visible()
    assert_no_error(pg)
    pg.context.close()
