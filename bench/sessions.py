"""Browser sessions for the concurrency run: each uploads its own file, may train, and moves its slider.

Driven with Playwright's async API, so one Chromium serves every session at once (each a browser context).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.async_page import ARM_JS, PROBE_JS, TIMEOUT_MS, goto, idle, metric
from bench.server_stats import cpu_seconds, memory_mib
from tests.browser_support import CHROMIUM_ARGS, find_chromium
from tests.helpers import synthetic_beats, write_arff

MOVE_TIMEOUT_MS = 30_000
TRAIN_TIMEOUT_MS = 300_000
TRAIN_EPOCHS, TRAIN_EMBEDDING = 3, 8
VIEWPORT = {"width": 1400, "height": 1000}


def log(message: str) -> None:
    """Progress on stderr, with the time."""
    print(f"[concurrency {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class SessionData:
    """One session's file: its own beat count, class sizes and values, so its summary is recognisable."""

    index: int
    path: Path
    n_normal: int
    n_anomaly: int

    @property
    def name(self) -> str:
        """The file name the app shows."""
        return self.path.name

    @property
    def n_beats(self) -> int:
        """Beats in the file."""
        return self.n_normal + self.n_anomaly


def make_files(directory: Path, n: int) -> list[SessionData]:
    """n labelled ARFF files of 140-sample beats: file i holds 60 + 10 i beats, 20 + 3 i of them anomalies."""
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        n_anomaly, n_normal = 20 + 3 * i, 40 + 7 * i
        X, labels = synthetic_beats(n_normal=n_normal, n_anomaly=n_anomaly, length=140, seed=100 + i)
        X = X * (1.0 + 0.2 * i) + 0.05 * i  # other values too, not only other counts
        path = write_arff(directory / f"session_{i:02d}.arff", X, labels, relation=f"session_{i:02d}")
        out.append(SessionData(i, path, n_normal, n_anomaly))
    return out


@dataclass
class SessionResult:
    """What one session saw and how fast its slider answered."""

    index: int
    name: str
    n_beats: int
    trainer: bool
    round_trips_ms: list[float] = field(default_factory=list)  # key press to the threshold chart redrawn
    cards_ms: list[float] = field(default_factory=list)  # key press to the server's metric cards updated
    pressed_at: list[float] = field(default_factory=list)  # time.monotonic() of each measured key press
    timeouts: int = 0
    data_captions: list[str] = field(default_factory=list)  # the sidebar's data summary at each check
    model_names: list[str] = field(default_factory=list)  # the sidebar's model name at each check
    beat_captions: list[str] = field(default_factory=list)  # the explorer's "beat k: file, row r" line
    totals: list[tuple[str, str]] = field(default_factory=list)  # (normal, anomaly) totals after each move
    page_errors: list[str] = field(default_factory=list)  # error boxes and exceptions on the page
    training: dict | None = None
    stage: str = "start"  # the step under way, named in a failure
    failure: str | None = None  # an action that did not complete


class _Gate:
    """Lets every session start moving at the same moment, even when one of them failed on the way."""

    def __init__(self, parties: int) -> None:
        self._left = parties
        self._open = asyncio.Event()

    def arrive(self) -> None:
        self._left -= 1
        if self._left <= 0:
            self._open.set()

    async def wait(self) -> None:
        await self._open.wait()

async def _observe(page, result: SessionResult, explorer: bool) -> None:
    """Record what the sidebar (and on the explorer, the beat viewer) says, and any error on the page."""
    captions = page.locator("[data-testid=stSidebar] [data-testid=stCaptionContainer]")
    result.data_captions.append(" ".join((await captions.nth(0).inner_text()).split()))
    result.model_names.append((await captions.nth(1).inner_text()).splitlines()[0].strip())
    if explorer:
        beat = page.locator("[data-testid=stMain] [data-testid=stCaptionContainer]").filter(
            has_text=re.compile(r"^beat [\d,]+: "))
        result.beat_captions.append(" ".join((await beat.first.inner_text()).split()))
    for selector in ("[data-testid=stException]", "[data-testid=stAlertContentError]"):
        result.page_errors += [" ".join(t.split())[:300] for t in await page.locator(selector).all_inner_texts()]


async def _train(page, result: SessionResult, gate: _Gate) -> None:
    """On the Model page: a small model on this session's data, started when everyone starts moving."""
    from playwright.async_api import expect

    await goto(page, "Model")
    await page.get_by_role("tab", name=re.compile("Train a model")).click()
    for label, value in (("Save as", f"concurrency_{result.index:02d}"), ("Embedding size", str(TRAIN_EMBEDDING)),
                         ("Epochs (at most)", str(TRAIN_EPOCHS))):
        field_ = page.get_by_label(label, exact=True)
        await field_.fill(value)
        await field_.press("Tab")
    gate.arrive()
    await gate.wait()
    started = time.monotonic()
    result.training = {"started": started, "ended": None, "finished": False, "epochs": TRAIN_EPOCHS,
                       "embedding": TRAIN_EMBEDDING}
    await page.get_by_role("button", name=re.compile("Start training")).click()
    # the run that adopts the model leaves a notice on top and shows the first tab again
    notice = page.get_by_text(re.compile(r"^Model '.+' trained, saved as .+ and activated"))
    await expect(notice).to_be_visible(timeout=TRAIN_TIMEOUT_MS)
    ended = time.monotonic()
    result.training.update(ended=ended, finished=True, duration_s=ended - started, notice=await notice.inner_text())
    await idle(page, settle_ms=0)
    await page.get_by_role("tab", name=re.compile("Train a model")).click()
    summary = page.get_by_text(re.compile(r"^Training finished after"))
    result.training["summary"] = await summary.inner_text()


async def _moves(page, result: SessionResult, moves: int) -> None:
    """Press PageUp/PageDown in turn on the focused slider; time each press to the redrawn chart and metric texts."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    thumb = page.locator("input.ecgviz-tc-range").first
    await thumb.focus()
    now, lo, hi = float(await thumb.input_value()), float(await thumb.get_attribute("min")), \
        float(await thumb.get_attribute("max"))
    keys = ("PageDown", "PageUp") if now - lo >= hi - now else ("PageUp", "PageDown")  # a tenth of the range
    await page.evaluate(PROBE_JS)
    for k in range(moves):
        await page.evaluate(ARM_JS)
        pressed = time.monotonic()
        await page.keyboard.press(keys[k % 2])
        try:
            await page.wait_for_function("() => window.__rt.done", timeout=MOVE_TIMEOUT_MS, polling=50)
        except PlaywrightTimeout:
            result.timeouts += 1
        else:
            figure, cards = await page.evaluate("() => [window.__rt.tFigure - window.__rt.t0, "
                                                "window.__rt.tCards - window.__rt.t0]")
            result.round_trips_ms.append(figure)
            result.cards_ms.append(cards)
            result.pressed_at.append(pressed)
        await idle(page, settle_ms=0)  # the whole fragment run is over before the next press
        normal = await metric(page, "Normal beats passed").inner_text()
        anomaly = await metric(page, "Anomalies caught").inner_text()
        result.totals.append((normal.split("/")[-1].strip(), anomaly.split("/")[-1].strip()))


async def _session(browser, url: str, data: SessionData, moves: int, gate: _Gate, trainer: bool,
                   artifacts: Path | None):
    """One user: upload the file, (train,) open the explorer, move the slider; the context stays open."""
    from playwright.async_api import expect

    result = SessionResult(data.index, data.name, data.n_beats, trainer)
    context = await browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    arrived = False
    try:
        result.stage = "open the Data page"
        await page.goto(url + "data")  # the Data page: no scoring of the built-in data before the upload
        await expect(page.locator("h1")).to_have_text("Data", timeout=TIMEOUT_MS)
        await idle(page)
        result.stage = "upload"
        await page.locator("[data-testid=stFileUploader] input[type=file]").first.set_input_files(str(data.path))
        await expect(page.locator("h3").filter(has_text=data.name)).to_be_visible(timeout=TIMEOUT_MS)
        await expect(metric(page, "Beats")).to_have_text(f"{data.n_beats:,}", timeout=TIMEOUT_MS)
        await idle(page)
        await _observe(page, result, explorer=False)
        if trainer:
            arrived = True
            result.stage = "train"
            await _train(page, result, gate)
            await _observe(page, result, explorer=False)
            result.stage = "open the explorer"
            await goto(page, "Threshold explorer")
        else:
            result.stage = "open the explorer"
            await goto(page, "Threshold explorer")
            await expect(metric(page, "Anomalies caught")).to_be_visible(timeout=TIMEOUT_MS)
            arrived = True
            gate.arrive()
            await gate.wait()
        result.stage = "move the slider"
        await _moves(page, result, moves)
        result.stage = "final check"
        await _observe(page, result, explorer=True)
    except Exception as exc:
        result.failure = f"{result.stage}: {type(exc).__name__}: {' '.join(str(exc).split())[:400]}"
        if artifacts is not None:
            artifacts.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(Exception):
                await page.screenshot(path=str(artifacts / f"concurrency_session{data.index:02d}_failed.png"))
    finally:
        if not arrived:
            gate.arrive()
    return result, context


async def _sample_memory(pid: int | None, peak: dict) -> None:
    while True:
        peak["rss"] = max(peak.get("rss", 0.0), memory_mib(pid).get("rss", 0.0))
        await asyncio.sleep(0.25)


async def drive(url: str, files: list[SessionData], moves: int, pid: int | None, memory: dict, *, train: bool,
                artifacts: Path | None) -> list[SessionResult]:
    """A warm-up session, then every file's session at once; fills `memory` (MB) and returns what each saw."""
    from playwright.async_api import async_playwright, expect

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=find_chromium(), args=list(CHROMIUM_ARGS))
        try:
            # one session first, so torch, the start-up model and the built-in data are loaded before "before": the
            # explorer, which reads the model's detector (a restarted server draws the first chart without it)
            log("warm-up session")
            context = await browser.new_context(viewport=VIEWPORT)
            page = await context.new_page()
            await page.goto(url, timeout=TIMEOUT_MS)
            await expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=TIMEOUT_MS)
            await idle(page)
            await expect(page.get_by_text("held-out beats are flagged")).to_be_visible(timeout=TIMEOUT_MS)
            await context.close()
            memory["before"] = memory_mib(pid).get("rss")
            log(f"{len(files)} sessions, {moves} moves each" + ("; session 0 trains" if train else ""))
            gate, peak = _Gate(len(files)), {}
            sampler = asyncio.create_task(_sample_memory(pid, peak))

            async def when_all_open() -> None:  # every session has its data and its page, nothing moved yet
                await gate.wait()
                memory["sessions_open"] = memory_mib(pid).get("rss")
                memory["moves_started"], memory["cpu_at_start"] = time.monotonic(), cpu_seconds(pid)

            opened = asyncio.create_task(when_all_open())
            done = await asyncio.gather(*(_session(browser, url, f, moves, gate, train and f.index == 0, artifacts)
                                          for f in files))
            sampler.cancel()
            opened.cancel()
            now, cpu = memory_mib(pid), cpu_seconds(pid)
            if memory.get("cpu_at_start") is not None and cpu is not None:
                memory["server_cpu_s_during_moves"] = cpu - memory.pop("cpu_at_start")
                memory["moves_wall_s"] = time.monotonic() - memory.pop("moves_started")
            memory.update(after=now.get("rss"), peak_sampled=peak.get("rss"), peak=now.get("hwm"))
            for _, context in done:
                await context.close()
            return [r for r, _ in done]
        finally:
            await browser.close()
