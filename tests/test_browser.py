"""The dashboard in headless Chromium: the real app on ECG5000 with the shipped model, driven like a user would."""

from __future__ import annotations

import re
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import Expect

from ecgviz.checkpoint.store import SHIPPED_CHECKPOINT
from ecgviz.dashboard import config, session
from ecgviz.evaluation import metrics
from ecgviz.io.data import ECG5000_CLASS_NAMES
from tests.browser_support import (
    StreamlitServer,
    wait_idle,
)
from tests.helpers import synthetic_beats, write_arff

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
TIMEOUT_MS = 60_000  # the first run loads 5,000 beats and scores them on a CPU shared with the browser
N_UPLOADED = 37

# this module's own expect: assertions wait for server round trips on a busy machine, not Playwright's 5 s
expect = Expect()
expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def reference() -> Future:
    """(errors, eval indices, is_anomaly, labels, checkpoint) of the shipped model on ECG5000, computed here.

    It runs in the background while the app starts and scores the same beats, so the two overlap.
    """
    def compute():
        model = session.model_from_path(SHIPPED_CHECKPOINT, source="shipped")
        data = session.builtin_data()
        errors = session.scores(model, data)
        idx, is_anomaly = model.ckpt.split.eval_indices()
        return errors, idx, is_anomaly, data.data.labels, model.ckpt

    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool.submit(compute)


@pytest.fixture(scope="module")
def server(chromium, reference, tmp_path_factory):
    """The real app with the shipped checkpoint, and an empty directory for saved models.

    It asks for `reference` only so that the reference scoring starts first and overlaps the app's own.
    """
    env = {
        config.CHECKPOINT_ENV: None,  # the shipped model, whatever the caller's environment says
        config.CHECKPOINT_DIR_ENV: str(tmp_path_factory.mktemp("checkpoints")),
        "OMP_NUM_THREADS": "1",  # two cores shared with Chromium and the reference scoring
    }
    with StreamlitServer(ROOT / "app.py", env=env) as srv:
        yield srv


@pytest.fixture
def page(browser, server):
    """A fresh app session, opened on the default page and idle."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    pg = context.new_page()
    pg.goto(server.url)
    wait_idle(pg)
    yield pg
    context.close()


def screenshot(page, name: str) -> None:
    """The whole page to tests/artifacts: the main area scrolls inside the window, so the window grows to fit it."""
    size = page.viewport_size
    height = page.evaluate("""() => Math.max(...Array.from(
        document.querySelectorAll("[data-testid=stMain], [data-testid=stAppViewContainer], [data-testid=stSidebar]"),
        e => e.scrollHeight))""")
    page.set_viewport_size({"width": size["width"], "height": min(max(height, size["height"]), 8000)})
    try:
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), animations="disabled")
    finally:
        page.set_viewport_size(size)


def goto(page, title: str) -> None:
    """Open a page through the sidebar's menu and wait for it to finish running."""
    page.locator(MENU).get_by_role("link", name=title, exact=True).click()
    wait_idle(page)
    expect(page.locator("h1")).to_have_text(title)
    wait_idle(page, settle_ms=0)


def cut_recording(page, url: str, recording: str, timeout: float) -> None:
    """Open the app at `url`, pick `recording` (a file of the server's data folder) on the Data page and cut its
    beats; `timeout` (ms) bounds each wait."""
    page.set_default_timeout(timeout)
    page.goto(url)
    wait_idle(page, timeout=timeout)
    goto(page, "Data")
    page.locator("[data-testid=stSelectbox]").filter(has_text="Recording").click()
    page.get_by_role("option", name=recording).click()
    wait_idle(page, timeout=timeout)
    page.get_by_role("button", name="Cut beats").first.click()
    wait_idle(page, timeout=timeout)


def metric(page, label: str | re.Pattern):
    """The value element of the metric with exactly this label (or a label matching this pattern)."""
    pattern = label if isinstance(label, re.Pattern) else re.compile(f"^{re.escape(label)}$")
    box = page.locator("[data-testid=stMetric]").filter(
        has=page.locator("[data-testid=stMetricLabel]", has_text=pattern))
    return box.locator("[data-testid=stMetricValue]")


def class_label(name: str) -> re.Pattern:
    """A per-class metric's label: the class name, with or without "caught" after it."""
    return re.compile(f"^{re.escape(name)}( caught)?$")


def threshold_input(page):
    """The explorer's number input, which shows the threshold with 4 decimals."""
    return page.locator("[data-testid=stNumberInput] input").first


def shown_threshold(page) -> str:
    """The threshold as the explorer shows it."""
    return threshold_input(page).input_value()


def press(page, key: str) -> str:
    """Press `key` on the focused slider, wait for the threshold to change and the run to end; the new value."""
    before = shown_threshold(page)
    page.keyboard.press(key)
    wait_idle(page)
    expect(threshold_input(page)).not_to_have_value(before)
    wait_idle(page, settle_ms=0)
    return shown_threshold(page)


HEADLINE = ("Normal beats passed", "Anomalies caught", "Precision", "F1")


def expected_figures(ref, threshold: float) -> dict[str, str]:
    """The explorer's figures at `threshold`, from ecgviz.evaluation.metrics on the checkpoint's held-out split."""
    errors, idx, is_anomaly, labels, _ = ref
    m = metrics.at_threshold(errors[idx], is_anomaly, threshold, labels[idx])
    figures = {
        "Normal beats passed": f"{m.tn:,} / {m.n_normal:,}",
        "Anomalies caught": f"{m.tp:,} / {m.n_anomaly:,}",
        "Precision": f"{100 * m.precision:.1f}%",
        "F1": f"{m.f1:.3f}",
    }
    for label in m.class_recall:  # the abnormal classes
        flagged, total = m.class_counts[label]
        figures[ECG5000_CLASS_NAMES[label]] = f"{flagged:,} / {total:,}"
    return figures


def expected_readout(ref, threshold: float) -> str:
    """The counts the threshold chart shows under its slider, from ecgviz.evaluation.metrics."""
    errors, idx, is_anomaly, labels, _ = ref
    m = metrics.at_threshold(errors[idx], is_anomaly, threshold, labels[idx])
    return (f"normal beats passed {m.tn:,} / {m.n_normal:,} ({100 * m.normal_recall:.1f}%) · "
            f"anomalies caught {m.tp:,} / {m.n_anomaly:,} ({100 * m.anomaly_recall:.1f}%)")


def readout(page) -> str:
    """The chart's own line under its slider, without the threshold at its start."""
    return page.locator(".ecgviz-tc-readout").inner_text().split(" · ", 1)[1]


def shown_figures(page) -> dict[str, str]:
    """The explorer's headline and per-class figures as the page shows them."""
    shown = {label: metric(page, label).inner_text() for label in HEADLINE}
    for label, name in ECG5000_CLASS_NAMES.items():
        if label != "1":
            shown[name] = metric(page, class_label(name)).inner_text()
    return shown


def assert_no_error(page) -> None:
    """No error box and no exception anywhere on the page."""
    expect(page.locator("[data-testid=stException]")).to_have_count(0)
    expect(page.locator("[data-testid=stAlertContentError]")).to_have_count(0)


def all_beats(page) -> None:
    """On the Export page, choose to export every beat."""
    page.locator("[data-testid=stRadio]").get_by_text("All beats", exact=True).click()
    wait_idle(page)
    expect(page.locator("[data-testid=stDownloadButton] button").filter(has_text="ecgviz_all_")).to_be_visible()
    wait_idle(page, settle_ms=0)


def download_csv(page, button_text: str) -> tuple[str, pd.DataFrame]:
    """Click a download button and read the file it delivers."""
    with page.expect_download() as info:
        page.locator("[data-testid=stDownloadButton] button").filter(has_text=button_text).click()
    download = info.value
    return download.suggested_filename, pd.read_csv(download.path(), dtype={"label": str})


def test_explorer_shows_charts_and_figures_without_a_click(page, reference):
    expect(page.locator("h1")).to_have_text("Threshold explorer")
    charts = page.locator("[data-testid=stPlotlyChart]")
    expect(charts).to_have_count(4)  # ROC, PR, confusion matrix, one beat
    for i in range(4):
        expect(charts.nth(i).locator(".main-svg").first).to_be_visible()
    # the threshold chart, drawn in the browser: a bar per non-empty bin, five recall curves, its slider
    expect(page.locator(".ecgviz-tc-bars rect").first).to_be_visible()
    expect(page.locator("polyline.ecgviz-tc-curve")).to_have_count(5)
    expect(page.locator("input.ecgviz-tc-range")).to_be_visible()
    expect(page.locator("[data-testid=stMetricValue]")).to_have_count(9)  # 4 headline, 4 classes, 1 beat
    expect(threshold_input(page)).to_have_value(f"{reference.result()[-1].threshold:.4f}")
    shown = float(shown_threshold(page))
    assert shown_figures(page) == expected_figures(reference.result(), shown)
    assert readout(page) == expected_readout(reference.result(), reference.result()[-1].threshold)
    assert_no_error(page)
    screenshot(page, "explorer")


def test_slider_keys_move_the_threshold_and_the_figures(page, reference):
    ref = reference.result()
    expect(threshold_input(page)).to_have_value(f"{ref[-1].threshold:.4f}")
    start, before = float(shown_threshold(page)), shown_figures(page)
    thumb = page.locator("input.ecgviz-tc-range")
    step = float(thumb.get_attribute("step"))
    thumb.focus()

    lower = float(press(page, "PageDown"))  # a tenth of the range lower: some normal beats get flagged
    assert lower < start - 5 * step
    after = shown_figures(page)
    assert after != before
    assert after == expected_figures(ref, lower)
    # the chart's own counts (looked up in the browser, before the server answered) are the same numbers
    assert readout(page) == expected_readout(ref, float(thumb.input_value()))
    sidebar = page.locator("[data-testid=stSidebar]")
    expect(sidebar.get_by_text(f"{lower:.4g}", exact=True)).to_be_visible()

    for _ in range(3):
        moved = float(press(page, "ArrowRight"))
    assert moved == pytest.approx(lower + 3 * step, abs=1e-6)
    assert shown_figures(page) == expected_figures(ref, moved)
    assert readout(page) == expected_readout(ref, moved)

    press(page, "End")  # above every error: nothing flagged
    assert metric(page, "Anomalies caught").inner_text() == f"0 / {int(ref[2].sum()):,}"
    press(page, "Home")  # below every error: everything flagged
    assert metric(page, "Normal beats passed").inner_text() == f"0 / {int((~ref[2]).sum()):,}"

    chosen = press(page, "PageUp")
    assert shown_figures(page) == expected_figures(ref, float(chosen))
    assert_no_error(page)

    # the chosen threshold is the one every page uses, and it survives a round trip through the pages
    goto(page, "Export")
    all_beats(page)
    name, table = download_csv(page, "ecgviz_all_")
    assert name == f"ecgviz_all_t{chosen}.csv"
    assert len(table) == len(ref[0]) == 5000
    np.testing.assert_allclose(table["threshold"], float(chosen), atol=5e-5)
    screenshot(page, "export")
    goto(page, "Threshold explorer")
    assert shown_threshold(page) == chosen


@pytest.fixture
def upload_files(tmp_path) -> tuple[Path, Path]:
    """A small valid ARFF of 140-sample labelled beats, and a file that is not a valid beat file."""
    X, labels = synthetic_beats(n_normal=25, n_anomaly=N_UPLOADED - 25, length=140, seed=3)
    good = write_arff(tmp_path / "my_beats.arff", X, labels)
    lines = good.read_text().splitlines()
    row = lines.index("@data") + 2  # the second beat of the file
    values = lines[row].split(",")
    values[5] = "oops"  # a sample that is not a number
    lines[row] = ",".join(values)
    broken = tmp_path / "broken.arff"
    broken.write_text("\n".join(lines) + "\n")
    return good, broken


def test_a_typed_threshold_and_a_click_on_the_track_move_the_chart(page, reference):
    ref = reference.result()
    typed = 25.1234  # off the slider's grid: the chart shows it with the server's exact counts
    box = threshold_input(page)
    box.fill(str(typed))
    box.press("Enter")
    wait_idle(page)
    expect(page.locator("text.ecgviz-tc-threshold-label")).to_have_text("threshold 25.12")
    assert readout(page) == expected_readout(ref, typed)
    assert shown_figures(page) == expected_figures(ref, typed)

    track = page.locator("input.ecgviz-tc-range")
    area = track.bounding_box()
    page.mouse.click(area["x"] + 0.3 * area["width"], area["y"] + area["height"] / 2)
    value = float(track.input_value())
    assert value > typed
    wait_idle(page)  # the value reaches the server once the slider rests
    expect(box).to_have_value(f"{value:.4f}")
    assert readout(page) == expected_readout(ref, value)
    assert shown_figures(page) == expected_figures(ref, value)

    # type another value, then click the same spot again: the slider's old value must reach the server anew
    box.fill(str(typed))
    box.press("Enter")
    wait_idle(page)
    expect(box).to_have_value(f"{typed:.4f}")
    page.mouse.click(area["x"] + 0.3 * area["width"], area["y"] + area["height"] / 2)
    wait_idle(page)
    expect(box).to_have_value(f"{value:.4f}")
    assert shown_figures(page) == expected_figures(ref, value)
    assert_no_error(page)


def test_upload_then_a_broken_file_then_export(page, reference, upload_files):
    good, broken = upload_files
    goto(page, "Data")
    expect(metric(page, "Beats")).to_have_text("5,000")
    uploader = page.locator("[data-testid=stFileUploader]").first.locator("input[type=file]")  # the beat-file one

    uploader.set_input_files(str(good))
    wait_idle(page)
    expect(metric(page, "Beats")).to_have_text(str(N_UPLOADED))
    wait_idle(page, settle_ms=0)
    expect(metric(page, "Samples per beat")).to_have_text("140")
    expect(page.locator("h3").filter(has_text="my_beats.arff")).to_be_visible()
    assert_no_error(page)

    uploader.set_input_files(str(broken))
    wait_idle(page)
    error = page.locator("[data-testid=stAlertContentError]")
    expect(error).to_have_count(1)
    wait_idle(page, settle_ms=0)
    expect(error).to_contain_text("broken.arff")
    expect(error).to_contain_text("row 2")
    expect(page.get_by_text("Still using: my_beats.arff")).to_be_visible()
    expect(metric(page, "Beats")).to_have_text(str(N_UPLOADED))  # the previous data stays
    screenshot(page, "data")

    goto(page, "Model")
    expect(metric(page, "Beat length")).to_have_text("140")
    assert_no_error(page)
    screenshot(page, "model")

    goto(page, "Export")
    all_beats(page)
    threshold = reference.result()[-1].threshold
    name, table = download_csv(page, "ecgviz_all_")
    assert name == f"ecgviz_all_t{threshold:.4f}.csv"
    assert len(table) == N_UPLOADED
    assert set(table["source"]) == {"my_beats.arff"}
    assert table["row"].tolist() == list(range(1, N_UPLOADED + 1))


NAVIGATION = ["Data", "Model", "Threshold explorer", "Compare detectors", "Export"]
MENU = ".st-key-menu"  # the sidebar menu app.py draws (Streamlit's own is hidden by .streamlit/config.toml)


@pytest.mark.parametrize(("path", "title"), [("data", "Data"), ("model", "Model"), ("", "Threshold explorer"),
                                             ("compare", "Compare detectors"), ("export", "Export")])
def test_every_page_url_runs_the_app_set_up_first(chromium, browser, tmp_path, path, title):
    # a fresh server whose first visitor opens this page's URL: app.py must run first (sidebar, set-up) and list
    # only the pages st.navigation names, although they live in a folder called pages/ (pages/common/state.py
    # has the workaround this needs; without it the first visit to /data ran data.py alone and failed)
    env = {config.CHECKPOINT_DIR_ENV: str(tmp_path), "OMP_NUM_THREADS": "1"}
    with StreamlitServer(ROOT / "app.py", env=env) as srv:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(TIMEOUT_MS)
        try:
            pg = context.new_page()
            pg.goto(srv.url + path)
            wait_idle(pg)
            expect(pg.locator("h1")).to_have_text(title)
            sidebar = pg.locator("[data-testid=stSidebarUserContent]")
            for heading in ("Data", "Model", "Threshold"):  # the summary's headings (the menu has links too)
                expect(sidebar.locator("strong", has_text=re.compile(f"^{heading}$"))).to_be_visible()
            expect(sidebar).to_contain_text("ECG5000")
            links = pg.locator(f"{MENU} a").all_inner_texts()
            assert [t.split("\n")[-1].strip() for t in links] == NAVIGATION  # the icon's name comes first
            assert_no_error(pg)
        finally:
            context.close()
