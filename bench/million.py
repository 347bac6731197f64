"""A million beats in one dashboard session: memory of the session's state, and the explorer's slider step.

    .venv/bin/python -m bench.million [--beats 1000000] [--steps 50] [--quick]

A beat pack of `--beats` ECG5000 beats (resampled, with a little noise, as `python -m ecgviz pack` writes it) is
put in a server data folder. A fresh process then does what a dashboard session does with it, through the same
functions: load it from the folder (ecgviz.dashboard.session.data_from_folder), score every beat with the shipped
model (errors only: the beat viewer reconstructs the beat it shows), build the ExplorerView and the live
chart's data, and take slider steps (bench.explorer_step.step: metrics, chart data, figures, the shown beat's
reconstruction, their JSON). It reports resident memory after each stage and the process's peak, and the step's
server time. The process includes Python, torch, plotly and pandas, as a dashboard server does.
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

import numpy as np

from bench.server_stats import memory_mib


def _rss_mb() -> float:
    return memory_mib(os.getpid())["rss"]


def _peak_mb() -> float:
    # VmHWM is this program's own high-water mark; getrusage's maxrss would also count the parent's before exec
    return memory_mib(os.getpid())["hwm"]


def make_pack(path: Path, n: int, seed: int = 0) -> None:
    """n ECG5000 beats, resampled with noise, as a beat pack."""
    from ecgviz.io.data import load_ecg5000
    from ecgviz.io.pack import write_pack

    data = load_ecg5000()
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, data.n_beats, size=n)
    X = data.X[pick]
    for start in range(0, n, 100_000):  # noise a slice at a time: float64 noise for all would double the peak
        X[start:start + 100_000] += rng.normal(0, 0.01, size=(len(X[start:start + 100_000]), X.shape[1]))
    write_pack(path, X, np.asarray(data.labels)[pick])


def session_run(folder: str, name: str, steps: int) -> dict:
    """In this (fresh) process: what a session holds and does, with memory after each stage."""
    from bench.explorer_step import make_scene, time_steps
    from ecgviz.dashboard import config, session

    config.limit_torch_threads()
    os.environ[config.DATA_DIR_ENV] = folder
    out = {"start_mb": _rss_mb()}
    model = session.model_from_path(config.default_checkpoint_path(), source="shipped")
    out["model_mb"] = _rss_mb()
    started = time.perf_counter()
    data = session.data_from_folder(name)
    out["load_s"], out["loaded_mb"] = time.perf_counter() - started, _rss_mb()
    started = time.perf_counter()
    errors = session.scores(model, data)
    out["score_s"], out["scored_mb"] = time.perf_counter() - started, _rss_mb()
    scene = make_scene(errors, data.data.labels, lambda i: (data.data.X[i], session.reconstruction(model, data, i)),
                       data.data.class_names)
    out["evaluation_s"], out["evaluated_mb"] = scene.prepare_s, _rss_mb()
    out["steps"] = time_steps(scene, n_steps=steps)
    out["after_steps_mb"] = _rss_mb()
    out["peak_mb"] = _peak_mb()
    out["n_beats"] = data.data.n_beats
    out["beats_mb"] = data.data.X.nbytes / 2**20
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.million", description=__doc__.splitlines()[0])
    p.add_argument("--beats", type=int, default=1_000_000)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--quick", action="store_true", help="20,000 beats, 5 steps: checks the harness")
    p.add_argument("--child", nargs=2, metavar=("FOLDER", "NAME"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(session_run(*args.child, args.steps)))
        return 0
    if args.quick:
        args.beats, args.steps = 20_000, 5
    with tempfile.TemporaryDirectory(prefix="ecgviz-million-") as folder:
        name = f"beats_{args.beats}.npz"
        started = time.perf_counter()
        make_pack(Path(folder) / name, args.beats)
        made_s = time.perf_counter() - started
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        done = subprocess.run([sys.executable, "-m", "bench.million", "--steps", str(args.steps), "--child", folder,
                               name], capture_output=True, text=True, env=env, check=True)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        size_mb = (Path(folder) / name).stat().st_size / 2**20
    s = r["steps"]
    print(f"{r['n_beats']:,} beats of 140 samples; pack {size_mb:,.0f} MiB written in {made_s:.1f} s; "
          f"torch threads 1; {os.cpu_count()} cores")
    print("| stage | time | resident memory (MiB) |")
    print("|---|---|---|")
    print(f"| Python, torch, plotly, pandas and the shipped model loaded | | {r['model_mb']:,.0f} |")
    print(f"| beat pack loaded from the data folder ({r['beats_mb']:,.0f} MiB of float32) | {r['load_s']:.1f} s | "
          f"{r['loaded_mb']:,.0f} |")
    print(f"| every beat scored (errors only) | {r['score_s']:.1f} s | {r['scored_mb']:,.0f} |")
    print(f"| ExplorerView + live chart counts | {r['evaluation_s']:.1f} s | {r['evaluated_mb']:,.0f} |")
    print(f"| {s['steps']} slider steps (p50 / p95 server time; CPU p50 {s['cpu_p50_ms']:.1f} ms) | "
          f"{s['p50_ms']:.1f} / {s['p95_ms']:.1f} ms | "
          f"{r['after_steps_mb']:,.0f} |")
    print(f"| peak of the process | | {r['peak_mb']:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
