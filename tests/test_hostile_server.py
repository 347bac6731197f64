"""Hostile requests to the scoring service: one client must not take its memory, its time or its connections.

The big-body cases run against a real ``python -m ecgviz serve`` (default limits: 32 MiB bodies) and read the
server's resident memory from /proc while a second client asks /health; the numbers before and after the change
are in docs/service.md (bench/hostile_server.py).
"""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from bench.hostile_requests import many_rows_csv, zeros_beat_body
from bench.server_stats import memory_mib
from bench.service import free_port, running_service
from ecgviz.checkpoint.store import SHIPPED_CHECKPOINT, load_checkpoint
from ecgviz.cli.main import main
from ecgviz.service.beats_json import BeatsReader, Refused

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="server memory is read from /proc")
MIB = 2**20
SHIPPED = load_checkpoint(SHIPPED_CHECKPOINT)
BEAT = np.sin(np.linspace(0, 6, 140)).tolist()


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    log = tmp_path_factory.mktemp("hostile_server") / "server.log"
    with running_service(log_path=log, timeout=120) as running:
        yield running
    assert "Traceback" not in log.read_text(errors="replace")


class Watch:
    """While the block runs: the server's peak RSS (MiB, every 10 ms) and each /health latency (s, every 0.1 s)."""

    def __init__(self, service):
        self.service, self.peak, self.health = service, 0.0, []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._rss), threading.Thread(target=self._ask)]

    def _rss(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, memory_mib(self.service.pid)["rss"])
            self._stop.wait(0.01)

    def _ask(self):
        with httpx.Client(base_url=self.service.url, timeout=120) as http:
            while not self._stop.is_set():
                t0 = time.perf_counter()
                assert http.get("/health").status_code == 200
                self.health.append(time.perf_counter() - t0)
                self._stop.wait(0.1)

    def __enter__(self):
        self.idle = memory_mib(self.service.pid)["rss"]
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        time.sleep(0.3)
        self._stop.set()
        for t in self._threads:
            t.join(130)


def post_at_once(url: str, path: str, n: int, **kwargs) -> list[httpx.Response]:
    out: list = [None] * n

    def one(i):
        with httpx.Client(base_url=url, timeout=120) as http:
            out[i] = http.post(path, **kwargs)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


@pytest.mark.parametrize("clients", [1, 4])
def test_a_32_mib_beat_is_refused_as_it_arrives_and_health_answers_meanwhile(service, clients):
    body = zeros_beat_body(32 * MIB - 4096)  # one beat of 16.7 million zeros, within the body limit
    with Watch(service) as watch:
        answers = post_at_once(service.url, "/score", clients, content=body,
                               headers={"content-type": "application/json"})
    for r in answers:
        assert r.status_code == 422
        assert r.json()["detail"] == ("beats[0]: has more than 140 samples, but the model was trained on beats of "
                                      "140 samples")
    assert max(watch.health) < 1.0, watch.health  # was 9.6 s (one) and 15 s (four)
    assert watch.peak < 900, watch.peak  # was 1,633 MiB (one) and 1,738 MiB (four)
    assert watch.peak - watch.idle < 100 * clients, (watch.idle, watch.peak)


def test_ten_thousand_beats_are_scored_while_health_answers(service):
    from ecgviz.io.data import load_ecg5000

    X = load_ecg5000().X
    X = X[np.arange(10_000) % len(X)]
    body = json.dumps({"beats": X.astype(float).tolist()}).encode()  # made first: this process's time is not timed
    with Watch(service) as watch, httpx.Client(base_url=service.url, timeout=120) as http:
        r = http.post("/score", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.json()["n_beats"] == 10_000
    from ecgviz.pipeline.protocol import score_beats

    assert [b["error"] for b in r.json()["beats"][:50]] == score_beats(SHIPPED, X[:50]).tolist()
    assert max(watch.health) < 1.0, watch.health
    assert watch.peak < 900, watch.peak


def test_an_upload_of_too_many_rows_is_refused_before_it_is_parsed(service):
    rows = many_rows_csv(32 * MIB - 4096)  # ~119,000 beats of 140 zeros
    n = rows.count(b"\n")
    with Watch(service) as watch, httpx.Client(base_url=service.url, timeout=120) as http:
        r = http.post("/score/file", files={"file": ("many.csv", rows, "text/csv")})
    assert r.status_code == 413
    # counted in its bytes, not parsed first (the parser's count would say "beats", from all of them)
    assert r.json()["detail"] == f"file: {n:,} lines of beats in one request; at most 10,000 beats"
    assert max(watch.health) < 1.0 and watch.peak < 900, (watch.health, watch.peak)


def test_refusals_never_repeat_what_the_client_sent(service):
    key = "k" * MIB
    with httpx.Client(base_url=service.url, timeout=60) as http:
        r = http.post("/score", json={"beats": [BEAT], key: 1})
        assert r.status_code == 422 and len(r.content) < 1000, len(r.content)  # was the key, twice: 2 MiB
        assert r.json()["detail"] == ("body: Extra inputs are not permitted (a request has the fields 'beats' and "
                                      "'threshold' only)")
        secret = "my-secret-field"
        r = http.post("/score", json={secret: 1, "beats": [BEAT]})
        assert r.status_code == 422 and secret not in r.text
        r = http.post("/score", json={"beats": [BEAT], "threshold": "0.5"})
        assert r.status_code == 422 and r.json()["detail"] == "threshold: must be a number (or null)"


@pytest.mark.parametrize("value", [True, False])
def test_a_threshold_of_true_or_false_is_refused(service, value):
    with httpx.Client(base_url=service.url, timeout=60) as http:
        r = http.post("/score", json={"beats": [BEAT], "threshold": value})
    assert r.status_code == 422  # `true` was read as 1.0
    assert r.json()["detail"] == "threshold: must be a number, not true or false"


def test_a_request_head_that_never_ends_is_closed(service):
    port = int(service.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")  # no blank line
        s.settimeout(30)
        t0 = time.perf_counter()
        assert s.recv(1024) == b""  # closed by the server (it stayed open for good)
        assert time.perf_counter() - t0 < 10 + 5  # Limits.head_timeout_s, and some slack


def test_the_api_docs_need_no_internet(service):
    with httpx.Client(base_url=service.url, timeout=60) as http:
        html = http.get("/docs").text
        assert "swagger" in html.lower()
        outside = [u for u in re.findall(r"https?://[^\"' )]+", html) if not u.startswith(service.url)]
        assert outside == []  # was the CDN's swagger-ui-bundle.js, swagger-ui.css and favicon
        assets = re.findall(r"(?:src|href)=['\"]([^'\"]+\.(?:js|css))['\"]", html)
        assert len(assets) >= 2
        for asset in assets:
            r = http.get(asset)
            assert r.status_code == 200 and len(r.content) > 1000, asset
        assert http.get("/redoc").status_code == 200


# -- in-process servers with short limits --------------------------------------------------------------------------
@pytest.fixture
def quick_server():
    """The service app under uvicorn in a thread, with a 1 s head timeout and a 1 s body pause limit."""
    from ecgviz.service.app import create_app
    from ecgviz.service.transport import Limits, server

    limits = Limits(head_timeout_s=1.0, body_idle_s=1.0)
    port = free_port()
    srv = server(create_app(SHIPPED, limits), "127.0.0.1", port, limits, log_level="warning")
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.05)
    yield port
    srv.should_exit = True
    thread.join(10)


def test_a_stalled_body_is_answered_408(quick_server):
    with socket.create_connection(("127.0.0.1", quick_server)) as s:
        s.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                  b'{"beats":')
        s.settimeout(10)
        t0 = time.perf_counter()
        answer = s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408 ") and time.perf_counter() - t0 < 5
    assert b"request body stalled: nothing arrived for 1 s" in answer


def test_a_kept_alive_connection_must_send_its_next_head_in_time(quick_server):
    with socket.create_connection(("127.0.0.1", quick_server)) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(10)
        assert s.recv(4096).startswith(b"HTTP/1.1 200 ")
        s.sendall(b"GET /health HTTP/1.1\r\nHo")  # the next request's head, never finished
        t0 = time.perf_counter()
        assert s.recv(4096) == b"" and time.perf_counter() - t0 < 5


def test_a_slow_but_steady_client_is_served(quick_server):
    body = json.dumps({"beats": [BEAT]}).encode()
    with socket.create_connection(("127.0.0.1", quick_server)) as s:
        s.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\n")
        time.sleep(0.5)  # within the head's second
        s.sendall(b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
        for i in range(0, len(body), len(body) // 3 + 1):
            time.sleep(0.5)  # pauses shorter than the body's limit
            s.sendall(body[i : i + len(body) // 3 + 1])
        s.settimeout(30)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            answer += s.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 ") and b'"n_beats":1' in answer


# -- the reader itself -----------------------------------------------------------------------------------------------
def read(body: bytes, seq_len: int = 4, max_beats: int = 3, chunk: int = 7):
    reader = BeatsReader(seq_len, max_beats)
    for i in range(0, len(body), chunk):
        reader.feed(body[i : i + chunk])
    return reader.close()


@pytest.mark.parametrize("chunk", [1, 3, 64, 10**6])
def test_the_reader_gives_the_same_beats_however_the_body_is_cut(chunk):
    rng = np.random.default_rng(chunk)
    X = rng.normal(size=(3, 4)) * 10.0 ** rng.integers(-5, 5, size=(3, 4))
    bodies = [(json.dumps({"beats": X.tolist(), "threshold": 0.25}), 0.25),
              (json.dumps({"beats": X.tolist()}, indent=3), None),
              (json.dumps({"threshold": None, "beats": X.tolist()}, separators=(",", ":")), None)]
    for body, expected in bodies:
        beats, threshold = read(body.encode(), chunk=chunk)
        assert beats.dtype == np.float32 and np.array_equal(beats, X.astype(np.float32))
        assert threshold == expected


REFUSED = [
    (b'{"beats": [[1,2,3]]}', 422, "beats[0]: has 3 samples, but the model was trained on beats of 4 samples"),
    (b'{"beats": [[1,2,3,4,5]]}', 422, "beats[0]: has 5 samples, but the model was trained on beats of 4 samples"),
    (b'{"beats": [[1,2,3,4],[1,2,3,4],[1,2,3,4],[1,2,3,4]]}', 413,
     "beats: more than 3 beats in one request; at most 3"),
    (b'{"beats": [[1,2,"x",4]]}', 422, "beats[0][2]: Input should be a valid number"),
    (b'{"beats": [[1,2,[3],4]]}', 422, "beats[0][2]: Input should be a valid number"),
    (b'{"beats": [[1,2,3,4]], "threshold": true}', 422, "threshold: must be a number, not true or false"),
    (b'{"beats": [[1,2,3,4]], "beats": [[1,2,3,4]]}', 422, "beats: given more than once"),
    (b'{"beats": []}', 422, "beats: no beats given"),
    (b'{"threshold": 1}', 422, "beats: Field required"),
    (b'[[1,2,3,4]]', 422, "body: Input should be an object with 'beats' (and optionally 'threshold')"),
    (b'{"beats": [[1,2,,4]]}', 400, "body is not valid JSON: expected value at line 1 column 17"),
    (b'{"beats": [[1,2,01,4]]}', 400, "body is not valid JSON: invalid number at line 1 column 17"),
    (b'{"beats": [[1,2,3,4]]\n  x', 400, "body is not valid JSON: expected ',' or '}' at line 2 column 3"),
    (b'{"beats": [[1,2,3,4]]', 400, "body is not valid JSON: EOF while parsing a value at line 1 column 22"),
    (b'{"beats": [[NaN,2,3,4]]}', 422, "beats[0][0]: sample is NaN; every sample must be a finite number"),
    (b'{"beats": [[1,2,3,1e39]]}', 422,
     "beats[0][3]: sample is infinite or too large for float32; every sample must be a finite number"),
    (b'{"beats": [[1,2,3,' + b" " * 300 + b"4]]}", 422, "beats[0]: more than 256 bytes of text for 4 samples"),
]


@pytest.mark.parametrize(("body", "status", "detail"), REFUSED)
def test_the_reader_refuses_with_the_place_and_never_the_input(body, status, detail):
    with pytest.raises(Refused) as caught:
        read(body, chunk=10**6)
    assert (caught.value.status, caught.value.detail) == (status, detail)


def test_a_beat_too_long_is_refused_before_its_end_arrives():
    reader = BeatsReader(140, 10)
    reader.feed(b'{"beats": [[' + b"0," * 139)
    with pytest.raises(Refused, match=r"^beats\[0\]: has more than 140 samples"):
        reader.feed(b"0,")  # the 141st sample: no need to wait for the rest
    reader = BeatsReader(140, 10)
    with pytest.raises(Refused, match=r"more than 8,960 bytes of text"):
        reader.feed(b'{"beats": [[' + b"1" * 9000)  # one endless number


# -- serve's arguments -----------------------------------------------------------------------------------------------
def test_serve_arguments_are_bounded(capsys):
    from ecgviz.cli.args import cores

    cases = [(["--threads", "100000"], f"argument --threads: 100000 must be in [1, {cores()}] (the cores here)"),
             (["--threads", "0"], f"argument --threads: 0 must be in [1, {cores()}] (the cores here)"),
             (["--port", "99999"], "argument --port: 99999 must be in [1, 65,535] (a TCP port)"),
             (["--port", "0"], "argument --port: 0 must be in [1, 65,535] (a TCP port)"),
             (["--max-body-mb", "nan"], "argument --max-body-mb: nan must be in [0.001, 1,024]"),
             (["--max-body-mb", "0"], "argument --max-body-mb: 0 must be in [0.001, 1,024]"),
             (["--max-beats", "0"], "argument --max-beats: 0 must be in [1, 1,000,000]")]
    for args, message in cases:
        assert main(["serve", *args]) == 2, args
        assert capsys.readouterr().err == f"ecgviz: error: serve: {message}\n"


def test_workers_are_bounded(tmp_path, capsys):
    from ecgviz.cli.args import cores

    for n in ("0", str(2 * cores() + 1), "100000"):
        assert main(["score", "--data", "x.csv", "--out", str(tmp_path / "o.csv"), "--workers", n]) == 2
        err = capsys.readouterr().err
        assert err == (f"ecgviz: error: score: argument --workers: {n} must be in [1, {2 * cores()}] (twice the "
                       f"{cores()} cores here)\n")
    assert list(Path(tmp_path).iterdir()) == []


def test_the_container_health_check_asks_the_dashboard_or_the_service(service, monkeypatch, capsys):
    from ecgviz.service import healthcheck

    closed = f"http://127.0.0.1:{free_port()}/health"
    monkeypatch.setenv(healthcheck.URLS_ENV, f"{closed} {service.url}/health")
    assert healthcheck.main() == 0  # one of them answers
    monkeypatch.setenv(healthcheck.URLS_ENV, closed)
    assert healthcheck.main() == 1
    assert capsys.readouterr().err.startswith(f"unhealthy: {closed}: ")


def test_the_attack_benchmark_runs(tmp_path, capsys):
    from bench.hostile_server import main as bench_main

    out = tmp_path / "hostile.json"
    assert bench_main(["--quick", "--cap", "60", "--only", "serve --port", "--out", str(out)]) == 0
    (row,) = json.loads(out.read_text())["results"]
    assert row["attack"] == "serve --port 99999" and row["after"]["status"] == "exit 2"
    assert row["after"]["stderr_lines"] == 1 and row["after"]["last_line"].startswith("ecgviz: error: serve: ")
    assert "| serve --port 99999 | exit 2, " in capsys.readouterr().out
