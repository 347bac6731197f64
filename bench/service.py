"""The scoring service under load: requests/s, beats/s and latency of ``python -m ecgviz serve`` over HTTP.

    .venv/bin/python -m bench.service [--clients 8] [--requests 50] [--beats 32] [--threads 1] [--quick]

Starts the service with the shipped model on a free local port (as ``python -m ecgviz serve`` does), then
`clients` threads each send `requests` POST /score requests of `beats` ECG5000 beats as JSON, one after another,
over one keep-alive connection each. A latency runs from sending a request to having parsed its answer. Prints a
markdown table (progress on stderr), writes the JSON to bench/results/, and exits 1 when any request failed.
The server's CPU time per request (from /proc) is steadier than the wall-clock rows on a busy machine.
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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


def free_port() -> int:
    """A local TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Service:
    """A running service: its base URL and process id."""

    url: str
    pid: int

    def cpu_s(self) -> float | None:
        """CPU seconds (user + system) the process has used so far; None where /proc cannot tell."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def running_service(*args: str, port: int | None = None, timeout: float = 60.0,
                    log_path: Path | None = None, root: Path = ROOT) -> Iterator[Service]:
    """Run ``python -m ecgviz serve ARGS`` on a free local port until the block ends (`root`: whose ecgviz)."""
    import httpx

    port = port or free_port()
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen([sys.executable, "-m", "ecgviz", "serve", "--port", str(port), *args], cwd=root,
                            env={**env, "PYTHONPATH": str(root)}, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the service exited with status {proc.returncode} before it answered")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the service did not answer /health within {timeout:.0f} s")
            time.sleep(0.1)
        yield Service(url, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log_path:
            log.close()


@dataclass
class LoadResult:
    """Every request's latency and outcome, and the wall time of the whole load."""

    latencies_s: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    errors: dict[int, list[list[float]]] = field(default_factory=dict)  # client -> the errors of each answer
    wall_s: float = 0.0


def load(url: str, payloads: Sequence[list[list[float]]], requests: int) -> LoadResult:
    """Client i sends payloads[i] `requests` times, all clients at once; a failure is any non-200 or bad body."""
    import httpx

    result = LoadResult()
    lock = threading.Lock()
    start = threading.Barrier(len(payloads))

    def client(i: int) -> None:
        body = json.dumps({"beats": payloads[i]})
        mine, lat, bad = [], [], []
        with httpx.Client(base_url=url, timeout=60.0, headers={"content-type": "application/json"}) as http:
            start.wait()
            for _ in range(requests):
                t0 = time.perf_counter()
                try:
                    r = http.post("/score", content=body)
                    answer = r.json()
                except (httpx.HTTPError, ValueError) as exc:
                    bad.append(f"client {i}: {type(exc).__name__}: {exc}")
                    continue
                lat.append(time.perf_counter() - t0)
                if r.status_code != 200 or answer.get("n_beats") != len(payloads[i]):
                    bad.append(f"client {i}: HTTP {r.status_code}: {str(answer)[:200]}")
                    continue
                mine.append([b["error"] for b in answer["beats"]])
        with lock:
            result.latencies_s += lat
            result.failures += bad
            result.errors[i] = mine

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(payloads))]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.wall_s = time.perf_counter() - t0
    return result


def payloads(clients: int, beats: int, seed: int = 0) -> list[list[list[float]]]:
    """Each client's own `beats` ECG5000 beats (drawn at random, without repeats within a client)."""
    from ecgviz.io.data import load_ecg5000

    X = load_ecg5000().X
    rng = np.random.default_rng(seed)
    return [X[rng.choice(len(X), beats, replace=False)].astype(float).tolist() for _ in range(clients)]


def summary(res: LoadResult, clients: int, requests: int, beats: int, server_cpu_s: float | None = None) -> dict:
    """Throughput and latency percentiles of one load."""
    lat_ms = np.asarray(res.latencies_s) * 1000
    done = len(res.latencies_s) - len(res.failures)
    return {
        "clients": clients, "requests_per_client": requests, "beats_per_request": beats,
        "requests_ok": done, "failures": len(res.failures), "wall_s": res.wall_s,
        "requests_per_s": done / res.wall_s if res.wall_s else None,
        "beats_per_s": done * beats / res.wall_s if res.wall_s else None,
        "p50_ms": float(np.percentile(lat_ms, 50)) if len(lat_ms) else None,
        "p95_ms": float(np.percentile(lat_ms, 95)) if len(lat_ms) else None,
        "max_ms": float(lat_ms.max()) if len(lat_ms) else None,
        "server_cpu_s": server_cpu_s,
        "server_cpu_ms_per_request": server_cpu_s / done * 1000 if server_cpu_s is not None and done else None,
    }


def _ms(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f} ms"


def markdown(s: dict, threads: int) -> str:
    """The row docs/service.md shows."""
    return "\n".join([
        "| clients x requests x beats | requests/s | beats/s | latency p50 / p95 / max | server CPU per request "
        "| failed |",
        "|---|---|---|---|---|---|",
        f"| {s['clients']} x {s['requests_per_client']} x {s['beats_per_request']} (torch threads {threads}) "
        f"| {s['requests_per_s']:,.0f} | {s['beats_per_s']:,.0f} | {s['p50_ms']:.1f} / {s['p95_ms']:.1f} / "
        f"{s['max_ms']:.1f} ms | {_ms(s['server_cpu_ms_per_request'])} | {s['failures']} |",
    ])


def main(argv: list[str] | None = None) -> int:
    """Run the load, print the table, write the JSON."""
    p = argparse.ArgumentParser(prog="python -m bench.service", description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--requests", type=int, default=50, help="per client")
    p.add_argument("--beats", type=int, default=32, help="per request")
    p.add_argument("--threads", type=int, default=1, help="the server's torch threads")
    p.add_argument("--quick", action="store_true", help="2 clients x 5 requests: checks the harness only")
    p.add_argument("--out", type=Path, help="also write the JSON here")
    args = p.parse_args(argv)
    if args.quick:
        args.clients, args.requests = 2, 5
    from bench.report import machine

    meta = machine()
    work = payloads(args.clients, args.beats)
    print(f"starting the service; {args.clients} clients x {args.requests} requests x {args.beats} beats",
          file=sys.stderr)
    with running_service("--threads", str(args.threads)) as service:
        # one warm-up request per client, so the first timed ones do not pay for lazy set-up
        load(service.url, work, 1)
        cpu0 = service.cpu_s()
        res = load(service.url, work, args.requests)
        cpu1 = service.cpu_s()
    s = summary(res, args.clients, args.requests, args.beats, None if cpu0 is None else cpu1 - cpu0)
    for failure in res.failures[:10]:
        print(failure, file=sys.stderr)
    print(markdown(s, args.threads))
    payload = json.dumps({"meta": meta, "summary": s, "latencies_ms": [x * 1000 for x in res.latencies_s]}, indent=2)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"service_{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(payload + "\n")
    if args.out:
        args.out.write_text(payload + "\n")
    return 1 if res.failures else 0


if __name__ == "__main__":
    sys.exit(main())
