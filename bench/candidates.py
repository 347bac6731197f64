"""Model search: held-out AUROC over seeds and scoring speed for candidate shapes and training settings.

    .venv/bin/python -m bench.candidates --spec emb=32 --spec emb=32,chunk=4 --seeds 0 1 2 [--threads 1]

Each spec is comma-separated key=value: emb, chunk (ModelConfig) and epochs, batch, lr, schedule, clip,
precision (TrainConfig; precision=bf16 autocasts on CUDA); the rest keep their defaults. One JSON line per
(spec, seed) goes to --out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from bench.scoring import scoring_speed
from bench.training import ecgviz_training, protocol
from ecgviz.detectors import threads
from ecgviz.detectors.config import ModelConfig, TrainConfig
from ecgviz.io.data import load_ecg5000

MODEL_KEYS = {"emb": ("embedding_dim", int), "chunk": ("chunk", int)}
TRAIN_KEYS = {"epochs": ("epochs", int), "batch": ("batch_size", int), "lr": ("lr", float),
              "schedule": ("lr_schedule", str), "clip": ("grad_clip", float), "patience": ("patience", int),
              "precision": ("precision", str)}


def parse_spec(spec: str, device: str = "cpu") -> tuple[ModelConfig, TrainConfig]:
    """'emb=16,chunk=4,lr=0.005' -> (ModelConfig, TrainConfig) on `device`."""
    model, train = {}, {"device": device}
    for item in filter(None, spec.split(",")):
        key, _, value = item.partition("=")
        if key in MODEL_KEYS:
            name, cast = MODEL_KEYS[key]
            model[name] = cast(value)
        elif key in TRAIN_KEYS:
            name, cast = TRAIN_KEYS[key]
            train[name] = cast(value)
        else:
            raise SystemExit(f"unknown key {key!r} in spec {spec!r}: use {sorted({**MODEL_KEYS, **TRAIN_KEYS})}")
    return ModelConfig(**model), TrainConfig(**train)


def main(argv: list[str] | None = None) -> int:
    """Run every spec for every seed; print one line each and append JSON lines to --out."""
    ap = argparse.ArgumentParser(prog="python -m bench.candidates", description=__doc__.splitlines()[0])
    ap.add_argument("--spec", action="append", required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--stop-at", type=float, default=None, help="end a run once the held-out AUROC reaches this")
    ap.add_argument("--out", type=Path, default=Path("bench/results/candidates.jsonl"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    threads.force(args.threads)  # training and scoring jobs too (they choose per job otherwise)
    data = load_ecg5000()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for spec in args.spec:
        model_config, train_config = parse_spec(spec, args.device)
        speed = scoring_speed(data.X, model_config, args.device, repeats=2)
        for seed in args.seeds:
            started = time.perf_counter()
            run = ecgviz_training(protocol(data, seed), model_config, train_config, stop_at=args.stop_at)
            r98, r99 = run["reached"]["0.98"], run["reached"]["0.99"]
            line = {"spec": spec, "seed": seed, "scoring": speed, **run, "wall_s": time.perf_counter() - started}
            with args.out.open("a") as f:
                f.write(json.dumps(line) + "\n")

            def fmt(r):
                return "never" if r is None else f"{r['s']:.0f}s/{r['cpu_s']:.0f}cpu@{r['epoch']}"

            print(f"{spec:<40} seed {seed}: {run['s_per_epoch']:.2f} s/epoch ({run['cpu_s_per_epoch']:.2f} cpu), "
                  f"0.98 {fmt(r98)}, 0.99 {fmt(r99)}, best {run['best_auroc']:.4f}, kept {run['kept_auroc']:.4f} "
                  f"(epoch {run['best_epoch']}/{run['epochs_run']}), scoring {speed['beats_per_s']:,.0f}/s "
                  f"({speed['beats_per_cpu_s']:,.0f}/cpu s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
