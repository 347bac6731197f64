"""Old default (40 epochs) against the new one (cap scaled to the data, early stopping) on sets unlike ECG5000.

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.defaults [--sets small long] [--seed 0]

Real beats, made from the bundled ECG5000 TRAIN file so that nothing needs downloading: "small" is 133 normal
and 67 abnormal beats drawn at random (the size of ECG200), "long" the same beats resampled to 1,400 samples
(long beats, as in CinCECGTorso). Prints one Markdown row per (set, setting): epochs run, why the run ended,
time, held-out AUROC and balanced accuracy, and the quality check's variance ratios.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy.signal import resample

from ecgviz.detectors.config import TrainConfig
from ecgviz.evaluation import quality
from ecgviz.io.data import BeatData, load_ecg5000
from ecgviz.pipeline.protocol import fit

SETTINGS = {"old default (40 epochs)": TrainConfig(epochs=40, patience=10), "new default": TrainConfig()}


def subsets(seed: int = 0) -> dict[str, BeatData]:
    """The small set and its long-beat version, from ECG5000's TRAIN file."""
    d = load_ecg5000()
    train = d.sources == "ECG5000_TRAIN.arff"
    X, y = d.X[train], d.labels[train]
    rng = np.random.default_rng(seed)
    idx = np.concatenate([rng.choice(np.flatnonzero(y == "1"), 133, replace=False),
                          rng.choice(np.flatnonzero(y != "1"), 67, replace=False)])
    names = {k: v for k, v in d.class_names.items()}

    def make(X_, name):
        return BeatData(X_.astype(np.float32), y[idx], names, np.full(len(idx), name), np.arange(len(idx)))

    return {"small": make(X[idx], "ecg5000_small.arff"),
            "long": make(resample(X[idx], 1400, axis=1), "ecg5000_small_long.arff")}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.defaults", description=__doc__.splitlines()[0])
    p.add_argument("--sets", nargs="+", default=["small", "long"], choices=["small", "long"])
    p.add_argument("--seed", type=int, default=0, help="which beats are drawn")
    args = p.parse_args(argv)
    data = subsets(args.seed)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), load average "
          f"{', '.join(f'{x:.1f}' for x in __import__('os').getloadavg())}")
    print("| set | setting | epochs (cap) | ended by | time | held-out AUROC | balanced acc. | variance kept "
          "(along / across beats) | flagged |")
    print("|---|---|---|---|---|---|---|---|---|")
    for set_name in args.sets:
        for label, tc in SETTINGS.items():
            t0 = time.perf_counter()
            ckpt = fit(data[set_name], ["1"], None, tc)
            took = time.perf_counter() - t0
            m, q = ckpt.metrics, quality.from_metrics(ckpt.metrics)
            print(f"| {set_name} ({data[set_name].length} samples) | {label} | {len(ckpt.history)} "
                  f"({ckpt.train_config['epoch_cap']}) | {ckpt.train_config['ended_by']} | {took:.1f} s | "
                  f"{m['auroc']:.4f} | {m['balanced_accuracy']:.4f} | {q.within_ratio:.1%} / {q.across_ratio:.1%} | "
                  f"{'yes' if q.degenerate else 'no'} |", flush=True)


if __name__ == "__main__":
    main()
