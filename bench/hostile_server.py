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

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
MIB = 2**20


def log(message: str) -> None:
    """Progress on stderr, with the time."""
    print(f"[hostile_server {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- bodies ---------------------------------------------------------------------------------------------------------
def zeros_beat_body(size: int) -> bytes:
    """One beat of zeros, as many as fit in `size` bytes: `{"beats": [[0,0,...,0]]}`."""
    head, tail = b'{"beats": [[', b"0]]}"
    return head + b"0," * ((size - len(head) - len(tail)) // 2) + tail


def real_beats_body(n: int) -> bytes:
    """`n` ECG5000 beats (cycled), as a client would send them."""
    from ecgviz.io.data import load_ecg5000

    X = load_ecg5000().X
    return json.dumps({"beats": X[[i % len(X) for i in range(n)]].astype(float).tolist()}).encode()


def many_rows_csv(size: int, length: int = 140) -> bytes:
    """A CSV of `size` bytes: label 1 and `length` zeros per line, as many lines as fit."""
    line = ("1," + ",".join(["0"] * length) + "\n").encode()
    return line * (size // len(line))


def garbage_first_line(size: int) -> bytes:
    """A CSV refused at its first line (a word where numbers belong), padded to `size` bytes with beats."""
    head = b"this,is,not,a,beat\n"
    return head + many_rows_csv(size - len(head))


# -- measuring one request -------------------------------------------------------------------------------------------
class Sampler:
    """Peak VmRSS of a process (MiB) and the slowest /health answer (s), while the block runs."""

    def __init__(self, pid: int, url: str):
        self.pid, self.url = pid, url
        self.peak_mib = 0.0
        self.health_s: list[float] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._rss, daemon=True),
                         threading.Thread(target=self._health, daemon=True)]

    def _rss(self) -> None:
        from bench.server_stats import memory_mib

        while not self._stop.is_set():
            self.peak_mib = max(self.peak_mib, memory_mib(self.pid).get("rss", 0.0))
            self._stop.wait(0.01)

    def _health(self) -> None:
        import httpx

        with httpx.Client(timeout=300) as http:
            while not self._stop.is_set():
                t0 = time.perf_counter()
                with contextlib.suppress(httpx.HTTPError):
                    http.get(self.url + "/health")
                self.health_s.append(time.perf_counter() - t0)
                self._stop.wait(0.1)

    def __enter__(self) -> Sampler:
        for t in self._threads:
            t.start()
        time.sleep(0.2)
        return self

    def __exit__(self, *exc) -> None:
        time.sleep(0.2)
        self._stop.set()
        for t in self._threads:
            t.join(310)


def post_all(url: str, path: str, bodies: list[tuple[bytes, str]], cap: float) -> list[tuple[int | str, int]]:
    """POST each (body, content type) at once; (status or error, answer bytes) of each."""
    import httpx

    out: list = [None] * len(bodies)

    def one(i: int) -> None:
        body, ctype = bodies[i]
        try:
            with httpx.Client(timeout=cap) as http:
                if ctype == "multipart":
                    r = http.post(url + path, files={"file": ("big.csv", body, "text/csv")})
                else:
                    r = http.post(url + path, content=body, headers={"content-type": ctype})
            out[i] = (r.status_code, len(r.content))
        except httpx.TimeoutException:
            out[i] = ("timeout", 0)
        except httpx.HTTPError as exc:
            out[i] = (type(exc).__name__, 0)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def service_case(tree: Path, path: str, bodies: list[tuple[bytes, str]], cap: float) -> dict:
    """One attack on a fresh service: statuses, seconds, server peak and idle MiB, slowest /health."""
    from bench.server_stats import memory_mib
    from bench.service import running_service

    with running_service(root=tree, timeout=120) as service:
        idle = memory_mib(service.pid).get("rss")
        with Sampler(service.pid, service.url) as sampler:
            t0 = time.perf_counter()
            answers = post_all(service.url, path, bodies, cap)
            seconds = time.perf_counter() - t0
        after = memory_mib(service.pid).get("rss")
    return {"status": "/".join(sorted({str(s) for s, _ in answers})), "answer_bytes": max(n for _, n in answers),
            "seconds": seconds, "idle_mib": idle, "peak_mib": sampler.peak_mib, "after_mib": after,
            "health_worst_s": max(sampler.health_s, default=None)}


def half_sent_head(tree: Path, cap: float) -> dict:
    """A request head that never ends: seconds until the server closes the connection (None: still open)."""
    from bench.service import running_service

    with running_service(root=tree, timeout=120) as service:
        port = int(service.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
            s.settimeout(cap)
            t0 = time.perf_counter()
            try:
                closed = s.recv(1024) is not None
            except TimeoutError:
                closed = False
            except ConnectionResetError:
                closed = True
            seconds = time.perf_counter() - t0
    return {"status": "closed" if closed else "open", "seconds": seconds if closed else None}


def stalled_body(tree: Path, cap: float) -> dict:
    """A body that stops after 10 of its 1,000 bytes: seconds until an answer or a close (None: neither)."""
    from bench.service import running_service

    with running_service(root=tree, timeout=120) as service:
        port = int(service.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 1000\r\n\r\n{\"beats\":")
            s.settimeout(cap)
            t0 = time.perf_counter()
            try:
                answer = s.recv(1024)
            except TimeoutError:
                answer = None
            except ConnectionResetError:
                answer = b""
            seconds = time.perf_counter() - t0
    status = "open" if answer is None else (answer.split(b" ", 2)[1].decode() if answer else "closed")
    return {"status": status, "seconds": None if answer is None else seconds}


def echo_and_types(tree: Path, cap: float) -> dict:
    """A 1 MiB unknown key (is it sent back?), `"threshold": true`, and /docs' outside links."""
    import re

    import httpx

    from bench.service import running_service

    beat = [0.1] * 140
    with running_service(root=tree, timeout=120) as service, httpx.Client(base_url=service.url, timeout=cap) as http:
        key = "k" * MIB
        echo = http.post("/score", json={"beats": [beat], key: 1})
        true = http.post("/score", json={"beats": [beat], "threshold": True})
        docs = http.get("/docs").text
    outside = sorted({u for u in re.findall(r"https?://[^\"' )]+", docs) if "127.0.0.1" not in u})
    return {"echo": {"status": str(echo.status_code), "answer_bytes": len(echo.content)},
            "threshold_true": {"status": str(true.status_code)},
            "docs": {"status": f"{len(outside)} outside URLs", "urls": outside}}


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
