"""Batch scoring, in this process and on a local Dask cluster of two processes: the same rows either way."""

from __future__ import annotations

import csv
import os
import sys

import numpy as np
import pandas as pd
import pytest

from ecgviz.checkpoint.store import save_checkpoint
from ecgviz.cli.main import main
from ecgviz.pipeline import batch
from ecgviz.pipeline.protocol import score_beats
from tests.helpers import synthetic_beats, write_arff

distributed = pytest.importorskip("dask.distributed")

N_FILES = 6


@pytest.fixture(scope="module")
def archive(tmp_path_factory, tiny_ckpt):
    """Six small labelled files of different sizes, a bad one, and the tiny model on disk."""
    d = tmp_path_factory.mktemp("archive")
    files = []
    for i in range(N_FILES):
        X, labels = synthetic_beats(n_normal=5 + 3 * i, n_anomaly=4, length=24, seed=10 + i)
        files.append(write_arff(d / f"part{i}.arff", X, labels))
    bad = d / "part_bad.arff"
    bad.write_text("@relation x\n@attribute a numeric\n@data\nnot-a-number\n")
    return {"files": [str(f) for f in files], "bad": str(bad), "ckpt": str(save_checkpoint(tiny_ckpt, d / "m.pt")),
            "dir": d}


@pytest.fixture(scope="module")
def client():
    """Two single-thread worker processes, as `--workers 2` starts them."""
    with batch.cluster_client(workers=2) as c:
        yield c


def _read(path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"label": str, "source": str})


def test_cluster_rows_equal_single_process_rows(archive, client, tmp_path, tiny_ckpt):
    options = batch.ScoreOptions(archive["ckpt"])
    serial = batch.write_results(batch.score_serial(archive["files"], options), tmp_path / "serial.csv")
    spread = batch.write_results(batch.score_on_cluster(client, archive["files"], options), tmp_path / "dask.csv")
    assert (tmp_path / "serial.csv").read_bytes() == (tmp_path / "dask.csv").read_bytes()
    assert serial.n_rows == spread.n_rows == sum(9 + 3 * i for i in range(N_FILES))
    # and the values are the model's errors, file by file, in the order given
    table = _read(tmp_path / "dask.csv")
    assert list(dict.fromkeys(table["source"])) == [os.path.basename(f) for f in archive["files"]]
    for i, f in enumerate(archive["files"]):
        X, _ = synthetic_beats(n_normal=5 + 3 * i, n_anomaly=4, length=24, seed=10 + i)
        rows = table[table["source"] == os.path.basename(f)]
        assert len(rows) == 9 + 3 * i
        np.testing.assert_allclose(rows["error"].to_numpy(), score_beats(tiny_ckpt, X), rtol=1e-6)
        assert (rows["flagged"].to_numpy() == (rows["error"] > tiny_ckpt.threshold).to_numpy()).all()


def test_the_model_is_read_once_per_worker(archive, client):
    options = batch.ScoreOptions(archive["ckpt"])
    results = list(batch.score_on_cluster(client, archive["files"] * 3, options))
    worker_pids = set(client.run(os.getpid).values())
    assert {r.pid for r in results} <= worker_pids and os.getpid() not in {r.pid for r in results}
    assert len(results) == 3 * N_FILES and all(r.ok for r in results)
    loads = client.run(batch.model_loads)  # reads per worker process, after 18 tasks
    assert set(loads.values()) <= {0, 1} and sum(loads.values()) == len({r.pid for r in results})


def test_one_bad_file_is_named_and_the_others_are_written(archive, client, tmp_path):
    files = [archive["files"][0], archive["bad"], archive["files"][1]]
    summary = batch.write_results(batch.score_on_cluster(client, files, batch.ScoreOptions(archive["ckpt"])),
                                  tmp_path / "out.csv")
    assert summary.n_failed == 1 and summary.errors[0].startswith("part_bad.arff")
    table = _read(tmp_path / "out.csv")
    assert table["source"].value_counts().to_dict() == {"part0.arff": 9, "part1.arff": 12}


def test_cli_workers_writes_what_the_single_process_cli_writes(archive, tmp_path, capsys):
    pattern = str(archive["dir"] / "part[0-9].arff")
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    assert main(["score", "--checkpoint", archive["ckpt"], "--data", pattern, "--out", str(one)]) == 0
    assert main(["score", "--checkpoint", archive["ckpt"], "--data", pattern, "--out", str(two),
                 "--workers", "2"]) == 0
    assert one.read_bytes() == two.read_bytes()
    out = capsys.readouterr().out
    assert out.count(f"wrote {sum(9 + 3 * i for i in range(N_FILES))} rows") == 2


def test_cli_bad_file_exit_2_with_rows_of_the_rest(archive, tmp_path, capsys):
    out = tmp_path / "o.csv"
    rc = main(["score", "--checkpoint", archive["ckpt"], "--data", archive["files"][2], archive["bad"],
               str(archive["dir"] / "missing*.arff"), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "ecgviz: error: part_bad.arff" in err and "missing*.arff: no file matches" in err
    with open(out, newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 15
    assert not list(tmp_path.glob(".*.tmp"))


def test_workers_without_dask_say_how_to_install(archive, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # import now fails as if Dask were missing
    rc = main(["score", "--checkpoint", archive["ckpt"], "--data", archive["files"][0], "--out",
               str(tmp_path / "o.csv"), "--workers", "2"])
    assert rc == 2
    assert capsys.readouterr().err == f"ecgviz: error: {batch.INSTALL_HINT}\n"
