"""Server memory when uploads are replaced and sessions close: is a session's data given back?

Starts the dashboard in a subprocess and drives it with Chromium: one session uploads a ~47 MB file, removes
it and uploads another, `--cycles` times; then it closes, and after `--wait` seconds the server's resident memory
is read again. Then `--sessions` sessions upload at once, close, and are waited for the same way.

    .venv/bin/python -m bench.upload_memory [--cycles 10] [--sessions 4] [--mb 47] [--wait 150] [--app app.py]

Memory is VmRSS of the server process in MiB (2^20 bytes), as /proc reports it. `--wait` should exceed
Streamlit's server.disconnectedSessionTTL (120 s: a closed tab's session is kept that long for a reconnect) and
$ECGVIZ_WORKSPACE_UNLOAD_S (120 s), plus the 10 s between the server's sweeps. `--app` runs another checkout's
app.py (its own code), to compare.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

from bench.server_stats import memory_mib
from tests.browser_support import StreamlitServer, launch_browser, wait_idle
from tests.helpers import synthetic_beats, write_arff

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_MS = 300_000


def log(message: str) -> None:
    """Progress on stderr, with the time."""
    print(f"[upload_memory {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def make_file(path: Path, mb: float, seed: int) -> tuple[Path, int]:
    """A labelled ARFF file of about `mb` MB (10^6 bytes) of 140-sample beats; (path, beats)."""
    def beats(n: int):
        X, labels = synthetic_beats(n_normal=n - n // 5, n_anomaly=n // 5, length=140, seed=seed)
        return X * (1.0 + 0.01 * seed), labels  # other values, so every file has its own fingerprint

    per_beat = write_arff(path, *beats(500), relation=path.stem).stat().st_size / 500
    n = int(mb * 1e6 / per_beat)
    write_arff(path, *beats(n), relation=path.stem)
    return path, n


def upload(page, path: Path, n: int) -> None:
    """Upload one file on the Data page and wait until it is the active data."""
    from playwright.sync_api import expect

    page.locator("[data-testid=stFileUploader] input[type=file]").first.set_input_files(str(path))
    expect(page.locator("h3").filter(has_text=path.name)).to_be_visible(timeout=TIMEOUT_MS)
    expect(_metric(page, "Beats")).to_have_text(f"{n:,}", timeout=TIMEOUT_MS)
    wait_idle(page, timeout=TIMEOUT_MS)


def remove_upload(page) -> None:
    """Remove the uploaded file(s) from the beats uploader, as a user replacing data does first."""
    uploader = page.locator("[data-testid=stFileUploader]").first
    buttons = uploader.locator("[data-testid=stFileChipDeleteBtn] button")
    while buttons.count():
        buttons.first.click()
        wait_idle(page, timeout=TIMEOUT_MS)


def _metric(page, label: str):
    box = page.locator("[data-testid=stMetric]").filter(
        has=page.locator("[data-testid=stMetricLabel]", has_text=re.compile(f"^{re.escape(label)}$")))
    return box.locator("[data-testid=stMetricValue]")


def open_data_page(browser, url: str):
    """A new browser context (a new session) on the Data page; (context, page)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(url + "data", timeout=TIMEOUT_MS)
    wait_idle(page, timeout=TIMEOUT_MS)
    return context, page


def run(args) -> list[tuple[str, float | None]]:
    """Drive the server; (step, RSS MiB) rows."""
    from playwright.sync_api import sync_playwright

    rows: list[tuple[str, float | None]] = []
    work = Path(tempfile.mkdtemp(prefix="ecgviz-upload-memory-"))
    files = [make_file(work / f"upload_{i:02d}.arff", args.mb, seed=10 + i) for i in range(max(args.sessions, 2))]
    log(f"{len(files)} files of {files[0][0].stat().st_size / 1e6:.1f} MB ({files[0][1]:,} beats each)")
    env = {"ECGVIZ_WORKSPACE_DIR": str(work / "workspaces")}
    with StreamlitServer(args.app, env=env) as server, sync_playwright() as p:
        pid = server.pid
        browser = launch_browser(p)

        def note(step: str) -> None:
            rss = memory_mib(pid).get("rss")
            rows.append((step, rss))
            log(f"{step}: {rss:.0f} MiB" if rss is not None else f"{step}: ?")

        context, page = open_data_page(browser, server.url)  # warm-up: torch, the start-up model, ECG5000
        context.close()
        time.sleep(2)
        note("started, one visit")
        context, page = open_data_page(browser, server.url)
        for cycle in range(1, args.cycles + 1):
            if cycle > 1:
                remove_upload(page)
            path, n = files[(cycle - 1) % 2]
            upload(page, path, n)
            if cycle in (1, 2, 5) or cycle == args.cycles:
                note(f"one session, after {cycle} upload{'s' if cycle > 1 else ''}")
        context.close()
        time.sleep(2)
        note("that session closed")
        time.sleep(args.wait)
        note(f"{args.wait:.0f} s later")
        sessions = [open_data_page(browser, server.url) for _ in range(args.sessions)]
        for i, (_, page) in enumerate(sessions):
            upload(page, *files[i % len(files)])
        note(f"{args.sessions} sessions, one upload each")
        for context, _ in sessions:
            context.close()
        time.sleep(2)
        note(f"{args.sessions} sessions closed")
        time.sleep(args.wait)
        note(f"{args.wait:.0f} s later")
        browser.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--mb", type=float, default=47.0, help="file size in MB (10^6 bytes)")
    parser.add_argument("--wait", type=float, default=150.0, help="seconds to wait after sessions close")
    parser.add_argument("--app", default=str(ROOT / "app.py"), help="the app.py to serve")
    args = parser.parse_args(argv)
    rows = run(args)
    print(f"\nserver memory, {args.app}; uploads of {args.mb:g} MB")
    print("| step | server RSS (MiB) |\n|---|---|")
    for step, rss in rows:
        print(f"| {step} | {'?' if rss is None else f'{rss:,.0f}'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
