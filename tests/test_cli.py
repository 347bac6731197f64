import json
import subprocess
import sys

import pandas as pd
import pytest

from ecgviz.checkpoint.store import load_checkpoint
from ecgviz.cli.main import main


def test_train_writes_checkpoint_with_progress(tiny_files, tmp_path, capsys):
    out = tmp_path / "m.pt"
    rc = main(["train", "--data", *map(str, tiny_files), "--out", str(out), "--epochs", "2", "--embedding-dim", "3",
               "--chunk", "4", "--batch-size", "8", "--lr", "0.01", "--device", "cpu", "--seed", "4",
               "--normal-label", "1"])
    captured = capsys.readouterr()
    assert rc == 0
    assert "epoch 2/2" in captured.err and "[" in captured.err
    assert "held-out: AUROC" in captured.out
    ckpt = load_checkpoint(out)
    config = ckpt.detector.model_config
    assert config.embedding_dim == 3 and config.chunk == 4 and len(ckpt.history) == 2
    assert ckpt.train_config["seed"] == 4 and ckpt.train_config["batch_size"] == 8 and ckpt.split.seed == 4


def test_evaluate_json(tiny_ckpt_path, tiny_files, tiny_ckpt, capsys):
    assert main(["evaluate", "--checkpoint", str(tiny_ckpt_path), "--data", *map(str, tiny_files), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("auroc", "threshold", "normal_recall", "anomaly_recall", "balanced_accuracy", "n_normal", "n_anomaly"):
        assert key in out
    assert out["threshold"] == tiny_ckpt.threshold and out["held_out_split"] is True
    assert out["auroc"] == tiny_ckpt.metrics["auroc"] and out["n_normal"] == len(tiny_ckpt.split.test)
    main(["evaluate", "--checkpoint", str(tiny_ckpt_path), "--data", *map(str, tiny_files), "--json",
          "--threshold", "0"])
    assert json.loads(capsys.readouterr().out)["anomaly_recall"] == 1.0


def test_evaluate_text(tiny_ckpt_path, tiny_files, capsys):
    assert main(["evaluate", "--checkpoint", str(tiny_ckpt_path), "--data", *map(str, tiny_files)]) == 0
    text = capsys.readouterr().out
    assert "held-out split" in text and "balanced_accuracy" in text and "class 2" in text


@pytest.mark.parametrize("flagged_only", [False, True])
def test_score_csv(tiny_ckpt_path, tiny_files, tiny_data, tmp_path, flagged_only, capsys):
    out = tmp_path / "s.csv"
    args = ["score", "--checkpoint", str(tiny_ckpt_path), "--data", *map(str, tiny_files), "--out", str(out),
            "--threshold", "5"]
    assert main(args + (["--flagged-only"] if flagged_only else [])) == 0
    table = pd.read_csv(out)
    assert (table["threshold"] == 5.0).all()
    if flagged_only:
        assert table["flagged"].all() and len(table) == int(capsys.readouterr().out.split("; ")[1].split()[0])
    else:
        assert len(table) == tiny_data.n_beats


def test_user_errors_are_one_line(tmp_path, tiny_ckpt_path):
    bad = tmp_path / "bad.arff"
    bad.write_text("@relation x\n@attribute a numeric\n@attribute b numeric\n@attribute c numeric\n@data\n1,2,zz\n")
    for args, expected in [
        (["score", "--checkpoint", str(tmp_path / "none.pt"), "--data", str(bad), "--out", "x.csv"], "cannot read"),
        (["score", "--checkpoint", str(tiny_ckpt_path), "--data", str(bad), "--out", "x.csv"], "bad.arff, row 1"),
        (["evaluate", "--checkpoint", str(bad)], "not an ecgviz checkpoint"),
    ]:
        proc = subprocess.run([sys.executable, "-m", "ecgviz", *args], capture_output=True, text=True, cwd=tmp_path,
                              env={"PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[1])})
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith("ecgviz: error:") and expected in proc.stderr
        assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_length_mismatch(tiny_ckpt_path, tmp_path, capsys):
    from tests.helpers import synthetic_beats, write_arff

    X, labels = synthetic_beats(n_normal=5, n_anomaly=2, length=30)
    f = write_arff(tmp_path / "long.arff", X, labels)
    assert main(["score", "--checkpoint", str(tiny_ckpt_path), "--data", str(f), "--out", str(tmp_path / "o.csv")]) == 2
    assert "trained on beats of 24 samples, but the data has 30" in capsys.readouterr().err
