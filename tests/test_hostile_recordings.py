"""Hostile recordings are refused from their header and sizes before they cost memory; real ones still load whole.

The hostile files come from bench/hostile_recordings.py, which measures the same attacks (docs/limits.md).
"""

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import wfdb

from bench import hostile_recordings as hostile
from ecgviz.errors import DataError
from ecgviz.io import recording_limits as limits
from ecgviz.io.recording import read_recording, read_uploads
from ecgviz.signal.beats import cut_beats
from tests.rss_support import peak_rss

ROOT = Path(__file__).resolve().parent.parent
MITDB = ROOT / "data" / "mitdb"
REC100_SECONDS = 650_000 / 360


def _uploads(paths):
    return [(p.name, p.read_bytes()) for p in paths]


def _cli(*args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ecgviz", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, check=False)


def test_record_100_still_loads_every_beat():
    for rec in (read_recording(MITDB / "100.hea"),
                read_uploads(_uploads(MITDB / f"100{s}" for s in (".hea", ".dat", ".atr")))):
        assert len(rec.ann_samples) == 2273 and rec.notes == ()
        assert rec.ann_symbols.count("N") == 2239 and rec.ann_symbols.count("A") == 33
        beats = cut_beats(rec)
        assert beats.data.n_beats == 2271 and beats.dropped_counts()["edge"] == 2


def test_annotation_bomb_is_refused_from_its_size_before_it_is_parsed(tmp_path):
    files = hostile.write_atr_bomb(tmp_path, 1_000_000)  # 2 MB: a million beats at one sample
    allowed_beats = int(np.ceil(REC100_SECONDS * limits.MAX_BEATS_PER_S))
    expected = (f"100.atr: 2,000,002 bytes of annotations for 1,806 s of signal; at most "
                f"{limits.ANNOTATION_BYTES_PER_BEAT * allowed_beats + 1024:,} bytes fit the {allowed_beats:,} beats")
    with pytest.raises(DataError) as err:
        read_recording(files[0])
    assert str(err.value).startswith(expected)
    with pytest.raises(DataError, match="2,000,002 bytes of annotations"):
        read_uploads(_uploads(files))


def test_annotation_bomb_costs_no_memory_and_the_cli_says_one_line(tmp_path):
    files = hostile.write_atr_bomb(tmp_path, 1_000_000)
    r = peak_rss("from ecgviz.io.recording import read_recording\n"
                 "from ecgviz.errors import DataError\n"
                 "import pandas, wfdb  # the readers' own imports come before the mark\n"
                 "mark()\n"
                 "try:\n"
                 f"    read_recording({str(files[0])!r})\n"
                 "except DataError as exc:\n"
                 "    out['error'] = str(exc)\n")
    assert r["error"].startswith("100.atr: 2,000,002 bytes of annotations")
    assert r["peak"] - r["base"] < 60, r  # was 700+ MiB: a million beats were parsed and cut
    done = _cli("beats", "--record", str(files[0]), "--out", str(tmp_path / "x.arff"), timeout=30)
    assert done.returncode == 2 and not (tmp_path / "x.arff").exists()
    assert done.stderr.strip().splitlines() == [f"ecgviz: error: {r['error']}"]


def test_beats_at_one_sample_are_merged_into_one(tmp_path):
    # 72 kB: within the size record 100's 30 minutes allow, so it is parsed; 36,000 beats at one sample make one
    files = hostile.write_atr_bomb(tmp_path, 36_000)
    rec = read_recording(files[0])
    assert rec.ann_samples.tolist() == [500] and rec.ann_symbols == ("N",)
    assert rec.notes == ("100.atr: 35,999 beat annotation(s) at a sample already annotated merged into the first "
                         "there",)
    with pytest.raises(DataError, match="found 1 R-peak"):
        cut_beats(rec)


def test_more_beats_a_second_than_a_heart_beats_are_refused(tmp_path):
    files = hostile.write_atr_bomb(tmp_path, 36_000)
    words = np.full(36_001, (1 << 10) | 1, dtype="<u2")  # one beat every sample
    words[-1] = 0
    words.tofile(files[2])
    with pytest.raises(DataError, match=r"^100\.atr: 36,000 beats in 1,806 s of signal; a recording may hold at "
                                        r"most 9,028 \(5 a second, 250,000 in all\)$"):
        read_recording(files[0])


def test_more_beats_than_a_recording_may_hold_are_refused(tmp_path):
    # 14 hours at 50 Hz allow 252,000 by the rate; 260,000 beats (520 kB) pass the size bound and are counted
    files = hostile.write_day_bomb(tmp_path, beats=260_000, hours=14)
    with pytest.raises(DataError, match=r"^day\.atr: 260,000 beats in 50,400 s of signal; a recording may hold "
                                        r"at most 250,000 "):
        read_recording(files[0])


def test_duplicate_and_out_of_range_annotations_of_a_real_record(tmp_path):
    ann = wfdb.rdann(str(MITDB / "100"), "atr")
    for suffix in (".hea", ".dat"):
        shutil.copy(MITDB / f"100{suffix}", tmp_path / f"100{suffix}")
    beat = np.isin(ann.symbol, ["N", "A", "V"])
    samples = np.concatenate([ann.sample, ann.sample[beat], [650_000, 10**9]])  # every beat twice, two past the end
    symbols = list(ann.symbol) + [s for s, b in zip(ann.symbol, beat, strict=True) if b] + ["N", "N"]
    order = np.argsort(samples, kind="stable")
    wfdb.wrann("100", "atr", samples[order], np.array(symbols)[order], write_dir=str(tmp_path))
    rec = read_recording(tmp_path / "100.hea")
    reference = read_recording(MITDB / "100.hea")
    np.testing.assert_array_equal(rec.ann_samples, reference.ann_samples)
    assert rec.ann_symbols == reference.ann_symbols and len(rec.ann_samples) == 2273
    assert rec.notes == ("100.atr: 2 beat annotation(s) outside the signal's 650,000 samples ignored",
                         "100.atr: 2,273 beat annotation(s) at a sample already annotated merged into the first "
                         "there")
    beats = cut_beats(rec)
    assert beats.data.n_beats == 2271 and beats.data.warnings[:2] == rec.notes


def test_header_skew_is_refused_before_anything_is_allocated(tmp_path):
    files = hostile.write_skew(tmp_path)
    r = peak_rss("from ecgviz.io.recording import read_uploads\n"
                 "from ecgviz.errors import DataError\n"
                 "from pathlib import Path\n"
                 f"files = [(Path(p).name, Path(p).read_bytes()) for p in {[str(f) for f in files]!r}]\n"
                 "import pandas, wfdb  # the readers' own imports come before the mark\n"
                 "mark()\n"
                 "try:\n"
                 "    read_uploads(files)\n"
                 "except DataError as exc:\n"
                 "    out['error'] = str(exc)\n")
    assert r["error"] == ("r.hea: signal 1 ('ECG') has a skew of 500,000,000 samples; it must be between 0 and "
                          "the record's length (4,000 samples)")
    assert r["peak"] - r["base"] < 60, r  # was ~950 MiB: the skew's samples were allocated


def test_skew_and_byte_offset_without_a_record_length_are_bounded_by_the_file(tmp_path):
    np.zeros(4000, dtype="<i2").tofile(tmp_path / "s.dat")
    (tmp_path / "s.hea").write_text("s 1 360\ns.dat 16:9000 200 11 1024 0 0 0 ECG\n")
    with pytest.raises(DataError, match=r"skew of 9,000 samples; it must be between 0 and the record's length "
                                        r"\(8,000 samples\)"):
        read_recording(tmp_path / "s.hea")
    (tmp_path / "s.hea").write_text("s 1 360\ns.dat 16+8002 200 11 1024 0 0 0 ECG\n")
    with pytest.raises(DataError, match=r"^s\.dat: the header puts signal 1 at byte 8,002, past the end of the "
                                        r"8,000-byte file$"):
        read_recording(tmp_path / "s.hea")


def test_huge_headers_are_refused_before_wfdb_parses_them(tmp_path):
    wide = hostile.write_wide_header(tmp_path)  # 20,000 signal lines, 0.7 MB
    with pytest.raises(DataError, match=r"^w\.hea: the header is over 64 KiB"):
        read_recording(wide[0])
    many = hostile.write_many_signals(tmp_path)  # 12,000 signal lines in 48 kB
    with pytest.raises(DataError, match=r"^d\.hea: the header describes 12,000 signals; a recording may have at "
                                        r"most 256$"):
        read_uploads(_uploads(many))


def test_a_five_million_column_csv_is_refused_at_once(tmp_path):
    wide = hostile.write_wide_text(tmp_path)[0]  # one line of 5M columns, 20 MB: pandas was still parsing after 240 s
    done = _cli("beats", "--record", str(wide), "--fs", "360", "--out", str(tmp_path / "x.arff"), timeout=20)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["ecgviz: error: wide.csv: the first line is over 64 KiB; a "
                                                "recording of 256 columns needs far less"]
    tsv = hostile.write_wide_text(tmp_path, suffix=".tsv")[0]
    with pytest.raises(DataError, match=r"^wide\.tsv: the first line is over 64 KiB"):
        read_uploads(_uploads([tsv]), fs=360.0)


def test_columns_are_counted_from_the_first_line(tmp_path):
    header = ",".join(f"c{i}" for i in range(300))
    raw = (header + "\n" + ",".join(["0.5"] * 300) + "\n").encode()
    with pytest.raises(DataError, match=r"^w\.csv: the first line has 300 columns; a recording may have at most "
                                        r"256$"):
        read_uploads([("w.csv", raw)], fs=360.0)
    rows = b"MLII\n" + b"0.5\n" * 1000 + b",".join([b"1"] * 100_000) + b"\n" + b"0.5\n" * 1000
    with pytest.raises(DataError, match=r"^r\.csv: a row has more columns than the first line's 1; every row of "
                                        r"a recording has the same columns$"):
        read_uploads([("r.csv", rows)], fs=360.0)


def test_a_long_one_column_csv_is_read_by_the_c_engine_in_little_memory(tmp_path):
    signal = np.round(np.sin(np.arange(1_500_000) / 50.0), 3)
    path = tmp_path / "long.csv"
    path.write_bytes(b"MLII\n" + "\n".join(map(str, signal)).encode() + b"\n")
    mb = path.stat().st_size / 1e6
    r = peak_rss("from pathlib import Path\n"
                 "from ecgviz.io.recording import read_uploads\n"
                 f"raw = Path({str(path)!r}).read_bytes()\n"
                 "import pandas, wfdb  # the readers' own imports come before the mark\n"
                 "mark()\n"
                 "rec = read_uploads([('long.csv', raw)], fs=360.0)\n"
                 "out['n'] = len(rec.signal)\n"
                 "out['leads'] = list(rec.leads)\n"
                 "out['sum'] = float(rec.signal.astype('float64').sum())\n")
    assert r["n"] == 1_500_000 and r["leads"] == ["MLII"]
    assert r["sum"] == pytest.approx(float(signal.astype(np.float32).astype(np.float64).sum()), abs=1e-3)
    # pandas' Python engine with a sniffed separator took ~35 bytes of memory per byte of file
    assert r["peak"] - r["base"] < 8 * mb, (r, mb)


def test_a_recording_upload_is_bounded_in_total(tmp_path):
    header = b"big 1 360 25500000\nbig.dat 16 200 11 1024 0 0 0 ECG\n"
    files = [("big.hea", header), ("big.dat", bytes(51_000_000))]
    with pytest.raises(DataError, match=r"^big\.hea \+ big\.dat: 51\.0 MB together, but a recording upload may "
                                        r"hold at most 50 MB"):
        read_uploads(files)


def test_the_upload_limit_is_the_dashboards_per_file_limit():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == limits.MAX_UPLOAD_MB


def test_the_bench_reports_each_attack_as_a_table_row(capsys):
    assert hostile.main(["--only", "skew"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| skew")]
    assert [row.split(" | ")[1] for row in rows] == ["cli", "upload"]
    assert all(row.split(" | ")[3] == "exit 2 (1 line)" for row in rows), rows
