"""The command line's baseline detectors, keep-files split, intervals and per-beat roles."""

import json

import pandas as pd

from ecgviz.checkpoint.store import load_checkpoint
from ecgviz.cli.main import main


def test_baseline_then_evaluate_and_score(tiny_files, tmp_path, capsys):
    out = tmp_path / "knn.pt"
    files = [*map(str, tiny_files)]
    assert main(["baseline", "--kind", "knn", "--k", "3", "--metric", "l1", "--data", *files, "--out", str(out),
                 "--split", "files", "--train-file", "tiny_TRAIN.arff", "--test-file", "tiny_TEST.arff"]) == 0
    printed = capsys.readouterr().out
    assert "kNN-3 (L1)" in printed and "held-out: AUROC" in printed and "tiny_TRAIN.arff" in printed
    ckpt = load_checkpoint(out)
    assert ckpt.kind == "knn" and ckpt.split.mode == "files"

    assert main(["evaluate", "--checkpoint", str(out), "--data", *files, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["detector"] == "kNN-3 (L1)" and summary["split_mode"] == "files"
    lo, hi = summary["intervals_95"]["normal_recall"]
    assert lo <= summary["normal_recall"] <= hi and summary["caveats"]
    assert main(["evaluate", "--checkpoint", str(out), "--data", *files]) == 0
    text = capsys.readouterr().out
    assert "95% CI" in text and "Uncertain" in text  # a tiny held-out set

    csv = tmp_path / "s.csv"
    assert main(["score", "--checkpoint", str(out), "--data", *files, "--out", str(csv)]) == 0
    table = pd.read_csv(csv, keep_default_na=False)
    held = table[table.split_role == "held-out"]
    m = summary["metrics"]
    assert (held.outcome == "TP").sum() == m["tp"] and (held.outcome == "FN").sum() == m["fn"]
    assert (held.outcome == "TN").sum() == m["tn"] and (held.outcome == "FP").sum() == m["fp"]
    assert set(table.split_role) == {"train", "validation", "held-out", "not used"}


def test_file_split_needs_both_files(tiny_files, tmp_path, capsys):
    rc = main(["baseline", "--kind", "pca", "--components", "2", "--data", *map(str, tiny_files),
               "--out", str(tmp_path / "p.pt"), "--split", "files", "--train-file", "tiny_TRAIN.arff"])
    assert rc == 2 and "--test-file" in capsys.readouterr().err


def test_train_keeps_the_files_as_given(tiny_files, tmp_path, capsys):
    out = tmp_path / "m.pt"
    assert main(["train", "--data", *map(str, tiny_files), "--out", str(out), "--epochs", "1", "--embedding-dim",
                 "3", "--device", "cpu", "--quiet", "--split", "files", "--train-file", "tiny_TRAIN.arff",
                 "--test-file", "tiny_TEST.arff"]) == 0
    ckpt = load_checkpoint(out)
    assert ckpt.split.files == ("tiny_TRAIN.arff", "tiny_TEST.arff") and ckpt.loss == "l1_trim"
