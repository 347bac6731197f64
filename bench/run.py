"""ecgviz against the classic per-beat loop, in one run: training, scoring, the slider, start-up, recording analysis.

    .venv/bin/python -m bench [--quick] [--device cpu|cuda] [--out PATH] [--no-browser]

Prints a markdown table on stdout (progress on stderr) and writes the JSON to bench/results/ and --out.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
# A shape measured beside the default on every run: ecgviz's training with one sample per LSTM step.
CANDIDATE = "emb=32,chunk=1"


@dataclass(frozen=True)
class Plan:
    """How much of each row to run: the full benchmark, or a quick pass that only proves every row works."""

    classic_beats: int = 300
    classic_warmup: int = 5
    train_limit: int | None = None  # training/validation/evaluation beats per part; None: the whole split
    epochs: int | None = None  # None: TrainConfig's default
    scoring_beats: int | None = None  # None: all 5,000
    scoring_repeats: int = 3
    steps: int = 50
    moves: int = 30
    cold_starts: int = 3
    warmup_moves: int = 2
    day_hours: float = 24.0  # the recording analysed from file to flags
    quick: bool = False


SECTIONS = ("training", "scoring", "explorer", "browser", "analysis", "speed")
QUICK = Plan(classic_beats=3, classic_warmup=1, train_limit=64, epochs=2, scoring_beats=256, scoring_repeats=1,
             steps=4, moves=3, cold_starts=1, warmup_moves=1, day_hours=0.05, quick=True)


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _met(quick: bool, ok: bool | None) -> bool | None:
    return None if quick or ok is None else bool(ok)


def run_training(plan: Plan, device: str, seed: int, rows: list, details: dict) -> None:
    """Classic loop, default training, candidate training: seconds per epoch and to the AUROC targets."""
    from bench.candidates import parse_spec
    from bench.report import Row
    from bench.training import classic_epoch, ecgviz_training, protocol
    from ecgviz.detectors.config import ModelConfig, TrainConfig
    from ecgviz.io.data import load_ecg5000

    data = load_ecg5000()
    p = protocol(data, seed, limit=plan.train_limit)
    _log(f"training: classic per-beat loop, {plan.classic_beats} beats on {device}")
    classic = classic_epoch(p, plan.classic_beats, device, warmup=plan.classic_warmup)
    extra = {} if plan.epochs is None else {"epochs": plan.epochs}
    _log("training: ecgviz defaults, held-out AUROC after every epoch")
    default = ecgviz_training(p, ModelConfig(), TrainConfig(device=device, **extra))
    cand_model, cand_train = parse_spec(CANDIDATE)
    _log(f"training: candidate {CANDIDATE}")
    candidate = ecgviz_training(p, cand_model, replace(cand_train, device=device, **extra))
    details["training"] = {"classic": classic, "default": default, "candidate": candidate, "candidate_spec": CANDIDATE}

    n = classic["epoch_beats"]
    rows.append(Row("training.classic.s_per_epoch",
                    "Training, classic loop (batch 1, Adam 1e-3, emb 128, chunk 1, L1 sum)",
                    classic["s_per_epoch"], "s/epoch", cpu_value=classic["cpu_s_per_epoch"],
                    note=f"{classic['beats_timed']} beats timed, scaled to one epoch of {n:,} training normals"))
    rows.append(Row("training.default.s_per_epoch", f"Training, ecgviz default ({_shape(ModelConfig())}, "
                    f"batch {TrainConfig().batch_size}, Adam {_lr(TrainConfig().lr)} {TrainConfig().lr_schedule})",
                    default["s_per_epoch"], "s/epoch", cpu_value=default["cpu_s_per_epoch"],
                    note=f"{default['epochs_run']} epochs; held-out AUROC kept {_f(default['kept_auroc'])}"))
    # the targets: 0.99 within 60 s on a 2-core CPU, within 10 s on an H100-class GPU
    for target, limit in (("0.98", 180.0), ("0.99", 10.0 if device == "cuda" else 60.0)):
        hit = default["reached"][target]
        rows.append(Row(f"training.default.s_to_auroc_{target}", f"Training, ecgviz default: to AUROC {target}",
                        None if hit is None else hit["s"], "s", cpu_value=None if hit is None else hit["cpu_s"],
                        target=f"<= {limit:g} s", met=_met(plan.quick, hit is not None and hit["s"] <= limit),
                        note=_reached_note(hit, default)))
    rows.append(Row("training.speedup_per_epoch", "Training speed-up per epoch (classic / ecgviz)",
                    _ratio(classic["s_per_epoch"], default["s_per_epoch"]), "x",
                    cpu_value=_ratio(classic["cpu_s_per_epoch"], default["cpu_s_per_epoch"])))
    hit = default["reached"]["0.99"]
    rows.append(Row("training.classic_epoch_over_default_to_0.99",
                    "Speed-up to AUROC 0.99, lower bound (one classic epoch / ecgviz to 0.99)",
                    _ratio(classic["s_per_epoch"], hit and hit["s"]), "x",
                    note="the classic loop needs more than one epoch to get there"))
    with _one_thread():
        _log("training: ecgviz defaults on one torch thread, 2 epochs")
        one = ecgviz_training(p, ModelConfig(), TrainConfig(device=device, epochs=2))
    details["training"]["default_1_thread"] = one
    rows.append(Row("training.default_1_thread.s_per_epoch", "Training, ecgviz default, one torch thread",
                    one["s_per_epoch"], "s/epoch", cpu_value=one["cpu_s_per_epoch"],
                    note="2 epochs; compare with the default row's thread count"))
    hit = candidate["reached"]["0.99"]
    rows.append(Row("training.candidate.s_to_auroc_0.99", f"Training, {_shape(cand_model)}: to AUROC 0.99",
                    None if hit is None else hit["s"], "s", cpu_value=None if hit is None else hit["cpu_s"],
                    note=_reached_note(hit, candidate) + f"; {candidate['s_per_epoch']:.2f} s/epoch, AUROC kept "
                                                         f"{_f(candidate['kept_auroc'])}"))


@contextlib.contextmanager
def _one_thread():
    """Every job on one torch thread for the block (ecgviz.detectors.threads chooses otherwise)."""
    from ecgviz.detectors import threads

    before = threads.forced()
    threads.force(1)
    try:
        yield
    finally:
        threads.force(before)


def _lr(lr: float) -> str:
    return f"{lr:.0e}".replace("e-0", "e-")


def _shape(config) -> str:
    return f"emb {config.embedding_dim}, chunk {config.chunk}"


def _f(x: float | None) -> str:
    return "—" if x is None else f"{x:.4f}"


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def _reached_note(hit: dict | None, run: dict) -> str:
    if hit is None:
        return f"not reached in {run['epochs_run']} epochs (best {_f(run['best_auroc'])})"
    return f"epoch {hit['epoch']}; AUROC evaluation time excluded"


def run_scoring(plan: Plan, device: str, rows: list, details: dict) -> None:
    """Beats per second for the default model, the classic width, the candidate, and one thread."""
    from bench.candidates import parse_spec
    from bench.report import Row
    from bench.scoring import scoring_speed
    from bench.training import CLASSIC_MODEL
    from ecgviz.detectors.config import ModelConfig
    from ecgviz.io.data import load_ecg5000

    X = load_ecg5000().X[: plan.scoring_beats]
    out = {}
    shapes = {"default": ModelConfig(), "emb128": CLASSIC_MODEL, "candidate": parse_spec(CANDIDATE)[0]}
    for key, config in shapes.items():
        _log(f"scoring: {key} on {device}, {len(X):,} beats")
        out[key] = scoring_speed(X, config, device, repeats=1 if key == "emb128" else plan.scoring_repeats)
    with _one_thread():
        _log("scoring: default on one thread")
        out["default_1_thread"] = scoring_speed(X, ModelConfig(), device, repeats=plan.scoring_repeats)
    details["scoring"] = out
    labels = {"default": f"Scoring, ecgviz default ({_shape(shapes['default'])})",
              "emb128": f"Scoring, classic shape ({_shape(CLASSIC_MODEL)})",
              "candidate": f"Scoring, {_shape(shapes['candidate'])}",
              "default_1_thread": "Scoring, ecgviz default, one torch thread"}
    for key, r in out.items():
        target = ">= 20,000" if key == "default" else ""
        rows.append(Row(f"scoring.{key}.beats_per_s", labels[key], r["beats_per_s"], "beats/s",
                        cpu_value=r["beats_per_cpu_s"], target=target,
                        met=_met(plan.quick, r["beats_per_s"] >= 20_000) if target else None,
                        note=f"{r['n_beats']:,} beats, {r['threads']} thread(s), {r['device']}, errors and "
                             f"reconstructions"))


def run_explorer(plan: Plan, rows: list, details: dict) -> None:
    """Server-side slider step at 5,000 real and 100,000 synthetic beats."""
    # the app's plotly template: st.plotly_chart sends it with every figure
    from streamlit.elements.lib.streamlit_plotly_theme import configure_streamlit_plotly_theme

    from bench.explorer_step import ecg5000_scene, synthetic_scene, time_steps
    from bench.report import Row

    configure_streamlit_plotly_theme()
    _log("explorer: scoring the bundled beats with the shipped model")
    real = ecg5000_scene()
    out = {"5k": time_steps(real, plan.steps)}
    _log("explorer: 100,000 synthetic beats")
    out["100k"] = time_steps(synthetic_scene(real, 100_000), plan.steps)
    details["explorer"] = out
    for key, r in out.items():
        target = "<= 30 ms (p50)" if key == "5k" else ""
        rows.append(Row(f"explorer.step_ms.{key}", f"Slider step, server side, {r['n_beats']:,} beats",
                        r["p50_ms"], "ms", p95=r["p95_ms"], cpu_value=r["cpu_p50_ms"], target=target,
                        met=_met(plan.quick, r["p50_ms"] <= 30) if target else None,
                        note=f"metrics + chart data + 4 figures + JSON: build {r['build_p50_ms']:.0f} ms, JSON "
                             f"{r['serialise_p50_ms']:.0f} ms ({r['json_bytes'] / 1e3:.0f} kB); "
                             f"{r['steps']} steps"))


def run_browser(plan: Plan, rows: list, details: dict, skip_reason: str | None, threads: int | None) -> None:
    """Round trips and cold starts in Chromium, dashboard beside the empty app."""
    from bench.report import Row

    if skip_reason is None:
        from bench.browser import measure

        _log(f"browser: {plan.cold_starts} cold start(s) and {plan.moves} slider moves per app")
        out = measure(moves=plan.moves, cold_starts=plan.cold_starts, warmup_moves=plan.warmup_moves,
                      threads=threads)
        details["browser"] = out
    else:
        out = {"dashboard": {}, "empty": {}}
    d, e = out["dashboard"], out["empty"]
    note = skip_reason or f"key press to updated figure, {plan.moves} moves; apps measured in turns"
    rows.append(Row("browser.round_trip_ms.dashboard", "Slider round trip in Chromium, dashboard",
                    d.get("round_trip_p50_ms"), "ms", p95=d.get("round_trip_p95_ms"), note=note))
    rows.append(Row("browser.round_trip_ms.empty", "Slider round trip in Chromium, empty app (one slider, one number)",
                    e.get("round_trip_p50_ms"), "ms", p95=e.get("round_trip_p95_ms"), note=note))
    ratio = _ratio(d.get("round_trip_p95_ms"), e.get("round_trip_p95_ms"))
    rows.append(Row("browser.round_trip_p95_ratio", "Round trip p95, dashboard / empty app", ratio, "x",
                    target="<= 1.3x", met=_met(plan.quick, None if ratio is None else ratio <= 1.3),
                    note=skip_reason or ""))
    rows.append(Row("browser.server_update_ms.dashboard",
                    "Slider key press to the server's update (metric cards, ROC/PR, sidebar), dashboard",
                    d.get("cards_p50_ms"), "ms", p95=d.get("cards_p95_ms"),
                    note=skip_reason or "the figure moves in the browser; the server gets the value once the "
                                        "slider rests 120 ms"))
    note = skip_reason or (f"`streamlit run` to first chart drawn (empty app: the number); median of "
                           f"{plan.cold_starts} restarts, the disk cache filled by the first start")
    rows.append(Row("browser.cold_start_s.dashboard", "Cold start, dashboard", d.get("cold_start_s"), "s", note=note))
    rows.append(Row("browser.cold_start_s.empty", "Cold start, empty app", e.get("cold_start_s"), "s", note=note))
    ratio = None if d.get("cold_start_s") is None else d["cold_start_s"] / e["cold_start_s"]
    rows.append(Row("browser.cold_start_ratio", "Cold start, dashboard / empty app", ratio, "x",
                    target="<= 1.2x", met=_met(plan.quick, None if ratio is None else ratio <= 1.2),
                    note=skip_reason or ""))
    first = None if d.get("first_start_s") is None else d["first_start_s"] / e["first_start_s"]
    rows.append(Row("browser.first_start_ratio", "First start (empty disk cache), dashboard / empty app", first, "x",
                    note=skip_reason or "a fresh install: the bundled files parsed, the model's card and "
                                        "scores read from its shipped start-up file"))


def run_analysis(plan: Plan, rows: list, details: dict) -> None:
    """`analyze` on record 100 (.atr hidden) and the 208 excerpt against the issue's targets; a day from file."""
    from bench.analyze import measure
    from bench.report import Row

    _log(f"analysis: records 100 and 208, then {plan.day_hours:g} hours from file")
    m = measure(plan.day_hours, choices=False)
    details["analysis"] = m
    e100, e208, day = m["100"]["after"], m["208"]["after"], m["day"]

    def row(id_, label, value, unit, target, ok, note=""):
        rows.append(Row(id_, label, value, unit, target=target, met=_met(plan.quick, ok), note=note))

    ba = e100["balanced_accuracy"]
    row("analysis.100.balanced_accuracy", "analyze, record 100 (.atr hidden): balanced accuracy", ba, "",
        ">= 0.95", ba >= 0.95, f"before (sleepecg + kNN on all beats): {m['100']['before']['balanced_accuracy']:.3f}")
    s = e100["class_recall"]["S"]["recall"]
    row("analysis.100.s_recall", "analyze, record 100: S beats flagged", s, "", ">= 0.85", s >= 0.85,
        f"N passed {e100['class_recall']['N']['recall']:.4f}")
    auroc = e208["auroc"]
    row("analysis.208.wide_auroc", "analyze, 208 excerpt (CSV): AUROC wide vs narrow QRS", auroc, "", ">= 0.90",
        auroc >= 0.90, f"wide beats cut {e208['wide_cut']['value']:.3f}")
    wide = e208["abnormal_flagged"]["value"]
    row("analysis.208.wide_flagged", "analyze, 208 excerpt: wide-QRS beats flagged", wide, "", ">= 0.70",
        wide >= 0.70)
    narrow = e208["normal_passed"]["value"]
    row("analysis.208.narrow_passed", "analyze, 208 excerpt: narrow-QRS beats passed", narrow, "", ">= 0.90",
        narrow >= 0.90)
    row("analysis.day.s", f"analyze, {plan.day_hours:g}-hour 360 Hz lead from file", day["seconds"], "s",
        "<= 60 s", day["seconds"] <= 60, f"{day['beats']:,} beats")
    row("analysis.day.over_read", "analyze of that lead / reading its file with wfdb", _ratio(day["seconds"],
        day["read_s"]), "x", "", None, f"reading: {day['read_s']:.2f} s")
    row("analysis.day.peak_rss_mib", "analyze of that lead: peak memory (VmHWM)", day["peak_rss_mib"], "MiB",
        "<= 1536 MiB", day["peak_rss_mib"] <= 1536)


def speed_rows(quick: bool, log) -> tuple[list, dict]:
    """This tree's ratios as rows of `python -m bench` (its section "speed"), and the measurements."""
    import tempfile

    from bench.report import Row
    from bench.speed import RATIOS, ROOT, ecg_rows, measure, ratios, training

    with tempfile.TemporaryDirectory() as tmp:
        files = ecg_rows(Path(tmp), copies=1 if quick else 9)
        got = measure(ROOT, files, repeats=1 if quick else 3, log=log)
    got.update(training({"after": ROOT}, epochs=1 if quick else 5, repeats=1 if quick else 3, log=log)["after"])
    values, rows = ratios(got), []
    for key, label, num, _, target in RATIOS:
        value = values[key]
        met = None if quick or target is None or value is None else value <= target
        reads_ecg = key.startswith("parsing") and "refused" not in key
        note = (f"{got['parsing']['csv.rows']:,} ECG5000 rows" if reads_ecg else
                f"threads used: {got['train']['threads']}" if num.startswith("train/") else "")
        rows.append(Row(key, label, value, "MiB" if key.endswith("_mib") else "x",
                        target="" if target is None else f"<= {target:g}x", met=met, note=note))
    return rows, got


def main(argv: list[str] | None = None) -> int:
    """Run every row; print the table; write the JSON."""
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="every row, briefly: proves the harness, not the speed")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="for the training and scoring rows")
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    ap.add_argument("--no-browser", action="store_true", help="leave out the Chromium rows")
    ap.add_argument("--rows", default=",".join(SECTIONS),
                    help=f"comma-separated sections to run (default all: {','.join(SECTIONS)}); "
                         "a GPU machine without streamlit or Chromium runs training,scoring")
    ap.add_argument("--threads", type=int,
                    help="torch threads here and in the apps under test (default: ecgviz.detectors.threads' rule)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    sections = [s for s in args.rows.split(",") if s]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        ap.error(f"--rows: unknown section(s) {', '.join(unknown)}; use {','.join(SECTIONS)}")

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench: --device cuda: no CUDA device (torch.cuda.is_available() is False); "
              "run on a machine with an NVIDIA GPU and a CUDA build of torch, or leave out --device",
              file=sys.stderr)
        return 2
    if args.threads:
        from ecgviz.detectors import threads

        threads.force(args.threads)  # every training and scoring job, not only this thread
        torch.set_num_threads(args.threads)

    from bench.report import ROW_IDS, Row, machine, markdown, write_json

    plan = QUICK if args.quick else Plan()
    meta = {**machine(), "device": args.device, "quick": plan.quick, "plan": plan.__dict__, "seed": args.seed,
            "candidate": CANDIDATE}
    rows, details = [], {}
    started = time.perf_counter()
    if "training" in sections:
        run_training(plan, args.device, args.seed, rows, details)
    if "scoring" in sections:
        run_scoring(plan, args.device, rows, details)
    if "explorer" in sections:
        run_explorer(plan, rows, details)
    if "browser" in sections:
        from bench.browser import chromium_available

        skip = "left out (--no-browser)" if args.no_browser else (
            None if chromium_available() else "Chromium not found (install it at /usr/bin/chromium)")
        run_browser(plan, rows, details, skip, args.threads)
    if "analysis" in sections:
        run_analysis(plan, rows, details)
    if "speed" in sections:
        new_rows, details["speed"] = speed_rows(plan.quick, _log)
        rows += new_rows
    done = {r.id for r in rows}
    rows += [Row(i, i, None, "", note=f"left out (--rows {args.rows})") for i in ROW_IDS if i not in done]
    meta["load_average_end"] = machine()["load_average"]
    meta["elapsed_s"] = time.perf_counter() - started
    rows.sort(key=lambda r: ROW_IDS.index(r.id))

    stamp = time.strftime("%Y%m%d-%H%M%S")
    paths = [RESULTS / f"bench-{stamp}{'-quick' if plan.quick else ''}.json"] + ([args.out] if args.out else [])
    for path in paths:
        write_json(path, meta, rows, details)
    load = ", ".join(f"{x:.1f}" for x in meta["load_average"] or [])
    print(f"ecgviz benchmark{' (--quick: times mean nothing)' if plan.quick else ''}: {meta['cpu']}, "
          f"{meta['cores']} cores, torch {meta['torch']} ({meta['torch_threads']} threads), device {args.device}, "
          f"load average at start {load}, commit {meta['commit']}\n")
    print(markdown(rows))
    print(f"\nJSON: {', '.join(str(p) for p in paths)}  ({meta['elapsed_s']:.0f} s)")
    return 0
