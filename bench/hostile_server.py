"""Attacks on the service, the workspaces and the command line, measured: what one client costs the server.

    .venv/bin/python -m bench hostile-server [--before TREE] [--quick] [--out PATH]

Each service attack runs against a fresh ``python -m ecgviz serve`` (the shipped model) on a free local port:
the answer's status and time, the server's peak resident memory while it lasted (VmRSS from /proc, sampled every
10 ms, MiB), and the slowest ``/health`` answer meanwhile (a second client asks every 0.1 s). The command-line
attacks run ``python -m ecgviz`` and report exit status, time and stderr lines; the workspace attacks use the
workspace store in a subprocess. `--before TREE` runs every attack on another checkout's code too (e.g. an
unpacked older commit) and prints "before -> after" in each cell. Times are capped (`--cap`): a cell reading
"> 60 s" was still waiting when the cap ended it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bench.hostile_requests import (
    MIB,
    echo_and_types,
    garbage_first_line,
    half_sent_head,
    many_rows_csv,
    real_beats_body,
    service_case,
    stalled_body,
    zeros_beat_body,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


def log(message: str) -> None:
    """Progress on stderr, with the time."""
    print(f"[hostile_server {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the command line ------------------------------------------------------------------------------------------------
def cli(tree: Path, args: list[str], cap: float, env: dict | None = None) -> dict:
    """`python -m ecgviz ARGS` in `tree`: exit status, seconds (None past the cap), stderr lines."""
    t0 = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-m", "ecgviz", *args], cwd=tree, capture_output=True, text=True,
                              timeout=cap, env={**os.environ, "PYTHONPATH": str(tree), **(env or {})})
    except subprocess.TimeoutExpired:
        return {"status": "still running", "seconds": None}
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    return {"status": f"exit {done.returncode}", "seconds": time.perf_counter() - t0, "stderr_lines": len(lines),
            "last_line": lines[-1][:200] if lines else ""}


@contextlib.contextmanager
def talker(silent: bool = False) -> int:
    """A TCP service that is not Dask: it answers every connection with an HTTP error (or, `silent`, with nothing)
    and keeps it open."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        held = []
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            if not silent:
                with contextlib.suppress(OSError):
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            held.append(conn)
        for conn in held:
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        server.close()


def closed_port() -> int:
    """A local port nothing listens on."""
    from bench.service import free_port

    return free_port()


# -- workspaces ------------------------------------------------------------------------------------------------------
WORKSPACE_SCRIPT = r"""
import json, os, stat, sys, tempfile
from pathlib import Path
from ecgviz.dashboard import session
from ecgviz.dashboard.workspace import WorkspaceStore
from tests.helpers import synthetic_beats, write_arff
tmp = Path(tempfile.mkdtemp())
X, labels = synthetic_beats(n_normal=500, n_anomaly=100, length=140, seed=0)
raw = write_arff(tmp / "u.arff", X, labels).read_bytes()
cap = 10 * len(raw)
store = WorkspaceStore(tmp / "ws", max_bytes_each=4 * len(raw), max_bytes_total=cap)
def du(p):
    return sum(f.stat().st_size for f in Path(p).rglob("*") if f.is_file())
made, most = [], 0
for i in range(30):  # one visitor, 30 tabs, each uploading its own file
    ws = store.new()
    store.attach(ws, f"tab-{i}")
    files = [(f"u{i}.arff", raw)]
    ws.set_data(session.data_from_uploads(files), files)
    made.append(ws)
    most = max(most, du(tmp / "ws"))
store.sweep()
total = du(tmp / "ws")
live_gone = sum(not ws.dir.exists() for ws in made)
upload = next((tmp / "ws").rglob("data/*/00"), None)
ws = store.new()
held = ws.disk_bytes()
(ws.dir / "data").mkdir(parents=True, exist_ok=True)
(ws.dir / "data" / ".00.0badf00d.tmp").write_bytes(b"x" * len(raw))  # a write killed half-way
print(json.dumps({"over_cap": total / cap, "most_over_cap": most / cap, "live_deleted": live_gone,
                  "root_mode": oct(stat.S_IMODE((tmp / "ws").stat().st_mode)),
                  "upload_mode": oct(stat.S_IMODE(upload.stat().st_mode)) if upload else None,
                  "tmp_counted": ws.disk_bytes() - held >= len(raw)}))
"""


def workspaces(tree: Path, cap: float) -> dict:
    """30 tabs of one visitor upload a file each under a 10-file total cap; the files' modes; a killed write."""
    done = subprocess.run([sys.executable, "-c", WORKSPACE_SCRIPT], cwd=tree, capture_output=True, text=True,
                          timeout=cap * 5, env={**os.environ, "PYTHONPATH": f"{tree}:{ROOT}"})
    if done.returncode:
        return {"status": "failed", "error": done.stderr.strip().splitlines()[-1][:200]}
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the table -------------------------------------------------------------------------------------------------------
def cases(quick: bool, cap: float) -> list[tuple[str, Callable[[Path], dict]]]:
    """(label, run(tree) -> measurements) of every attack."""
    size = 2 * MIB if quick else 32 * MIB - 4096  # within the 32 MiB body limit
    rows = many_rows_csv(size)
    n_rows = rows.count(b"\n")
    out = [
        (f"/score: one beat of {size // 2 // 1000:,}k zeros ({size / MIB:.0f} MiB)",
         lambda t: service_case(t, "/score", [(zeros_beat_body(size), "application/json")], cap)),
        ("/score: four of those at once",
         lambda t: service_case(t, "/score", [(zeros_beat_body(size), "application/json")] * 4, cap)),
        ("/score: 10,000 real beats (accepted)",
         lambda t: service_case(t, "/score", [(real_beats_body(100 if quick else 10_000), "application/json")],
                                cap)),
        (f"/score/file: {n_rows:,} beats ({size / MIB:.0f} MiB CSV)",
         lambda t: service_case(t, "/score/file", [(rows, "multipart")], cap)),
        (f"/score/file: {size / MIB:.0f} MiB CSV refused at line 1",
         lambda t: service_case(t, "/score/file", [(garbage_first_line(size), "multipart")], cap)),
        ("half-sent request head", lambda t: half_sent_head(t, cap)),
        ("body stalled after 10 of 1,000 bytes", lambda t: stalled_body(t, cap)),
        ("422 answers, threshold true, /docs", lambda t: echo_and_types(t, cap)),
        ("serve --threads 100000", lambda t: cli(t, ["serve", "--threads", "100000", "--port", "1"], cap)),
        ("serve --port 99999", lambda t: cli(t, ["serve", "--port", "99999"], cap)),
        ("serve --max-body-mb nan", lambda t: cli(t, ["serve", "--max-body-mb", "nan", "--port", "1"], cap)),
        ("score --workers 0", lambda t: cli(t, ["score", "--data", "data/ECG5000_TRAIN.arff", "--out",
                                                 os.devnull, "--workers", "0"], cap)),
        ("score --scheduler ucx://", lambda t: cli(t, ["score", "--data", "data/ECG5000_TRAIN.arff", "--out",
                                                        os.devnull, "--scheduler", "ucx://127.0.0.1:1"], cap)),
        ("score --scheduler at a non-Dask service", lambda t: _with_talker(t, cap)),
        ("score --scheduler at a silent service", lambda t: _with_talker(t, cap, silent=True)),
        ("evaluate --mlflow at a closed port",
         lambda t: cli(t, ["evaluate", "--mlflow", f"http://127.0.0.1:{closed_port()}"], cap)),
        ("workspaces: 30 tabs, one visitor", lambda t: workspaces(t, cap)),
    ]
    return out


def _with_talker(tree: Path, cap: float, silent: bool = False) -> dict:
    with talker(silent) as port:
        return cli(tree, ["score", "--data", "data/ECG5000_TRAIN.arff", "--out", os.devnull, "--scheduler",
                          f"tcp://127.0.0.1:{port}"], cap)


def cell(r: dict | None, cap: float) -> str:
    """One side of a table cell: status, time, memory and /health where measured."""
    if r is None:
        return ""
    if "over_cap" in r:
        return (f"disk up to {r['most_over_cap']:.1f}x the cap ({r['over_cap']:.1f}x after a sweep), "
                f"{r['live_deleted']} open workspaces deleted; root "
                f"{r['root_mode'][2:]}, upload {str(r['upload_mode'])[2:]}; killed write counted: "
                f"{'yes' if r['tmp_counted'] else 'no'}")
    if "echo" in r:
        return (f"unknown 1 MiB key: {r['echo']['status']}, {r['echo']['answer_bytes'] / MIB:.1f} MiB answer; "
                f"threshold true: {r['threshold_true']['status']}; /docs: {r['docs']['status']}")
    parts = [str(r.get("status", ""))]
    if "seconds" in r:
        parts.append(f"> {cap:.0f} s" if r["seconds"] is None else f"{r['seconds']:.1f} s")
    if r.get("peak_mib"):
        parts.append(f"peak {r['peak_mib']:,.0f} MiB (idle {r['idle_mib']:,.0f}, after {r['after_mib']:,.0f})")
    if r.get("health_worst_s") is not None:
        parts.append(f"/health {r['health_worst_s']:.2f} s")
    if "stderr_lines" in r:
        parts.append(f"{r['stderr_lines']} stderr line{'s' if r['stderr_lines'] != 1 else ''}")
    return ", ".join(parts)


def markdown(results: list[dict], cap: float) -> str:
    """The table: one row per attack, before -> after where both were run."""
    both = any("before" in r for r in results)
    head = "| attack | before | after |" if both else "| attack | measured |"
    lines = [head, "|---|---|---|" if both else "|---|---|"]
    for r in results:
        cells = [cell(r.get("before"), cap), cell(r["after"], cap)] if both else [cell(r["after"], cap)]
        lines.append(f"| {r['attack']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run every attack (on --before's tree first, where given), print the table, write the JSON."""
    p = argparse.ArgumentParser(prog="python -m bench hostile-server", description=__doc__.splitlines()[0])
    p.add_argument("--tree", type=Path, default=ROOT, help="the checkout whose ecgviz is attacked (default: this one)")
    p.add_argument("--before", type=Path, help="another checkout (its ecgviz) to run every attack on first")
    p.add_argument("--merge", type=Path, action="append", default=[],
                   help="take the 'before' side from earlier runs' JSON (their measurements; a later file wins)")
    p.add_argument("--quick", action="store_true", help="2 MiB bodies: checks the harness only")
    p.add_argument("--cap", type=float, default=90.0, help="seconds an attack may take before it is cut off")
    p.add_argument("--only", help="run only the attacks whose label contains this text")
    p.add_argument("--out", type=Path, help="also write the JSON here")
    args = p.parse_args(argv)
    from bench.report import machine

    earlier = {}
    for path in args.merge:
        earlier |= {r["attack"]: r["after"] for r in json.loads(path.read_text())["results"]}
    results = []
    for label, run in cases(args.quick, args.cap):
        if args.only and args.only not in label:
            continue
        row = {"attack": label}
        if label in earlier:
            row["before"] = earlier[label]
        for side, tree in (("before", args.before), ("after", args.tree)):
            if tree is not None:
                log(f"{label} ({side}: {tree})")
                row[side] = run(tree.resolve())
        results.append(row)
    table = markdown(results, args.cap)
    print(table)
    before = str(args.before) if args.before else [str(m) for m in args.merge]
    payload = json.dumps({"meta": {**machine(), "tree": str(args.tree), "before": before, "quick": args.quick,
                                   "cap_s": args.cap},
                          "results": results}, indent=2)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"hostile_server_{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(payload + "\n")
    if args.out:
        args.out.write_text(payload + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
