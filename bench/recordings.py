"""Recordings to beats: a 30-minute two-lead record, and a 24-hour recording from file to scored beats.

    .venv/bin/python -m bench.recordings [--hours 24] [--out PATH]

Each case runs in a fresh process so its peak memory (VmHWM) is its own. The 24-hour recording is
MIT-BIH record 100's MLII lead tiled to the length asked for, written as a WFDB record (format 16, no
annotations, so the R-peak detector runs) in a temporary folder. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.server_stats import memory_mib

ROOT = Path(__file__).resolve().parent.parent
MITDB = ROOT / "data" / "mitdb"


def _peak_rss_mb() -> float:
    # VmHWM is this program's own high-water mark; getrusage's maxrss would also count the parent's before exec
    return memory_mib(os.getpid())["hwm"]


def case_30min() -> dict:
    """Record 100 (two leads, 30 min 5 s, 360 Hz, format 212) to beats: with its annotations, and detected."""
    from ecgviz.io.recording import read_recording
    from ecgviz.signal.beats import cut_beats

    t0 = time.perf_counter()
    beats = cut_beats(read_recording(MITDB / "100.hea"))
    t_ann = time.perf_counter() - t0
    t0 = time.perf_counter()
    detected = cut_beats(read_recording(MITDB / "100.hea"), use_annotations=False)
    t_det = time.perf_counter() - t0
    return {"case": "30-min two-lead record 100 -> beats", "beats": beats.data.n_beats, "s_annotated": t_ann,
            "s_detected": t_det, "beats_detected": detected.data.n_beats, "peak_rss_mb": _peak_rss_mb()}


def case_day(folder: str, hours: float) -> dict:
    """File -> read -> filter -> detect -> cut -> score with the shipped model, in one process."""
    import torch

    from ecgviz.checkpoint.store import SHIPPED_CHECKPOINT, load_checkpoint
    from ecgviz.pipeline.protocol import score_beats
    from ecgviz.signal.recording_files import load_recording

    torch.set_num_threads(int(os.environ.get("ECGVIZ_TORCH_THREADS", "1")))
    ckpt = load_checkpoint(SHIPPED_CHECKPOINT)
    t0 = time.perf_counter()
    beats = load_recording([Path(folder) / "day.hea"], length=ckpt.seq_len)
    t_cut = time.perf_counter() - t0
    errors = score_beats(ckpt, beats.data.X)
    total = time.perf_counter() - t0
    return {"case": f"{hours:g}-hour single-lead 360 Hz -> scored beats", "samples": len(beats.filtered),
            "beats": beats.data.n_beats, "dropped": sum(beats.dropped_counts().values()), "s_to_beats": t_cut,
            "s_total": total, "scored": len(errors), "peak_rss_mb": _peak_rss_mb()}


def case_session(folder: str, hours: float) -> dict:
    """What a dashboard session keeps for the recording: beats, provenance, the strip's signal, scores."""
    import gc

    from ecgviz.dashboard import session
    from ecgviz.signal.recording_files import load_recording

    beats = load_recording([Path(folder) / "day.hea"])
    gc.collect()
    before = _current_rss_mb()
    active = session.data_from_recording(beats, "day")
    del beats
    gc.collect()
    data, view = active.data, active.recording
    held = {"beats_X": data.X.nbytes, "sources_rows": data.source_codes.nbytes + data.rows.nbytes,
            "origin": data.origin.nbytes(), "strip_signal": view.nbytes(),
            "scores": data.X.nbytes + 4 * data.n_beats}  # reconstructions (n, T) and errors (n,), float32
    return {"case": "dashboard session", "held_mb": {k: v / 2**20 for k, v in held.items()},
            "total_mb": sum(held.values()) / 2**20, "rss_after_drop_mb": _current_rss_mb() - before}


def _current_rss_mb() -> float:
    return memory_mib(os.getpid())["rss"]


def build_day(folder: str, hours: float) -> Path:
    """Record 100's MLII lead tiled to `hours` as a single-lead WFDB record day.hea/day.dat (format 16, no
    annotations) in `folder`; the path of day.hea."""
    import numpy as np
    import wfdb

    rec = wfdb.rdrecord(str(MITDB / "100"), channels=[0], physical=False)
    n = int(hours * 3600 * rec.fs)
    digital = np.resize(rec.d_signal[:, 0], n).astype(np.int16)[:, None]
    wfdb.wrsamp("day", fs=rec.fs, units=["mV"], sig_name=["MLII"], d_signal=digital, fmt=["16"],
                adc_gain=rec.adc_gain, baseline=rec.baseline, write_dir=folder)
    return Path(folder) / "day.hea"


def _child(case: str, *args: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    out = subprocess.run([sys.executable, "-m", "bench.recordings", "--case", case, *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hours", type=float, default=24.0)
    p.add_argument("--out", help="also write the JSON here")
    p.add_argument("--case", choices=("30min", "day", "session"), help=argparse.SUPPRESS)
    p.add_argument("--folder", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.case == "30min":
        print(json.dumps(case_30min()))
        return 0
    if args.case in ("day", "session"):
        case = case_day if args.case == "day" else case_session
        print(json.dumps(case(args.folder, args.hours)))
        return 0
    rows = [_child("30min")]
    with tempfile.TemporaryDirectory(prefix="ecgviz-bench-") as folder:
        build_day(folder, args.hours)
        size_mb = (Path(folder) / "day.dat").stat().st_size / 2**20
        day = _child("day", "--folder", folder, "--hours", str(args.hours))
        day["file_mb"] = size_mb
        rows.append(day)
        rows.append(_child("session", "--folder", folder, "--hours", str(args.hours)))
    print("| case | beats | time | peak RSS |")
    print("|---|---:|---:|---:|")
    r = rows[0]
    print(f"| {r['case']} (annotated R-peaks) | {r['beats']:,} | {r['s_annotated']:.2f} s | |")
    print(f"| {r['case']} (detected R-peaks) | {r['beats_detected']:,} | {r['s_detected']:.2f} s "
          f"| {r['peak_rss_mb']:.0f} MiB |")
    r = rows[1]
    print(f"| {r['case']} ({r['samples']:,} samples, {r['file_mb']:.0f} MB file) | {r['beats']:,} "
          f"| {r['s_to_beats']:.1f} s to beats, {r['s_total']:.1f} s scored | {r['peak_rss_mb']:.0f} MiB |")
    r = rows[2]
    parts = ", ".join(f"{k} {v:.0f}" for k, v in r["held_mb"].items())
    print(f"\nA dashboard session holding this recording keeps {r['total_mb']:.0f} MiB of arrays ({parts} MiB).")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
