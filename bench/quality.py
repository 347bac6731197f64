"""Model quality: the default LSTM autoencoder beside the baselines, on the same held-out beats, over seeds.

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.quality [--seeds 0 1 2] [--epochs 40] [--quick]

For every seed the seeded 85/7.5/7.5 split of ECG5000's normals is made once; the default LSTM (pipeline.fit) and
each baseline (pipeline.fit_detector) fit on its training normals and are judged on its held-out normals and all
anomalies, at their own label-free threshold (p98 of their training normals' scores). The LSTM is also scored with
the plain L1 error (same weights), to show what the error measure changes. Prints a markdown table (mean over
seeds, per-seed values in brackets) and writes the raw numbers to bench/results/quality.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ecgviz.detectors import baselines as detectors
from ecgviz.detectors import threads
from ecgviz.detectors.config import DEFAULT_PERCENTILE, TrainConfig
from ecgviz.evaluation import intervals
from ecgviz.evaluation.split import protocol_split
from ecgviz.io.data import load_ecg5000
from ecgviz.pipeline.protocol import evaluate, fit, fit_detector, score_beats

BASELINES = {"kNN-5 (L2)": lambda: detectors.KNNDistance(5, "l2"), "kNN-5 (L1)": lambda: detectors.KNNDistance(5, "l1"),
             "PCA-8": lambda: detectors.PCAReconstruction(8)}


def _row(ev, fit_s: float) -> dict:
    m = ev.metrics
    return {"_scores": ev.errors, "_is_anomaly": ev.is_anomaly,
            "auroc": ev.auroc, "average_precision": ev.average_precision, "balanced_accuracy": m.balanced_accuracy,
            "normal_recall": m.normal_recall, "anomaly_recall": m.anomaly_recall, "threshold": m.threshold,
            "class_recall": dict(m.class_recall), "fit_s": fit_s, "n_normal": m.n_normal, "n_anomaly": m.n_anomaly,
            "auroc_ci": intervals.bootstrap_areas(ev.errors, ev.is_anomaly, n_boot=200)["auroc"]}


def run(seeds, epochs: int, log=sys.stderr) -> dict[str, list[dict]]:
    """{detector: [row per seed]}."""
    data = load_ecg5000()
    out: dict[str, list[dict]] = {}
    for seed in seeds:
        split = protocol_split(data, ["1"], seed=seed)
        started = time.perf_counter()
        ckpt = fit(data, ["1"], train_config=TrainConfig(seed=seed, epochs=epochs, device="cpu"))
        lstm_s = time.perf_counter() - started
        assert np.array_equal(ckpt.split.test, split.test)
        out.setdefault("LSTM autoencoder (default)", []).append(_row(evaluate(ckpt, data), lstm_s))
        # the same weights judged by the plain L1 error and its own p98 threshold: what the error measure changes
        plain = replace(ckpt, detector=copy.copy(ckpt.detector).set_params(error="l1"))
        t_plain = float(np.percentile(score_beats(plain, data.X[split.train]), DEFAULT_PERCENTILE))
        out.setdefault("LSTM autoencoder, plain L1 error", []).append(
            _row(evaluate(plain.with_threshold(t_plain), data), lstm_s))
        for name, make in BASELINES.items():
            started = time.perf_counter()
            b = fit_detector(data, make(), ["1"], split=split)
            out.setdefault(name, []).append(_row(evaluate(b, data), time.perf_counter() - started))
        # paired: the same resampled beats for both, so the interval is of the difference itself
        lstm = out["LSTM autoencoder (default)"][-1]
        for name in BASELINES:
            row = out[name][-1]
            point, ci = intervals.paired_auroc_difference(row["_scores"], lstm["_scores"], lstm["_is_anomaly"])
            row["auroc_minus_lstm"], row["auroc_minus_lstm_ci"] = point, ci
        for rows in out.values():
            rows[-1].pop("_scores"), rows[-1].pop("_is_anomaly")
        print(f"seed {seed} done", file=log, flush=True)
    return out


def table(results: dict[str, list[dict]]) -> str:
    """Markdown: mean over seeds, per-seed values in brackets."""
    def cell(rows, key, digits=4):
        v = [r[key] for r in rows]
        return f"{np.mean(v):.{digits}f} ({', '.join(f'{x:.{digits}f}' for x in v)})"

    lines = ["| detector | held-out AUROC | average precision | balanced acc. at p98 | normal recall | "
             "anomaly recall | fit time |", "|---|---|---|---|---|---|---|"]
    for name, rows in results.items():
        lines.append(f"| {name} | {cell(rows, 'auroc')} | {cell(rows, 'average_precision')} | "
                     f"{cell(rows, 'balanced_accuracy')} | {cell(rows, 'normal_recall', 3)} | "
                     f"{cell(rows, 'anomaly_recall', 3)} | {np.mean([r['fit_s'] for r in rows]):.2f} s |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run and print the table."""
    ap = argparse.ArgumentParser(prog="python -m bench.quality", description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=TrainConfig().epochs)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="one seed, 2 epochs: checks the harness, numbers mean nothing")
    ap.add_argument("--out", type=Path, default=Path("bench/results/quality.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    threads.force(args.threads)  # training and scoring jobs too (they choose per job otherwise)
    seeds, epochs = ([0], 2) if args.quick else (args.seeds, args.epochs)
    results = run(seeds, epochs)
    best = max((n for n in results if n in BASELINES), key=lambda n: np.mean([r["auroc"] for r in results[n]]))
    lstm = results["LSTM autoencoder (default)"]
    gap = np.mean([r["auroc"] for r in results[best]]) - np.mean([r["auroc"] for r in lstm])
    ba = np.mean([r["balanced_accuracy"] for r in lstm])
    print(table(results))
    print("\nAUROC of each baseline minus the default LSTM's, per seed, with a paired bootstrap 95 % interval:")
    for name in BASELINES:
        cells = [f"{r['auroc_minus_lstm']:+.4f} [{r['auroc_minus_lstm_ci'][0]:+.4f}, "
                 f"{r['auroc_minus_lstm_ci'][1]:+.4f}]" for r in results[name]]
        print(f"- {name}: " + "; ".join(cells))
    print(f"\nseeds {seeds}, {epochs} epochs. Best baseline by AUROC: {best}, {gap:+.4f} above the default LSTM "
          f"(target <= 0.001: {'met' if gap <= 0.001 else 'not met'}); default LSTM balanced accuracy {ba:.4f} "
          f"(target >= 0.98: {'met' if ba >= 0.98 else 'not met'}).")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"seeds": seeds, "epochs": epochs, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
