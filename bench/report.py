"""Rows of the benchmark: one list of ids, a markdown table, and the JSON file."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.speed import RATIOS

# Every run reports every row, in this order; a row that could not run says why in `note` and has value None.
ROW_IDS = (
    "training.classic.s_per_epoch",
    "training.default.s_per_epoch",
    "training.default.s_to_auroc_0.98",
    "training.default.s_to_auroc_0.99",
    "training.speedup_per_epoch",
    "training.classic_epoch_over_default_to_0.99",
    "training.default_1_thread.s_per_epoch",
    "training.candidate.s_to_auroc_0.99",
    "scoring.default.beats_per_s",
    "scoring.emb128.beats_per_s",
    "scoring.candidate.beats_per_s",
    "scoring.default_1_thread.beats_per_s",
    "explorer.step_ms.5k",
    "explorer.step_ms.100k",
    "browser.round_trip_ms.dashboard",
    "browser.round_trip_ms.empty",
    "browser.round_trip_p95_ratio",
    "browser.server_update_ms.dashboard",
    "browser.cold_start_s.dashboard",
    "browser.cold_start_s.empty",
    "browser.cold_start_ratio",
    "browser.first_start_ratio",
    "analysis.100.balanced_accuracy",
    "analysis.100.s_recall",
    "analysis.208.wide_auroc",
    "analysis.208.wide_flagged",
    "analysis.208.narrow_passed",
    "analysis.day.s",
    "analysis.day.over_read",
    "analysis.day.peak_rss_mib",
    *(ratio[0] for ratio in RATIOS),  # start-up, parsing and threads (bench.speed)
)


@dataclass
class Row:
    """One measured number (and its p95 where it is a distribution) beside its target."""

    id: str
    label: str
    value: float | None
    unit: str
    p95: float | None = None
    target: str = ""
    met: bool | None = None  # None: no target, not measured, or a --quick run
    note: str = ""
    cpu_value: float | None = None  # the same in CPU seconds (or per CPU second): steadier on a busy machine


def _num(x: float | None, unit: str) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    if unit in ("beats/s",):
        return f"{x:,.0f}"
    if unit == "x":
        return f"{x:.2f}x" if x < 10 else f"{x:.1f}x"
    if unit == "ms":
        return f"{x:.0f}" if x >= 10 else f"{x:.1f}"
    return f"{x:.2f}" if x < 10 else f"{x:.1f}" if x < 100 else f"{x:,.0f}"


def markdown(rows: list[Row]) -> str:
    """The table docs/benchmarks.md shows: measured value (p50 / p95 where there are many), unit, target, note."""
    lines = ["| row | measured | unit | CPU-time basis | target | met | note |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        value = _num(r.value, r.unit) + ("" if r.p95 is None else f" / {_num(r.p95, r.unit)}")
        met = {True: "yes", False: "**no**", None: ""}[r.met]
        cpu = "" if r.cpu_value is None else _num(r.cpu_value, r.unit)
        lines.append(f"| {r.label} | {value} | {r.unit} | {cpu} | {r.target} | {met} | {r.note} |")
    return "\n".join(lines)


def machine() -> dict:
    """Where and when: enough to tell a quiet run from a busy one."""
    import torch

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                check=False, cwd=Path(__file__).resolve().parent).stdout.strip()
    except OSError:
        commit = ""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "commit": commit,
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def write_json(path: Path, meta: dict, rows: list[Row], details: dict) -> None:
    """Rows, run settings and raw measurements as one JSON file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"meta": meta, "rows": [asdict(r) for r in rows], "details": details}
    path.write_text(json.dumps(payload, indent=2, default=_plain, allow_nan=False) + "\n")


def _plain(x):
    if hasattr(x, "tolist"):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")
