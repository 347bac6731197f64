"""Concurrent sessions: one dashboard server, N browser sessions with their own data, sliders moving during training.

    .venv/bin/python -m bench.concurrency [--sessions 8] [--moves 20] [--quick] [--no-train] [--torch-threads N]
                                          [--server-arg=--runner.postScriptGC=false ...]

Each session uploads its own small labelled ARFF file (its own beat count and values), opens the threshold
explorer and moves the slider with the keyboard, all at the same time, while session 0 trains a small model
from the Model page and then moves its slider too. Prints a markdown table (progress on stderr), writes the
JSON to bench/results/ and exits 1 when a requirement is missed: p95 round trip over 300 ms, a session that
sees other data than its own, an error on a page, the start-up model loaded more than once, unfinished training.

A round trip runs from the keydown event to the first change of the explorer's metric texts, timed inside the
page. Memory is the server process's resident set from /proc (VmRSS; VmHWM for the peak).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bench.server_stats import memory_mib, model_loads, server_pid
from bench.sessions import SessionResult, drive, log, make_files
from tests.browser_support import StreamlitServer, find_chromium

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
TARGET_P95_MS = 300.0


@dataclass
class Outcome:
    """The whole run: every session, memory, model loads and the settings it ran with."""

    sessions: list[SessionResult]
    moves: int
    files: list[dict]
    memory_mib: dict
    model_loads: dict | None
    wall_s: float
    settings: dict

    def round_trips(self, during_training: bool | None = None, cards: bool = False) -> np.ndarray:
        """Round trips (ms) of every session to the redrawn chart (or, with cards, to the server's metric cards):
        all, or only those pressed during (or outside) training."""
        t = (self.sessions[0].training or {}) if self.sessions else {}
        window = (t.get("started"), t.get("ended") or float("inf"))
        return np.array([ms for s in self.sessions
                         for ms, at in zip(s.cards_ms if cards else s.round_trips_ms, s.pressed_at, strict=True)
                         if during_training is None or (window[0] is not None and window[0] <= at <= window[1])
                         == during_training], dtype=float)

    def stats(self, during_training: bool | None = None, cards: bool = False) -> dict:
        """p50, p95 and max round trip (ms), how many were measured and how many never showed a change."""
        rt = self.round_trips(during_training, cards)
        pct = (lambda q: float(np.percentile(rt, q))) if rt.size else (lambda q: None)
        return {"n": int(rt.size), "timeouts": sum(s.timeouts for s in self.sessions),
                "p50_ms": pct(50), "p95_ms": pct(95), "max_ms": float(rt.max()) if rt.size else None}

    def training(self) -> dict | None:
        """The trainer session's training record, with how many round trips of the others fell inside it."""
        trainer = next((s for s in self.sessions if s.trainer), None)
        if trainer is None or trainer.training is None:
            return None
        t = dict(trainer.training)
        if t.get("started") is not None and t.get("ended") is not None:
            t["moves_during"] = sum(t["started"] <= p <= t["ended"] for s in self.sessions for p in s.pressed_at)
        return t

    def isolation_problems(self) -> list[str]:
        """Every place a session saw anything but its own data, and every missing check."""
        names = {s.name for s in self.sessions}
        shipped = {m for s in self.sessions if not s.trainer for m in s.model_names}
        found = []
        for s, f in zip(self.sessions, self.files, strict=True):
            own = f"{s.n_beats:,} beats of 140 samples"
            seen = s.data_captions + s.beat_captions
            if not s.data_captions or not s.beat_captions or not s.totals:
                found.append(f"session {s.index}: not every check ran")
            for text in seen:
                if s.name not in text or any(n in text for n in names - {s.name}):
                    found.append(f"session {s.index} ({s.name}) saw: {text!r}")
            found += [f"session {s.index}: sidebar says {c!r}" for c in s.data_captions if own not in c]
            for normal, anomaly in s.totals:
                # a model trained on this data leaves its training and validation normals out of the metrics
                if anomaly != f"{f['n_anomaly']:,}" or (normal != f"{f['n_normal']:,}" and not s.trainer):
                    found.append(f"session {s.index}: totals {normal} / {anomaly}, expected {f['n_normal']} / "
                                 f"{f['n_anomaly']}")
            if s.trainer and any(m in shipped for m in s.model_names[1:]):
                found.append(f"session {s.index}: still shows the start-up model after training")
        if len(shipped) > 1:
            found.append(f"sessions show different start-up models: {sorted(shipped)}")
        return found

    def problems(self) -> list[str]:
        """Everything that misses the requirement except the timing."""
        found = self.isolation_problems()
        found += [f"session {s.index}: {s.failure}" for s in self.sessions if s.failure]
        found += [f"session {s.index}: error on the page: {e}" for s in self.sessions for e in s.page_errors]
        if self.model_loads is None or self.model_loads["misses"] != 1:
            found.append(f"start-up model loads (cache misses): {self.model_loads}")
        training = self.training()
        if self.settings.get("train", True) and (training is None or not training.get("finished")):
            found.append(f"training did not finish: {training}")
        return found

    def to_dict(self) -> dict:
        """JSON-ready record of the run."""
        return {"stats": self.stats(), "stats_during_training": self.stats(True),
                "cards_stats": self.stats(cards=True),
                "stats_outside_training": self.stats(False), "training": self.training(),
                "problems": self.problems(), "moves": self.moves,
                "memory_mib": self.memory_mib, "model_loads": self.model_loads, "wall_s": self.wall_s,
                "settings": self.settings, "files": self.files, "sessions": [asdict(s) for s in self.sessions]}


def run_scenario(sessions: int = 8, moves: int = 20, *, train: bool = True, env: dict | None = None,
                 server_args: tuple[str, ...] = (), artifacts: Path | None = None) -> Outcome:
    """Start a server, drive `sessions` browser sessions at once, and report what they saw and how fast."""
    if find_chromium() is None:
        raise RuntimeError("Chromium not found: the concurrency run needs a browser")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ecgviz-concurrency-") as tmp:
        files = make_files(Path(tmp) / "data", sessions)
        server_env = {"ECGVIZ_CHECKPOINT": None, "ECGVIZ_CHECKPOINT_DIR": str(Path(tmp) / "checkpoints"),
                      **(env or {})}
        (Path(tmp) / "checkpoints").mkdir()
        with StreamlitServer(ROOT / "app.py", env=server_env, extra_args=server_args) as server:
            pid = server_pid(server)
            memory = {"start": memory_mib(pid).get("rss")}
            results = asyncio.run(drive(server.url, files, moves, pid, memory, train=train, artifacts=artifacts))
            loads = model_loads(server.url)
            log_tail = server.log()[-4000:]
    # per session, once it has its data, a moved slider (and a trained model): every session is still open
    growth = None if None in (memory.get("before"), memory.get("after")) else memory["after"] - memory["before"]
    memory["growth_per_session"] = None if growth is None else growth / sessions
    return Outcome(results, moves, [{"name": f.name, "n_beats": f.n_beats, "n_normal": f.n_normal,
                                     "n_anomaly": f.n_anomaly} for f in files],
                   memory, loads, time.monotonic() - started,
                   {"env": dict(env or {}), "server_args": list(server_args), "train": train, "cpus": os.cpu_count(),
                    "load_avg": os.getloadavg(), "server_log_tail": log_tail})


def _num(x: float | None, fmt: str = ".0f") -> str:
    return "—" if x is None else format(x, fmt)


def _times(st: dict) -> str:
    return f"{_num(st['p50_ms'])} / {_num(st['p95_ms'])} / {_num(st['max_ms'])} ms ({st['n']} round trips)"


def meets_target(outcome: Outcome) -> bool:
    """The strict timing requirement: p95 round trip within TARGET_P95_MS, and every move answered."""
    st = outcome.stats()
    return st["p95_ms"] is not None and st["p95_ms"] <= TARGET_P95_MS and not st["timeouts"]


def table(outcome: Outcome) -> str:
    """The run as a markdown table: measure, value, requirement, met."""
    st, mem, tr, loads = outcome.stats(), outcome.memory_mib, outcome.training(), outcome.model_loads
    iso = outcome.isolation_problems()
    trained = "not asked" if not outcome.settings.get("train", True) else "no" if not tr or not tr.get("finished") \
        else f"yes, {tr['duration_s']:.1f} s ({tr['epochs']} epochs, embedding {tr['embedding']})"
    cpu = mem.get("server_cpu_s_during_moves")
    rows = [
        ("sessions x moves", f"{len(outcome.sessions)} x {outcome.moves}", "8 x 20", ""),
        ("slider round trip (key press to the redrawn threshold chart) p50 / p95 / max",
         _times(st) + (f", {st['timeouts']} never answered" if st["timeouts"] else ""),
         f"p95 <= {TARGET_P95_MS:.0f} ms", "yes" if meets_target(outcome) else "NO"),
        ("... while session 0 trains", _times(outcome.stats(True)), "", ""),
        ("... otherwise", _times(outcome.stats(False)), "", ""),
        ("key press to the server's metric cards (after the slider rests 120 ms) p50 / p95 / max",
         _times(outcome.stats(cards=True)), "", ""),
        ("server CPU while the sliders moved",
         "—" if cpu is None else f"{cpu:.1f} s in {mem['moves_wall_s']:.1f} s, {1000 * cpu / max(st['n'], 1):.0f} ms "
                                 "per round trip (training included)", "", ""),
        ("server RSS: start / warm (before) / sessions open / after / peak",
         " / ".join(_num(mem.get(k)) for k in ("start", "before", "sessions_open", "after", "peak")) + " MiB",
         "bounded", ""),
        ("RSS growth per session ((after - before) / sessions)", f"{_num(mem.get('growth_per_session'), '.1f')} MiB",
         "far below a model + scores copy", ""),
        ("start-up model loads (cache misses / hits)",
         "—" if loads is None else f"{loads['misses']} / {loads.get('hits', 0)}", "1 load, shared",
         "yes" if loads and loads["misses"] == 1 else "NO"),
        ("training in session 0 finished", trained, "yes", "" if not outcome.settings.get("train", True) else
         "yes" if tr and tr.get("finished") else "NO"),
        ("isolation (own file name, beat count, totals, model)",
         "ok" if not iso else f"{len(iso)} problems", "each sees only its own", "yes" if not iso else "NO"),
        ("errors on pages", str(sum(len(s.page_errors) for s in outcome.sessions)), "0",
         "yes" if not any(s.page_errors for s in outcome.sessions) else "NO"),
    ]
    lines = ["| measure | value | requirement | met |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    load = outcome.settings["load_avg"]
    lines.append(f"\n{outcome.settings['cpus']} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
                 f"at the end; wall time {outcome.wall_s:.0f} s; server env {outcome.settings['env'] or 'unchanged'}, "
                 f"arguments {outcome.settings['server_args'] or 'none'}; "
                 "Chromium runs on the same CPUs")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the scenario, print the table, write the JSON; 1 when a requirement is missed."""
    parser = argparse.ArgumentParser(prog="python -m bench.concurrency", description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=None, help="browser sessions (default 8; 4 with --quick)")
    parser.add_argument("--moves", type=int, default=None, help="slider moves per session (default 20; 5 with --quick)")
    parser.add_argument("--quick", action="store_true", help="a short run that proves every part works")
    parser.add_argument("--no-train", action="store_true", help="no training during the moves")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="OMP_NUM_THREADS for the server (default: the environment's)")
    parser.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                        help="extra `streamlit run` argument, e.g. --server-arg=--runner.postScriptGC=false")
    args = parser.parse_args(argv)
    sessions = args.sessions or (4 if args.quick else 8)
    moves = args.moves or (5 if args.quick else 20)
    env = {} if args.torch_threads is None else {"OMP_NUM_THREADS": str(args.torch_threads)}
    outcome = run_scenario(sessions, moves, train=not args.no_train, env=env, server_args=tuple(args.server_arg),
                           artifacts=RESULTS)
    print(table(outcome))
    problems = outcome.problems()
    for problem in problems:
        print(f"- {problem}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"concurrency-{time.strftime('%Y%m%d-%H%M%S')}.json"
    record = outcome.to_dict() | {"quick": args.quick, "target_p95_ms": TARGET_P95_MS}
    out.write_text(json.dumps(record, indent=2, default=str))
    log(f"wrote {out}")
    return 0 if not problems and meets_target(outcome) else 1


if __name__ == "__main__":
    sys.exit(main())
