"""Archive scoring: `python -m ecgviz score` over many files, in one process and on 1 or 2 Dask workers.

    .venv/bin/python -m bench.archive [--files 40] [--beats 5000] [--workers 1 2] [--dir DIR] [--quick]

The archive is made from the bundled ECG5000 beats: each file holds `--beats` of them, shuffled and with a little
noise, as UCR-style TSV (the format a lab's own export most often has). Every run writes one CSV through the same
code the CLI uses (ecgviz.pipeline.batch), and the runs' CSVs must be byte-identical. Per-file overhead is measured on a
second archive of one-beat files, where the work per file is nil.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from ecgviz.checkpoint.store import SHIPPED_CHECKPOINT
from ecgviz.io.data import load_ecg5000
from ecgviz.pipeline import batch


def make_archive(folder: Path, n_files: int, beats: int, seed: int = 0) -> list[str]:
    """Write `n_files` TSV files of `beats` ECG5000 beats each (kept when already there)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = load_ecg5000()
    labels = data.labels
    paths = []
    for i in range(n_files):
        path = folder / f"holter_{i:03d}.tsv"
        paths.append(str(path))
        if path.exists():
            continue
        rng = np.random.default_rng(seed + i)
        pick = rng.integers(0, data.n_beats, size=beats)
        X = data.X[pick] + rng.normal(0, 0.01, size=(beats, data.length)).astype(np.float32)
        tmp = path.with_suffix(".part")
        with open(tmp, "w") as fh:
            for label, row in zip(labels[pick], X, strict=True):
                fh.write(label + "\t" + "\t".join(f"{v:.5g}" for v in row) + "\n")
        os.replace(tmp, path)
    return paths


def timed_run(paths: list[str], out: Path, workers: int | None) -> dict:
    """One scoring run (workers None: this process); the cluster's start-up is timed apart from the scoring."""
    options = batch.ScoreOptions(str(SHIPPED_CHECKPOINT))
    if workers is None:
        started = time.perf_counter()
        summary = batch.write_results(batch.score_serial(paths, options), out)
        return {"setup_s": 0.0, "score_s": time.perf_counter() - started, "n_beats": summary.n_beats}
    started = time.perf_counter()
    with batch.cluster_client(workers=workers) as client:
        client.wait_for_workers(workers)
        ready = time.perf_counter()
        summary = batch.write_results(batch.score_on_cluster(client, paths, options), out)
        done = time.perf_counter()
    return {"setup_s": ready - started, "score_s": done - ready, "n_beats": summary.n_beats}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.archive", description=__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=40)
    p.add_argument("--beats", type=int, default=5000, help="beats per file")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--overhead-files", type=int, default=40, help="one-beat files for the per-file overhead")
    p.add_argument("--dir", type=Path, help="where the archive is written (kept); default: a temporary folder")
    p.add_argument("--quick", action="store_true", help="4 files of 200 beats: checks the harness, times mean nothing")
    args = p.parse_args(argv)
    if args.quick:
        args.files, args.beats, args.overhead_files = 4, 200, 4
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory(prefix="ecgviz-archive-") as tmp:
        root = args.dir or Path(tmp)
        paths = make_archive(root / f"archive_{args.files}x{args.beats}", args.files, args.beats)
        tiny = make_archive(root / f"overhead_{args.overhead_files}x1", args.overhead_files, 1)
        rows, outputs = [], []
        for workers in [None, *args.workers]:
            out = Path(tmp) / f"scores_{workers or 0}.csv"
            run = timed_run(paths, out, workers)
            over = timed_run(tiny, Path(tmp) / f"overhead_{workers or 0}.csv", workers)
            outputs.append(out.read_bytes())
            rows.append((workers, run, over["score_s"] / len(tiny)))
        identical = all(o == outputs[0] for o in outputs)
    base = next(r[1]["score_s"] for r in rows if r[0] == 1) if 1 in args.workers else rows[0][1]["score_s"]
    n_beats = rows[0][1]["n_beats"]
    print(f"archive: {args.files} files x {args.beats} beats = {n_beats:,} beats; {os.cpu_count()} cores; "
          f"CSVs identical across runs: {identical}")
    print("| run | cluster start (s) | scoring (s) | beats/s | speed-up vs 1 worker | per-file overhead (ms) |")
    print("|---|---|---|---|---|---|")
    for workers, run, per_file in rows:
        name = "one process (no Dask)" if workers is None else f"Dask, {workers} worker{'s' * (workers > 1)}"
        print(f"| {name} | {run['setup_s']:.1f} | {run['score_s']:.1f} | {n_beats / run['score_s']:,.0f} | "
              f"{base / run['score_s']:.2f}x | {per_file * 1000:.0f} |")
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
