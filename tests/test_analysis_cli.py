"""`python -m ecgviz analyze`: the files it writes, foreign WFDB signal files (.xyz, .mat), and bad input."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import wfdb
from scipy import signal as sps

from ecgviz.analysis.analyze import COLUMNS
from ecgviz.cli.main import main

MITDB = Path(__file__).resolve().parent.parent / "data" / "mitdb"
SECONDS = 120


@pytest.fixture(scope="module")
def mlii():
    rec = wfdb.rdrecord(str(MITDB / "100"), channels=[0, 1], sampto=360 * SECONDS)
    ann = wfdb.rdann(str(MITDB / "100"), "atr", sampto=360 * SECONDS)
    return rec, ann


def run(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_writes_beats_flags_and_summary(tmp_path, capsys):
    out = tmp_path / "report"
    code, printed, err = run(["analyze", "--record", str(MITDB / "100.hea"), "--out-dir", str(out)], capsys)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["beats.csv", "flagged.atr", "summary.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["report"]  # no temporary folder left beside it
    beats = pd.read_csv(out / "beats.csv", keep_default_na=False)
    assert tuple(beats.columns) == COLUMNS and len(beats) == 2271
    summary = json.loads((out / "summary.json").read_text())
    for key in ("beats", "flagged", "threshold", "rule", "lead", "fs", "seconds", "detection", "evaluation"):
        assert key in summary
    assert summary["lead"] == "MLII" and summary["fs"] == 360 and summary["beats"] == len(beats)
    flagged = beats[beats.flagged.astype(str) == "True"]
    assert summary["flagged"] == len(flagged) > 0
    ann = wfdb.rdann(str(out / "flagged"), "atr")
    assert ann.fs == 360 and list(ann.sample) == flagged["sample"].tolist()
    assert [note.split()[0] for note in ann.aux_note] == flagged.reason.tolist()
    ev = summary["evaluation"]
    assert ev["r_peak_sensitivity"] >= 0.99 and set(ev["class_recall"]) == {"N", "S", "V"}
    assert f"{summary['flagged']:,} flagged" in printed
    # an existing folder is kept unless --force, which replaces it whole
    code, _, err = run(["analyze", "--record", str(MITDB / "100.hea"), "--out-dir", str(out)], capsys)
    assert code == 2 and "already exists" in err and err.count("\n") == 1
    (out / "stale.txt").write_text("old")
    code, _, _ = run(["analyze", "--record", str(MITDB / "100.hea"), "--out-dir", str(out), "--force"], capsys)
    assert code == 0 and not (out / "stale.txt").exists() and (out / "beats.csv").is_file()


def test_ptb_style_record_with_xyz_signal_file(tmp_path, mlii, capsys):
    rec, _ = mlii
    # PTB keeps 12 leads in .dat and the Frank leads in .xyz, at 1000 Hz
    up = sps.resample_poly(rec.p_signal, 25, 9, axis=0)
    gain = 2000.0
    digital = np.round(up * gain).astype(np.int16)
    wfdb.Record(record_name="s0010_re", n_sig=2, fs=1000, sig_len=len(up), file_name=["s0010_re.dat", "s0010_re.xyz"],
                fmt=["16", "16"], adc_gain=[gain, gain], baseline=[0, 0], units=["mV", "mV"], sig_name=["ii", "vx"],
                d_signal=digital, adc_res=[16, 16], adc_zero=[0, 0], block_size=[0, 0],
                init_value=digital[0].tolist(), checksum=[int(v) for v in (digital.sum(axis=0) % 65536)]
                ).wrsamp(write_dir=str(tmp_path))
    assert (tmp_path / "s0010_re.xyz").is_file()
    out = tmp_path / "out"
    code, _printed, err = run(["analyze", "--record", str(tmp_path / "s0010_re.xyz"), "--lead", "vx",
                              "--out-dir", str(out)], capsys)
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["lead"] == "vx" and summary["fs"] == 1000 and summary["leads"] == ["ii", "vx"]
    assert 130 <= summary["beats"] <= 150  # record 100's first two minutes hold 143 beats


def test_challenge_style_mat_record(tmp_path, mlii, capsys, monkeypatch):
    from wfdb.io.convert.matlab import wfdb_to_mat

    rec, ann = mlii
    wfdb.wrsamp("A0001", fs=360, units=["mV", "mV"], sig_name=["MLII", "V5"], p_signal=rec.p_signal,
                fmt=["16", "16"], write_dir=str(tmp_path))
    monkeypatch.chdir(tmp_path)
    wfdb_to_mat("A0001")  # writes A0001m.mat and A0001m.hea, as PhysioNet challenge records come
    assert "A0001m.mat" in (tmp_path / "A0001m.hea").read_text()
    out = tmp_path / "out"
    code, _printed, err = run(["analyze", "--record", "A0001m.mat", "--out-dir", str(out)], capsys)
    assert code == 0, err
    beats = pd.read_csv(out / "beats.csv")
    reference = ann.sample[np.isin(ann.symbol, list("NAV"))]
    near = np.abs(beats["sample"].to_numpy()[:, None] - reference[None, :]).min(axis=0)
    assert (near <= 0.15 * 360).mean() >= 0.99


@pytest.mark.parametrize("make, args, message", [
    (None, ["--record", "missing.hea"], "no header file"),
    ("csv", ["--record", "strip.csv"], "give the sampling rate"),
    ("csv", ["--record", "strip.csv", "--fs", "5"], "not usable"),
    ("csv", ["--record", "strip.csv", "--fs", "360", "--lead", "V9"], "no column 'V9'"),
    ("flat", ["--record", "flat.csv", "--fs", "360"], "R-peak"),
    (None, ["--record", str(MITDB / "100.hea"), "--fs", "360"], "--fs is for CSV/TSV"),
    (None, ["--record", str(MITDB / "100.hea"), "--lead", "V9"], "no lead 'V9'"),
    (None, ["--record", str(MITDB / "100.hea")], "required: --out-dir"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, monkeypatch, make, args, message):
    monkeypatch.chdir(tmp_path)
    if make == "csv":
        pd.DataFrame({"MLII": np.sin(np.arange(3600) / 20)}).to_csv("strip.csv", index=False)
    elif make == "flat":
        pd.DataFrame({"MLII": np.zeros(3600)}).to_csv("flat.csv", index=False)
    before = set(tmp_path.iterdir())
    extra = [] if "required" in message else ["--out-dir", "report"]
    code, _out, err = run(["analyze", *args, *extra], capsys)
    assert code == 2 and message in err and err.count("\n") == 1 and err.startswith("ecgviz: error:"), err
    assert set(tmp_path.iterdir()) == before


def test_out_dir_whose_parent_is_missing_is_refused_before_work(tmp_path, capsys):
    code, _, err = run(["analyze", "--record", str(MITDB / "100.hea"), "--out-dir", str(tmp_path / "a" / "b")], capsys)
    assert code == 2 and "does not exist" in err and not (tmp_path / "a").exists()


def test_report_files_in_memory_match_the_written_ones(tmp_path):
    from ecgviz.analysis.analyze import analyze
    from ecgviz.analysis.report import FILES, report_files, write_report

    result = analyze(MITDB / "100.hea")
    files = report_files(result)
    out = write_report(result, tmp_path / "r")
    assert set(files) == set(FILES)
    for name in ("beats.csv", "flagged.atr"):
        assert files[name] == (out / name).read_bytes()
    assert json.loads(files["summary.json"])["flagged"] == result.summary["flagged"]
