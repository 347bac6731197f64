"""The CLI on a real recording: beats to ARFF and back, train/evaluate/score on a record, one-line errors."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecgviz.cli.main import main
from ecgviz.io.data import load_files

MITDB = Path(__file__).resolve().parent.parent / "data" / "mitdb"


def test_beats_writes_arff_read_back_with_labels(tmp_path, capsys):
    out = tmp_path / "b.arff"
    assert main(["beats", "--record", str(MITDB / "100.hea"), "--length", "100", "--out", str(out)]) == 0
    assert "2,271 beats cut from 2,273 R-peaks (annotations); dropped: 2 edge" in capsys.readouterr().out
    data = load_files([out])
    assert data.X.shape == (2271, 100) and data.label_counts() == {"N": 2237, "S": 33, "V": 1}
    np.testing.assert_allclose(data.X.std(axis=1, ddof=1), 1, atol=1e-4)


def test_train_and_score_a_record(tmp_path, capsys):
    ckpt = tmp_path / "m.pt"
    assert main(["train", "--data", str(MITDB / "100.hea"), "--normal-label", "N", "--epochs", "1",
                 "--embedding-dim", "4", "--device", "cpu", "--quiet", "--out", str(ckpt)]) == 0
    assert "held-out: AUROC" in capsys.readouterr().out
    out = tmp_path / "s.csv"
    assert main(["score", "--checkpoint", str(ckpt), "--data", str(MITDB / "100.dat"), str(MITDB / "100.atr"),
                 str(MITDB / "100.hea"), "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table.columns[:7]) == ["source", "row", "record", "lead", "sample", "time_s", "symbol"]
    assert len(table) == 2271 and (table["lead"] == "MLII").all() and table["sample"].iloc[0] == 370
    np.testing.assert_allclose(table["time_s"], table["sample"] / 360)
    assert (table.loc[table["label"] == "S", "symbol"] == "A").all()


@pytest.mark.parametrize("case, message", [
    ("no_header", "no header file 100.hea"),
    ("lead", "no lead 'V9'"),
    ("fs", "sampling rate 0.0 Hz is not usable"),
    ("two", "one recording at a time"),
])
def test_bad_recordings_exit_2_with_one_line(tmp_path, capsys, case, message):
    shutil.copy(MITDB / "100.dat", tmp_path / "100.dat")
    csv = tmp_path / "ecg.csv"
    csv.write_text("mv\n" + "\n".join("0.1" for _ in range(100)))
    args = {"no_header": ["--record", str(tmp_path / "100.dat")],
            "lead": ["--record", str(MITDB / "100.hea"), "--lead", "V9"],
            "fs": ["--record", str(csv), "--fs", "0"]}
    if case == "two":
        rc = main(["score", "--data", str(MITDB / "100.hea"), str(csv), "--fs", "360", "--out", str(tmp_path / "x")])
    else:
        rc = main(["beats", *args[case], "--out", str(tmp_path / "x.arff")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("ecgviz: error: ") and message in err[0], err
