"""One story on every page, in headless Chromium: the numbers each page shows, read off the screen and the
downloads, checked against each other and against ecgviz computed here. Also: the flagged-beats table opens a beat,
a first visit shows only the real menu, a tab catches up when it is looked at again, training shows an estimate.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from ecgviz.dashboard import config
from tests.browser_support import StreamlitServer, wait_idle
from tests.helpers import synthetic_beats, write_arff
from tests.test_browser import (  # noqa: F401 (fixtures)
    MENU,
    NAVIGATION,
    TIMEOUT_MS,
    assert_no_error,
    download_csv,
    expect,
    goto,
    metric,
    readout,
    reference,
    screenshot,
    threshold_input,
)

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
HEADLINE = re.compile(r"([\d,]+) of (?:its )?([\d,]+) held-out beats")
# any count of flagged beats a page states, in the order the page shows them
ANY_COUNT = re.compile(r"([\d,]+) of (?:its |the )?([\d,]+)\b[^\n]*?flag")


def number(text: str) -> int:
    return int(text.replace(",", ""))


@pytest.fixture(scope="module")
def server(chromium, reference, tmp_path_factory):  # noqa: F811
    env = {config.CHECKPOINT_ENV: None, config.CHECKPOINT_DIR_ENV: str(tmp_path_factory.mktemp("checkpoints")),
           "OMP_NUM_THREADS": "1"}
    with StreamlitServer(ROOT / "app.py", env=env) as srv:
        yield srv


def open_page(browser, url: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    pg = context.new_page()
    pg.goto(url)
    wait_idle(pg)
    return pg


@pytest.fixture
def page(browser, server):
    pg = open_page(browser, server.url)
    yield pg
    pg.context.close()


def main_text(page) -> str:
    return page.locator("[data-testid=stMain]").inner_text()


def first_count(page) -> tuple[int, int]:
    """The first count of flagged beats the page states: it must be the held-out one."""
    found = ANY_COUNT.search(main_text(page))
    assert found, main_text(page)[:2000]
    return number(found.group(1)), number(found.group(2))


def held_out_headline(page) -> tuple[int, int]:
    found = HEADLINE.search(main_text(page))
    assert found, main_text(page)[:2000]
    return number(found.group(1)), number(found.group(2))


def expected_held_out(ref, threshold: float) -> tuple[int, int]:
    errors, idx, *_ = ref
    return int((errors[idx] > threshold).sum()), len(idx)


def fraction(text: str) -> tuple[int, int]:
    a, b = text.split(" / ")
    return number(a), number(b.split()[0])


def explorer_numbers(page) -> dict:
    """Every count the explorer shows of the held-out beats, read off the page."""
    tn, n_normal = fraction(metric(page, "Normal beats passed").inner_text())
    tp, n_anomaly = fraction(metric(page, "Anomalies caught").inner_text())
    chart = re.search(r"normal beats passed ([\d,]+) / ([\d,]+).*anomalies caught ([\d,]+) / ([\d,]+)", readout(page))
    table = re.search(r"([\d,]+) of the ([\d,]+) held-out flagged beats|([\d,]+) held-out flagged beats",
                      main_text(page))
    return {"headline": held_out_headline(page), "first": first_count(page),
            "cards": (n_normal - tn + tp, n_normal + n_anomaly),
            "chart": (number(chart.group(2)) - number(chart.group(1)) + number(chart.group(3)),
                      number(chart.group(2)) + number(chart.group(4))),
            "table": number(table.group(2) or table.group(3)),
            "sidebar": page.locator("[data-testid=stSidebarUserContent]").inner_text()}


def move_threshold(page, key: str) -> float:
    thumb = page.locator("input.ecgviz-tc-range")
    thumb.focus()
    before = threshold_input(page).input_value()
    page.keyboard.press(key)
    wait_idle(page)
    expect(threshold_input(page)).not_to_have_value(before)
    wait_idle(page, settle_ms=0)
    return float(thumb.input_value())


def download_json(page, button_text: str) -> dict:
    with page.expect_download() as info:
        page.locator("[data-testid=stDownloadButton] button").filter(has_text=button_text).click()
    return json.loads(Path(info.value.path()).read_text())


def check_every_page(page, ref, threshold: float, *, shots: bool = False) -> None:
    """Explorer, Export and Compare state the same held-out count first, and the downloads hold it."""
    expected = expected_held_out(ref, threshold)
    seen = explorer_numbers(page)
    assert seen["headline"] == seen["first"] == seen["cards"] == seen["chart"] == expected, seen
    assert seen["table"] == expected[0]
    assert f"{threshold:.4g}" in seen["sidebar"]
    if shots:
        screenshot(page, "pages_explorer")

    goto(page, "Export")
    assert held_out_headline(page) == first_count(page) == expected
    page.locator("[data-testid=stRadio]").get_by_text(re.compile("^Flagged held-out beats")).click()
    wait_idle(page)
    _, held = download_csv(page, "ecgviz_flagged_heldout_")
    assert len(held) == expected[0] and set(held["split_role"]) == {"held-out"}
    assert set(held["outcome"]) <= {"TP", "FP"}
    every_label = "Every flagged beat (training and validation beats too)"
    page.locator("[data-testid=stRadio]").get_by_text(every_label, exact=True).click()
    wait_idle(page)
    _, every = download_csv(page, "ecgviz_flagged_t")
    errors = ref[0]
    assert len(every) == int((errors > threshold).sum()) > expected[0]
    assert re.search(f"{len(every):,} of {len(errors):,} are flagged", main_text(page))  # labelled as every beat
    assert (every["split_role"] == "held-out").sum() == expected[0]
    doc = download_json(page, "metrics and threshold")
    assert doc["n_flagged_held_out"] == doc["metrics"]["n_flagged"] == expected[0]
    assert doc["n_flagged_all_beats"] == len(every) and doc["n_held_out"] == expected[1]
    assert_no_error(page)
    if shots:
        screenshot(page, "pages_export")

    goto(page, "Compare detectors")
    expect(page.get_by_text(re.compile("has the highest AUROC|No clear winner"))).to_be_visible()
    assert held_out_headline(page) == first_count(page) == expected
    assert_no_error(page)
    if shots:
        screenshot(page, "pages_compare")
    goto(page, "Threshold explorer")


def test_every_page_states_the_explorers_held_out_count_first(page, reference):  # noqa: F811
    ref = reference.result()
    ckpt = ref[-1]
    expect(page.locator("h1")).to_have_text("Threshold explorer")
    check_every_page(page, ref, ckpt.threshold, shots=True)
    assert explorer_numbers(page)["headline"] == (2059, 2300)  # the bundled data with the shipped model

    # the Model page: the same count, at the model's own stored threshold
    goto(page, "Model")
    assert held_out_headline(page) == first_count(page) == expected_held_out(ref, ckpt.threshold)
    screenshot(page, "pages_model")
    goto(page, "Data")
    assert_no_error(page)
    screenshot(page, "pages_data")

    # a threshold of the user's: every page follows it
    goto(page, "Threshold explorer")
    lower = move_threshold(page, "PageDown")
    check_every_page(page, ref, lower)


def test_choosing_a_row_of_the_flagged_beats_opens_that_beat(page, reference):  # noqa: F811
    errors, idx, *_, ckpt = reference.result()
    held = idx[errors[idx] > ckpt.threshold]
    largest = int(held[np.argmax(errors[held])])  # the table's first row: the largest margin
    grid = page.locator("[data-testid=stDataFrame]").filter(has=page.locator("canvas")).first
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    # the row's selection box, at the left of its first data row (the grid is drawn on a canvas)
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)
    wait_idle(page)
    beat = page.get_by_label("Beat number (1 = first beat of the data)")
    expect(beat).to_have_value(str(largest + 1))
    wait_idle(page, settle_ms=0)
    expect(page.get_by_role("combobox", name="Which beat")).to_have_value("by row")
    expect(page.locator("[data-testid=stCaptionContainer]").filter(has_text=f"beat {largest + 1:,}: ")).to_be_visible()
    assert_no_error(page)


@pytest.mark.parametrize("path", ["", "data"])
def test_a_first_visit_shows_only_the_real_menu(chromium, browser, tmp_path, path):
    # a fresh server: the first run takes Streamlit's older pages/ mode, whose menu listed every file ("app",
    # "compare", ...) until app.py's navigation replaced it
    env = {config.CHECKPOINT_DIR_ENV: str(tmp_path), "OMP_NUM_THREADS": "1"}
    # every menu the page ever shows: the links of Streamlit's own (hidden by the config) and of the app's
    record = """() => {
      window.__menus = [];
      new MutationObserver(() => {
        for (const where of ["[data-testid=stSidebarNav]", "MENU"]) {
          const links = [...document.querySelectorAll(where + " a")].filter((a) => a.checkVisibility())
            .map((a) => a.innerText.split("\\n").pop().trim());
          const key = links.join("|");
          if (links.length && !window.__menus.includes(key)) window.__menus.push(key);
        }
      }).observe(document, {subtree: true, childList: true, characterData: true, attributes: true});
    }""".replace("MENU", MENU)
    with StreamlitServer(ROOT / "app.py", env=env) as srv:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(TIMEOUT_MS)
        context.add_init_script(f"({record})()")
        try:
            pg = context.new_page()
            pg.goto(srv.url + path)
            wait_idle(pg)
            expect(pg.locator("h1")).to_have_text("Threshold explorer" if not path else "Data")
            assert pg.evaluate("() => window.__menus") == ["|".join(NAVIGATION)]
        finally:
            context.close()


def test_a_tab_catches_up_when_it_is_looked_at_again(page, reference):  # noqa: F811
    other = page.context.new_page()
    other.goto(page.url)  # the same workspace
    wait_idle(other)
    sidebar = other.locator("[data-testid=stSidebarUserContent]")
    expect(sidebar).to_contain_text(f"{reference.result()[-1].threshold:.4g}")
    box = threshold_input(page)
    box.fill("25.1234")
    box.press("Enter")
    wait_idle(page)
    expect(page.locator("[data-testid=stSidebarUserContent]")).to_contain_text("25.12")
    expect(sidebar).not_to_contain_text("25.12")  # the other tab has not run since
    # the user goes back to the other tab: its window loses the focus for a moment and gets it back
    other.evaluate("() => window.dispatchEvent(new Event('blur'))")
    other.wait_for_timeout(700)
    other.evaluate("() => window.dispatchEvent(new Event('focus'))")
    wait_idle(other)
    expect(sidebar).to_contain_text("25.12")
    expect(threshold_input(other)).to_have_value("25.1234")
    other.close()


def test_training_shows_an_estimate_of_its_end_and_ends_the_bar_with_the_run(page, tmp_path):
    X, labels = synthetic_beats(n_normal=60, n_anomaly=20, length=140, seed=4)
    goto(page, "Data")
    uploader = page.locator("[data-testid=stFileUploader]").first.locator("input[type=file]")
    uploader.set_input_files(str(write_arff(tmp_path / "train_me.arff", X, labels)))
    wait_idle(page)
    expect(metric(page, "Beats")).to_have_text("80")
    goto(page, "Model")
    page.get_by_role("tab", name=re.compile("Train a model")).click()
    wait_idle(page)
    page.get_by_label("Save as", exact=True).fill("demo")
    page.get_by_label("Embedding size", exact=True).fill("4")
    page.get_by_label("Epochs (at most)", exact=True).fill("400")
    page.get_by_label("Batch size", exact=True).fill("4")
    page.get_by_label("Patience (epochs)", exact=True).fill("25")
    page.get_by_role("button", name=re.compile("Start training")).click()
    progress = page.locator("[data-testid=stProgress]")
    expect(progress).to_contain_text(re.compile(r"about .* left \(estimate: stops near epoch \d+"))
    text = progress.inner_text()
    estimated = int(re.search(r"stops near epoch (\d+)", text).group(1))
    value = float(progress.get_by_role("progressbar").get_attribute("aria-valuenow"))
    assert 0 < value < 100 and estimated < 400, text  # scaled to the estimate, not to the cap
    screenshot(page, "pages_model_training")
    expect(page.get_by_text(re.compile(r"Training finished after \d+ epochs"))).to_be_visible()
    epochs = int(re.search(r"after (\d+) epochs", page.get_by_text(re.compile("Training finished")).inner_text())
                 .group(1))
    assert epochs < 400 and abs(estimated - epochs) < epochs, (estimated, epochs)
    expect(progress).to_have_count(0)  # the bar is gone with the run: it never sat at its end while running
    assert_no_error(page)
