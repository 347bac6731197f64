"""What one more torch thread buys, per model size and batch, alone and beside a busy loop: the data behind
ecgviz.detectors.threads' rule.

    .venv/bin/python -m bench.threads [--quick] [--threads 1,2] [--seconds 1.0]

For model shapes and jobs (training steps, scoring batches) spanning 2 to 250 million multiply-adds per LSTM
step, it times the step on 1, 2, ... threads, first as the machine is, then beside one busy-loop process, and
prints each time as a ratio to the one-thread time measured in the same condition of the same run, with the job's
work beside it. Wall and CPU seconds both: a spinning thread shows as CPU time bought for nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

# (embedding, chunk, job, batch): the default model's own jobs, then wider models; 2 to 250 M mult-adds per step
CELLS = ((32, 10, "train", 32), (32, 10, "train", 256), (32, 10, "score", 1024), (64, 10, "train", 32),
         (64, 10, "train", 128), (128, 10, "train", 32), (64, 10, "score", 1024), (128, 10, "score", 256))


@contextlib.contextmanager
def busy_loops(n: int) -> Iterator[list[int]]:
    """`n` processes that spin a CPU core each until the block ends."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        time.sleep(0.5 if n else 0)  # let them reach the scheduler
        yield [p.pid for p in procs]
    finally:
        for p in procs:
            p.kill()
            p.wait()


def step_timer(shape: tuple[int, int], job: str, batch: int):
    """A function that runs one step of `job` (an Adam step, or a scoring batch) on a fresh model."""
    import torch

    from ecgviz.detectors.config import ModelConfig
    from ecgviz.detectors.lstm import RecurrentAutoencoder
    from ecgviz.detectors.train import beat_loss

    torch.manual_seed(0)
    model = RecurrentAutoencoder(ModelConfig(embedding_dim=shape[0], chunk=shape[1]))
    x = torch.randn(batch, 140, 1)
    if job == "score":
        model.eval()

        def run() -> None:
            with torch.inference_mode():
                model(x)
        return run
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        loss = beat_loss(model(x), x, "l1").mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def time_step(run, threads: int, seconds: float) -> tuple[float, float]:
    """(wall, CPU) seconds per step on `threads` threads: median over ~`seconds` of steps after one warm-up."""
    import torch

    torch.set_num_threads(threads)
    run()
    walls, cpus, started = [], [], time.perf_counter()
    while len(walls) < 3 or (time.perf_counter() - started < seconds and len(walls) < 200):
        w, c = time.perf_counter(), time.process_time()
        run()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


def grid(thread_counts: list[int], seconds: float, quick: bool, show=None) -> list[dict]:
    """Every cell x load x thread count, as dicts (each condition's rows passed to `show` as they come)."""
    from ecgviz.detectors.config import ModelConfig
    from ecgviz.detectors.threads import lstm_work

    rows = []
    for load in (0, 1):
        with busy_loops(load):
            for emb, chunk, job, batch in CELLS[:1] if quick else CELLS:
                run = step_timer((emb, chunk), job, batch)
                # the thread counts in turns, twice, so a change in the machine's load hits both alike
                times = {n: [] for n in thread_counts}
                for _ in range(1 if quick else 2):
                    for n in thread_counts:
                        times[n].append(time_step(run, n, seconds / 2))
                work = lstm_work(ModelConfig(embedding_dim=emb, chunk=chunk), batch)
                cell = [{"load": load, "shape": f"emb {emb}, chunk {chunk}", "job": job, "batch": batch,
                         "work": work, "threads": n, "wall_s": statistics.median(t[0] for t in times[n]),
                         "cpu_s": statistics.median(t[1] for t in times[n])} for n in thread_counts]
                rows += cell
                if show is not None:
                    show(cell)
    return rows


def header(thread_counts: list[int]) -> str:
    """The table's head: each thread count's time as a ratio to one thread's."""
    ratios = " | ".join(f"{n} threads / 1" for n in thread_counts[1:])
    return (f"| beside | model | job | work (M mult-adds/step) | 1-thread step | {ratios} |\n"
            + "|" + "---|" * (4 + len(thread_counts)))


def line(cell: list[dict]) -> str:
    """One table row: a cell's step time on n threads / on one thread (wall, and CPU time in brackets)."""
    one = cell[0]
    ratios = " | ".join(f"{r['wall_s'] / one['wall_s']:.2f}x ({r['cpu_s'] / one['cpu_s']:.2f}x CPU)" for r in cell[1:])
    return (f"| {'one busy loop' if one['load'] else 'nothing added'} | {one['shape']} | {one['job']}, batch "
            f"{one['batch']} | {one['work'] / 1e6:.1f} | {one['wall_s'] * 1e3:.1f} ms | {ratios} |")


def main(argv: list[str] | None = None) -> int:
    """Run the grid and print the table."""
    ap = argparse.ArgumentParser(prog="python -m bench.threads", description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2", help="thread counts to compare, the first being 1 (default 1,2)")
    ap.add_argument("--seconds", type=float, default=1.0, help="timing per cell (default 1 s)")
    ap.add_argument("--quick", action="store_true", help="one shape and job: proves the harness, not the speed")
    args = ap.parse_args(argv)
    counts = [int(x) for x in args.threads.split(",")]
    if counts[0] != 1:
        ap.error("--threads must start with 1 (every ratio is to one thread)")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"torch threads bench: {len(os.sched_getaffinity(0))} usable cores, load average at start {load}\n")
    print(header(counts), flush=True)
    grid(counts, args.seconds, args.quick, show=lambda cell: print(line(cell), flush=True))
    print(f"\nload average at end {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
