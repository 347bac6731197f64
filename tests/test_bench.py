"""The benchmark harness runs every row (briefly, with --quick) and reports each one as a number."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench.browser import chromium_available
from bench.report import ROW_IDS, Row, markdown
from bench.run import main

ROOT = Path(__file__).resolve().parent.parent
# Rows that are a time to reach an AUROC: a two-epoch quick run cannot get there, so they may be empty.
TO_TARGET = {"training.default.s_to_auroc_0.98", "training.default.s_to_auroc_0.99",
             "training.classic_epoch_over_default_to_0.99", "training.candidate.s_to_auroc_0.99"}
BROWSER = {r for r in ROW_IDS if r.startswith("browser.")}


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """(JSON, stdout) of one `python -m bench --quick` run; the browser rows only where Chromium is."""
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    cmd = [sys.executable, "-m", "bench", "--quick", "--threads", "1", "--out", str(out)]
    if not chromium_available():
        cmd.append("--no-browser")
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text()), done.stdout


def _is_number(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def test_every_row_is_reported_in_order(quick):
    payload, stdout = quick
    assert [r["id"] for r in payload["rows"]] == list(ROW_IDS)
    for row in payload["rows"]:
        assert row["label"] in stdout
    assert payload["meta"]["quick"] is True and payload["meta"]["torch_threads"] == 1


def test_rows_hold_numbers(quick):
    payload, _ = quick
    browser_ran = "browser" in payload["details"]
    for row in payload["rows"]:
        if row["id"] in TO_TARGET and row["value"] is None:
            assert "not reached" in row["note"] or row["id"] == "training.classic_epoch_over_default_to_0.99"
        elif row["id"] in BROWSER and not browser_ran:
            assert row["value"] is None and row["note"]
        else:
            assert _is_number(row["value"]) and row["value"] > 0, row
        assert row["met"] is None  # a quick run judges no time
    assert browser_ran == chromium_available()


def test_details_hold_the_raw_measurements(quick):
    details = quick[0]["details"]
    epochs = details["training"]["default"]["epochs"]
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert all(_is_number(e["auroc"]) and 0 <= e["auroc"] <= 1 and e["train_s"] > 0 for e in epochs)
    assert details["training"]["classic"]["beats_timed"] == 3
    assert details["explorer"]["100k"]["n_beats"] == 100_000
    assert details["explorer"]["5k"]["n_beats"] == 5_000
    assert all(_is_number(r["beats_per_s"]) for r in details["scoring"].values())
    if "browser" in details:
        assert len(details["browser"]["dashboard"]["round_trips_ms"]) == 3


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_without_a_device_says_so(capsys):
    assert main(["--device", "cuda", "--quick"]) == 2
    assert "no CUDA device" in capsys.readouterr().err


def test_markdown_table():
    rows = [Row("a", "Alpha", 1234.6, "beats/s", target=">= 1"), Row("b", "Beta", None, "s", note="why"),
            Row("c", "Gamma", 12.0, "ms", p95=20.0, met=False)]
    lines = markdown(rows).splitlines()
    assert len(lines) == 5 and lines[0].startswith("| row |")
    assert "| Alpha | 1,235 | beats/s |" in lines[2]
    assert "| Beta | — | s |" in lines[3] and "why" in lines[3]
    assert "| Gamma | 12 / 20 | ms |" in lines[4] and "**no**" in lines[4]


@pytest.mark.parametrize("module", ["bench.archive", "bench.million"])
def test_scale_benchmarks_run_and_print_their_tables(module):
    done = subprocess.run([sys.executable, "-m", module, "--quick"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and not line.startswith("| run")
            and not line.startswith("| stage")]
    if module == "bench.archive":
        assert "CSVs identical across runs: True" in done.stdout
        assert [r.split(" | ")[0] for r in rows] == ["| one process (no Dask)", "| Dask, 1 worker", "| Dask, 2 workers"]
    else:
        assert "20,000 beats" in done.stdout and len(rows) == 6


def test_upload_cost_and_labels_benchmarks_print_measured_rows():
    done = subprocess.run([sys.executable, "-m", "bench.upload_cost", "--mb", "1"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    row = done.stdout.splitlines()[-1].strip("| ").split(" | ")
    # 1 MB of ECG5000's rows: the header plus about 630 beats of 140 samples (5,000 beats are 7.9 MB)
    assert row[0] == "1.0" and 550 < int(row[1].replace(",", "")) < 700 and row[2].endswith(" s"), row
    assert all(float(v.replace(",", "")) > 0 for v in row[4:]), row
    done = subprocess.run([sys.executable, "-m", "bench.labels", "--beats", "2000", "--label-chars", "1", "100"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [r.strip("| ").split(" | ") for r in done.stdout.splitlines()[-2:]]
    assert [r[:2] for r in rows] == [["2,000", "1"], ["2,000", "100"]], rows
