"""The attacks on the service itself, and how each is measured: bodies, a sampler of the server's memory and
/health latency, and the connection-level attacks (a request head that never ends, a body that stalls).

Used by bench/hostile_server.py (`python -m bench hostile-server`) and by the tests.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from pathlib import Path

MIB = 2**20


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
