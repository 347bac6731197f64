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
