"""Hostile command lines: every bad argument is one line on stderr and exit status 2, and nothing is written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ecgviz.cli.main import main

ROOT = Path(__file__).resolve().parent.parent


def _train(tiny_files, out, *extra):
    return ["train", "--data", *map(str, tiny_files), "--out", str(out), "--device", "cpu", "--quiet", *extra]


CASES = [
    ("--batch-size", "0", "train: argument --batch-size: 0 must be at least 1"),
    ("--batch-size", "-5", "train: argument --batch-size: -5 must be at least 1"),
    ("--epochs", "0", "train: argument --epochs: 0 must be at least 1"),
    ("--epochs", "-3", "train: argument --epochs: -3 must be at least 1"),
    ("--epochs", "2.5", "train: argument --epochs: '2.5' is not a whole number"),
    ("--lr", "nan", "train: argument --lr: nan must be in [1e-12, 10]"),
    ("--lr", "0", "train: argument --lr: 0 must be in [1e-12, 10]"),
    ("--percentile", "101", "train: argument --percentile: 101 must be in [0, 100]"),
    ("--seed", "-1", "train: argument --seed: -1 must be at least 0"),
    ("--chunk", "0", "train: argument --chunk: 0 must be at least 1"),
]


@pytest.mark.parametrize(("flag", "value", "message"), CASES, ids=[f"{f}={v}" for f, v, _ in CASES])
def test_bad_training_arguments(flag, value, message, tiny_files, tmp_path, capsys):
    out = tmp_path / "m.pt"
    assert main(_train(tiny_files, out, flag, value)) == 2
    assert capsys.readouterr().err == f"ecgviz: error: {message}\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["score", "evaluate"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "x"])
def test_a_threshold_must_be_a_finite_number(command, value, tiny_ckpt_path, tiny_files, tmp_path, capsys):
    args = [command, "--checkpoint", str(tiny_ckpt_path), "--data", *map(str, tiny_files), f"--threshold={value}"]
    args += ["--out", str(tmp_path / "o.csv")] if command == "score" else []
    assert main(args) == 2
    why = "'x' is not a number" if value == "x" else f"{value} must be a finite number"
    assert capsys.readouterr().err == f"ecgviz: error: {command}: argument --threshold: {why}\n"
    assert list(tmp_path.iterdir()) == []


def test_evaluate_refuses_a_normal_label_the_data_lacks(tiny_ckpt_path, tiny_files, capsys):
    args = ["evaluate", "--checkpoint", str(tiny_ckpt_path), "--data", *map(str, tiny_files), "--normal-label", "9"]
    assert main(args) == 2
    assert capsys.readouterr().err == "ecgviz: error: --normal-label 9 is not a label of the data (labels: 1, 2, 3)\n"


@pytest.mark.parametrize("command", ["train", "score"])
def test_out_naming_a_directory_is_refused_before_any_work(command, tiny_ckpt_path, tiny_files, tmp_path, capsys):
    target = tmp_path / "dir.pt"
    target.mkdir()
    args = (_train(tiny_files, target, "--epochs", "1") if command == "train" else
            ["score", "--checkpoint", str(tiny_ckpt_path), "--data", *map(str, tiny_files), "--out", str(target)])
    assert main(args) == 2
    assert capsys.readouterr().err == f"ecgviz: error: --out {target} is a directory; give a file name\n"
    assert [p.name for p in tmp_path.iterdir()] == ["dir.pt"] and list(target.iterdir()) == []


def test_a_real_process_prints_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ecgviz", "train", "--out", str(tmp_path / "m.pt"),
                           "--batch-size", "0"], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == "ecgviz: error: train: argument --batch-size: 0 must be at least 1\n"
    assert list(tmp_path.iterdir()) == []


# --- services the command line is pointed at: a one-line error, quickly -------------------------------------------
def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mlflow_at_a_closed_port_is_one_line_at_once(tiny_ckpt_path, tiny_files, tmp_path, capsys):
    import time

    port = _closed_port()
    uri = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    assert main(["evaluate", "--checkpoint", str(tiny_ckpt_path), "--data", *map(str, tiny_files),
                 "--mlflow", uri]) == 2
    assert time.perf_counter() - t0 < 60  # was 271-276 s of MLflow's retries
    assert capsys.readouterr().err == (f"ecgviz: error: MLflow tracking server 127.0.0.1:{port} cannot be reached "
                                       "(Connection refused); start it, or leave out --mlflow and unset "
                                       "MLFLOW_TRACKING_URI\n")
    # training is refused before it starts: nothing is written
    assert main(_train(tiny_files, tmp_path / "m.pt", "--mlflow", uri)) == 2
    assert "cannot be reached" in capsys.readouterr().err and not (tmp_path / "m.pt").exists()


class _Talker:
    """A local TCP service that is not Dask: silent, or answering HTTP."""

    def __init__(self, answer: bytes):
        import socket
        import threading

        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.held = []

        def serve():
            while True:
                try:
                    conn, _ = self.server.accept()
                except OSError:
                    return
                if answer:
                    conn.sendall(answer)
                self.held.append(conn)

        threading.Thread(target=serve, daemon=True).start()

    def close(self):
        self.server.close()
        for conn in self.held:
            conn.close()


@pytest.mark.parametrize(("answer", "why"), [
    (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", "what answers there is not a Dask scheduler "
                                                                "(MemoryError)"),
    (b"", "no Dask scheduler answered within 10 s"),
], ids=["http", "silent"])
def test_a_scheduler_that_is_not_dask_is_one_line(answer, why, tiny_ckpt_path, tiny_files, tmp_path, capsys):
    import time

    talker = _Talker(answer)
    try:
        address = f"tcp://127.0.0.1:{talker.port}"
        t0 = time.perf_counter()
        assert main(["score", "--checkpoint", str(tiny_ckpt_path), "--data", *map(str, tiny_files), "--out",
                     str(tmp_path / "o.csv"), "--scheduler", address]) == 2
        assert time.perf_counter() - t0 < 30  # a silent one hung for good; the other was a 47-line traceback
    finally:
        talker.close()
    assert capsys.readouterr().err == f"ecgviz: error: --scheduler {address}: {why}\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("address", "why"), [
    ("ucx://127.0.0.1:1", "the ucx:// transport is not supported; give tcp://HOST:PORT (or tls://HOST:PORT)"),
    ("tcp://127.0.0.1:99999", "expected tcp://HOST:PORT"),
    ("tcp://127.0.0.1:{closed}", "cannot connect (Connection refused)"),
])
def test_scheduler_addresses_are_checked(address, why, tiny_ckpt_path, tiny_files, tmp_path, capsys):
    address = address.format(closed=_closed_port())
    assert main(["score", "--checkpoint", str(tiny_ckpt_path), "--data", *map(str, tiny_files), "--out",
                 str(tmp_path / "o.csv"), "--scheduler", address]) == 2
    assert capsys.readouterr().err == f"ecgviz: error: --scheduler {address}: {why}\n"


def test_a_real_scheduler_is_still_used(tiny_ckpt_path, tiny_files):
    from dask.distributed import LocalCluster

    from ecgviz.pipeline import batch

    options = batch.ScoreOptions(str(tiny_ckpt_path))
    with LocalCluster(n_workers=1, processes=False, threads_per_worker=1, dashboard_address=None, protocol="tcp://",
                      host="127.0.0.1") as cluster, \
            batch.cluster_client(cluster.scheduler_address) as client:
        results = list(batch.score_on_cluster(client, [str(p) for p in tiny_files], options))
    assert [r.ok for r in results] == [True, True] and sum(r.n_beats for r in results) == 80
