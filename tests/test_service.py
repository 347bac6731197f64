"""The scoring service, run as ``python -m ecgviz serve`` on a free local port and called over HTTP."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pandas as pd
import pytest

from bench.service import load, payloads, running_service
from ecgviz.checkpoint.store import SHIPPED_CHECKPOINT, load_checkpoint
from ecgviz.cli.main import main
from ecgviz.io.data import bundled_paths, load_ecg5000

MAX_BEATS, MAX_BODY_MB = 600, 2  # small limits, so the refusals are cheap to provoke
SHIPPED = load_checkpoint(SHIPPED_CHECKPOINT)


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    log = tmp_path_factory.mktemp("service") / "server.log"
    with running_service("--max-beats", str(MAX_BEATS), "--max-body-mb", str(MAX_BODY_MB), log_path=log) as service:
        yield service.url
    assert "Traceback" not in log.read_text(errors="replace")


@pytest.fixture(scope="module")
def http(url):
    with httpx.Client(base_url=url, timeout=60.0) as client:
        yield client


def cli_scores(tmp_path, *files) -> pd.DataFrame:
    out = tmp_path / "cli.csv"
    assert main(["score", "--checkpoint", str(SHIPPED_CHECKPOINT), "--data", *map(str, files), "--out", str(out)]) == 0
    return pd.read_csv(out, dtype={"label": str})


def test_health_model_info_and_docs(http):
    assert http.get("/health").json() == {"status": "ok", "model": SHIPPED.name}
    info = http.get("/model").json()
    assert info["beat_length"] == 140 and info["threshold"] == SHIPPED.threshold
    assert info["threshold_rule"] == "p98 of training normals" and info["loss"] == SHIPPED.loss
    assert info["detector"] == SHIPPED.description and info["kind"] == "lstm_ae"
    assert info["model_config"] == {"embedding_dim": 32, "n_features": 1, "chunk": 10}
    assert info["metrics"]["auroc"] == SHIPPED.metrics["auroc"]
    assert info["limits"] == {"max_beats": MAX_BEATS, "max_body_bytes": MAX_BODY_MB * 2**20}
    assert info["versions"]["trained_with"]["torch"] and info["versions"]["serving"]["fastapi"]
    docs = http.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    spec = http.get("/openapi.json").json()
    assert {"/health", "/model", "/score", "/score/file"} <= set(spec["paths"])
    body = spec["paths"]["/score"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"beats", "threshold"} and body["required"] == ["beats"]


def test_uploaded_file_scores_equal_the_cli(http, tmp_path):
    train_file = bundled_paths()[0]  # 500 ECG5000 beats
    with open(train_file, "rb") as fh:
        r = http.post("/score/file", files={"file": (train_file.name, fh, "application/octet-stream")})
    assert r.status_code == 200, r.text
    body = r.json()
    cli = cli_scores(tmp_path, train_file)
    assert body["n_beats"] == len(cli) == 500 and body["threshold"] == SHIPPED.threshold
    assert body["threshold_source"] == "model" and body["threshold_rule"] == SHIPPED.threshold_rule
    assert [b["error"] for b in body["beats"]] == cli["error"].tolist()  # identical, not close
    assert [b["flagged"] for b in body["beats"]] == cli["flagged"].tolist()
    assert [b["row"] for b in body["beats"]] == cli["row"].tolist()
    assert [b["label"] for b in body["beats"]] == cli["label"].tolist()
    assert {b["source"] for b in body["beats"]} == {train_file.name}
    assert body["n_flagged"] == int(cli["flagged"].sum()) > 0


def test_json_beats_score_equal_the_cli(http, tmp_path):
    X = load_ecg5000().X[[0, 7, 600, 1200, 2500, 4999]]  # normals and anomalies
    csv = tmp_path / "some.csv"
    csv.write_text("".join("0," + ",".join(repr(float(v)) for v in beat) + "\n" for beat in X))
    cli = cli_scores(tmp_path, csv)
    r = http.post("/score", json={"beats": X.astype(float).tolist()})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [b["error"] for b in body["beats"]] == cli["error"].tolist()
    assert [b["flagged"] for b in body["beats"]] == cli["flagged"].tolist()
    assert [b["index"] for b in body["beats"]] == list(range(6)) and "source" not in body["beats"][0]


def test_a_beat_scores_the_same_in_any_batch(http):
    from ecgviz.pipeline.protocol import score_beats

    X = load_ecg5000().X[:1100]
    whole = score_beats(SHIPPED, X)
    for size in (1, 2, 7, 32, 1024):  # a batch of one used to round differently
        stop = 64 if size < 32 else len(X)
        parts = np.concatenate([score_beats(SHIPPED, X[i : i + size]) for i in range(0, stop, size)])
        assert (parts == whole[: len(parts)]).all(), size
    one = http.post("/score", json={"beats": X[3:4].astype(float).tolist()}).json()
    assert one["beats"][0]["error"] == whole[3]


def test_threshold_per_request(http):
    X = load_ecg5000().X[:20].astype(float).tolist()
    at_model = http.post("/score", json={"beats": X}).json()
    errors = np.array([b["error"] for b in at_model["beats"]])
    t = float(np.median(errors))
    mine = http.post("/score", json={"beats": X, "threshold": t}).json()
    assert mine["threshold"] == t and mine["threshold_source"] == "request"
    assert [b["flagged"] for b in mine["beats"]] == (errors > t).tolist() and mine["n_flagged"] == 10
    assert [b["error"] for b in mine["beats"]] == errors.tolist()
    with open(bundled_paths()[0], "rb") as fh:
        upload = http.post("/score/file", files={"file": ("t.arff", fh)}, data={"threshold": "0"}).json()
    assert upload["n_flagged"] == 500 and upload["threshold"] == 0.0


def beat(n: int = 140) -> list[float]:
    return np.sin(np.linspace(0, 6, n)).tolist()


BAD_JSON = [
    ({"beats": [beat(139)]}, 422, "beats[0]: has 139 samples, but the model was trained on beats of 140 samples"),
    ({"beats": [beat(), beat(141)]}, 422, "beats[1]: has 141 samples"),
    ({"beats": []}, 422, "beats: no beats given"),
    ({"beats": [beat()] * (MAX_BEATS + 1)}, 413, "beats: more than 600 beats in one request; at most 600"),
    ({"beats": [[*beat()[:5], "x", *beat()[6:]]]}, 422, "beats[0][5]: Input should be a valid number"),
    ({"beats": [beat()], "extra": 1}, 422, "body: Extra inputs are not permitted"),
    ({"threshold": 3}, 422, "beats: Field required"),
    ({"beats": [beat()] * 2 + [[1e39] * 140]}, 422, "beats[2][0]: sample is infinite or too large for float32"),
]


@pytest.mark.parametrize(("payload", "status", "message"), BAD_JSON)
def test_bad_json_requests(http, payload, status, message):
    r = http.post("/score", json=payload)
    assert r.status_code == status and r.json()["detail"].startswith(message), r.text


def test_nan_and_threshold_and_syntax(http):
    nan_body = json.dumps({"beats": [beat(), beat()]}).replace("0.0,", "NaN,", 1)
    r = http.post("/score", content=nan_body, headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"].startswith("beats[0][0]: sample is NaN"), r.text
    r = http.post("/score", content='{"beats": [' + json.dumps(beat()) + '] "threshold": 1}',
                  headers={"content-type": "application/json"})
    column = len(json.dumps(beat())) + 14
    assert r.status_code == 400, r.text
    assert r.json()["detail"] == f"body is not valid JSON: expected ',' or '}}' at line 1 column {column}"
    r = http.post("/score", content=json.dumps({"beats": [beat()]})[:-5], headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["detail"].startswith("body is not valid JSON: EOF while parsing")
    assert "at line 1 column" in r.json()["detail"]
    r = http.post("/score", content=b"", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["detail"].startswith("body is not valid JSON")
    r = http.post("/score", content='{"beats": [' + json.dumps(beat()) + '], "threshold": NaN}',
                  headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"] == "threshold: must be a finite number"


def test_wrong_content_types(http):
    r = http.post("/score", content="1,2,3", headers={"content-type": "text/csv"})
    assert r.status_code == 415 and r.json()["detail"].startswith("send beats as application/json (got text/csv)")
    r = http.post("/score", files={"file": ("a.csv", b"1,2,3\n")})
    assert r.status_code == 415
    r = http.post("/score/file", json={"beats": [beat()]})
    assert r.status_code == 415 and "multipart/form-data" in r.json()["detail"]
    r = http.post("/score/file", data={"threshold": "1"}, files={"other": ("a.csv", b"1,2\n")})
    assert r.status_code == 422 and r.json()["detail"] == "file: Field required"
    assert http.get("/nowhere").status_code == 404 and http.get("/score").status_code == 405


def test_bad_uploads(http):
    r = http.post("/score/file", files={"file": ("notes.txt", b"hello\nworld\n")})
    assert r.status_code == 422 and r.json()["detail"].startswith("file: notes.txt, line 1"), r.text
    short = "".join(f"1,{','.join(['0.5'] * 30)}\n" for _ in range(3)).encode()
    r = http.post("/score/file", files={"file": ("short.csv", short)})
    assert r.status_code == 422 and "trained on beats of 140 samples" in r.json()["detail"]
    many = "".join(f"1,{','.join(['0.5'] * 140)}\n" for _ in range(MAX_BEATS + 1)).encode()
    r = http.post("/score/file", files={"file": ("many.csv", many)})
    assert r.status_code == 413 and r.json()["detail"] == f"file: {MAX_BEATS + 1:,} beats in one request; at most 600"


def test_body_over_the_limit_is_refused_unread(http):
    limit = MAX_BODY_MB * 2**20
    big = b"[" * (limit + 1)
    r = http.post("/score", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["detail"].startswith(f"request body is larger than {limit:,} bytes")

    def chunks():  # no Content-Length: the server must count what arrives and stop
        for _ in range(MAX_BODY_MB * 4 + 1):
            yield b" " * 2**18

    r = http.post("/score", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "larger than" in r.json()["detail"]
    r = http.post("/score/file", files={"file": ("big.csv", b"1" * (limit + 10))})
    assert r.status_code == 413
    assert http.get("/health").status_code == 200  # and the server is still there


def test_concurrent_load_has_no_error(url):
    work = payloads(clients=8, beats=32, seed=3)
    res = load(url, work, requests=50)
    assert res.failures == [] and len(res.latencies_s) == 400
    from ecgviz.pipeline.protocol import score_beats

    for i, answers in res.errors.items():  # every answer equals scoring that request's beats directly
        expected = score_beats(SHIPPED, np.asarray(work[i], dtype=np.float32)).tolist()
        assert len(answers) == 50 and all(a == expected for a in answers)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Starlette's test client on this httpx
def test_internal_error_is_json_without_traceback(monkeypatch):
    from fastapi.testclient import TestClient

    from ecgviz.service import app as service

    def boom(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(service.protocol, "score_beats", boom)
    client = TestClient(service.create_app(SHIPPED), raise_server_exceptions=False)
    r = client.post("/score", json={"beats": [beat()]})
    assert r.status_code == 500 and r.json() == {"detail": "internal error; the server log has the details"}


def test_benchmark_harness_runs(tmp_path, capsys):
    from bench.service import main as bench_main

    out = tmp_path / "service.json"
    assert bench_main(["--quick", "--out", str(out)]) == 0
    s = json.loads(out.read_text())["summary"]
    assert s["requests_ok"] == 10 and s["failures"] == 0 and s["requests_per_s"] > 0
    assert s["beats_per_s"] == pytest.approx(s["requests_per_s"] * 32) and 0 < s["p50_ms"] <= s["p95_ms"]
    assert "| 2 x 5 x 32 (torch threads 1) |" in capsys.readouterr().out


def test_serve_errors_are_one_line(tmp_path, url, capsys):
    assert main(["serve", "--checkpoint", str(tmp_path / "missing.pt")]) == 2
    assert "missing.pt: cannot read checkpoint" in capsys.readouterr().err
    port = int(url.rsplit(":", 1)[1])  # the fixture's server holds it
    assert main(["serve", "--port", str(port)]) == 2
    assert f"ecgviz: error: cannot listen on 127.0.0.1:{port}: Address already in use" in capsys.readouterr().err
    assert main(["serve", "--max-beats", "0"]) == 2


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_model_info_survives_odd_checkpoint_values():
    from dataclasses import replace

    from fastapi.testclient import TestClient

    from ecgviz.service import app as service

    odd = replace(SHIPPED, metrics={"auroc": float("nan"), "note": "hand-made"})
    info = TestClient(service.create_app(odd)).get("/model")
    assert info.status_code == 200 and info.json()["metrics"] == {"auroc": None, "note": "hand-made"}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_baseline_detector_is_served_too(tiny_files, tiny_data, tmp_path):
    from fastapi.testclient import TestClient

    from ecgviz.pipeline.protocol import score_beats
    from ecgviz.service import app as service

    out = tmp_path / "knn.pt"
    assert main(["baseline", "--kind", "knn", "--data", *map(str, tiny_files), "--out", str(out)]) == 0
    knn = load_checkpoint(out)
    client = TestClient(service.create_app(knn))
    info = client.get("/model").json()
    assert info["kind"] == "knn" and info["model_config"] is None and info["detector"] == knn.description
    r = client.post("/score", json={"beats": tiny_data.X[:5].astype(float).tolist()})
    assert [b["error"] for b in r.json()["beats"]] == score_beats(knn, tiny_data.X[:5]).tolist()
