"""`analyze` on recordings unlike record 100's file: other rates, inverted, noisy, EDF, the 208 excerpt at 500 Hz.

Each variant is written as a file (bench.analyze_foreign builds them) and analysed from it without annotations; record
100's annotations, moved to the variant's rate, only evaluate. Every variant must keep record 100's targets.
"""

from pathlib import Path

import numpy as np
import pytest

from bench.analyze_foreign import BY_NAME, TARGETS_100, TARGETS_208, judge_100, judge_208, write
from ecgviz.analysis.analyze import analyze
from ecgviz.analysis.rpeaks import match
from tests.record_files import MITDB

RECORD_100 = ("MLII 250 Hz", "MLII 1000 Hz", "MLII inverted", "MLII + wander + 50 Hz mains", "MLII 250 Hz EDF")


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    """Each variant's analysis and reference, analysed once for the module."""
    folder = tmp_path_factory.mktemp("foreign")
    cache = {}

    def get(name: str):
        if name not in cache:
            path, kwargs, ref, symbols = write(BY_NAME[name], Path(folder))
            assert not Path(str(path.with_suffix("")) + ".atr").exists()  # nothing but the file itself goes in
            cache[name] = (analyze(path, **kwargs), ref, symbols)
        return cache[name]

    return get


@pytest.mark.parametrize("name", RECORD_100)
def test_record_100_variant_meets_the_targets(analysed, name):
    a, ref, symbols = analysed(name)
    assert a.recording.fs == BY_NAME[name].fs
    r = judge_100(a, a.score, a.flagged, ref, symbols)
    t = TARGETS_100
    assert r["r_peak_sensitivity"] >= t["r_peak_sensitivity"], r
    assert r["n_recall"] >= t["n_recall"], r
    assert r["s_recall"] >= t["s_recall"], r
    assert r["balanced_accuracy"] >= t["balanced_accuracy"], r
    assert r["unmatched_flags"] <= t["unmatched_flags"], r


def test_208_excerpt_at_500_hz_meets_its_targets(analysed):
    a, _, _ = analysed("208 excerpt 500 Hz CSV")
    r = judge_208(a, a.score, a.flagged, np.asarray(a.recording.signal, np.float64))
    t = TARGETS_208
    assert r["wide_cut"] >= t["wide_cut"] and r["auroc"] >= t["auroc"], r
    assert r["wide_flagged"] >= t["wide_flagged"] and r["narrow_flagged"] <= t["narrow_flagged"], r


def test_the_same_beats_get_the_same_flags_at_250_and_1000_hz(analysed):
    slow, _, _ = analysed("MLII 250 Hz")
    fast, _, _ = analysed("MLII 1000 Hz")
    # the same R-peak found at both rates, within 10 ms
    to_fast, _ = match(np.rint(fast.samples), np.rint(slow.samples * 4.0), 10)
    near = to_fast >= 0
    assert near.mean() > 0.999
    idx = to_fast[near]
    # the unit of the shape score (normal beat-to-beat variation) no longer depends on the sampling rate
    a, b = slow.shape_score[near], fast.shape_score[idx]
    # (before the fiducials were aligned: correlation 0.94, median difference 0.98, 70 beats flagged differently)
    assert np.corrcoef(a, b)[0, 1] > 0.99
    assert np.median(np.abs(a - b)) < 0.1
    assert (slow.flagged[near] != fast.flagged[idx]).sum() <= 5


@pytest.mark.parametrize("name", ["MLII 128 Hz", "MLII inverted", "MLII in µV", "MLII 250 Hz EDF", "MLII 250 Hz CSV"])
def test_variants_are_written_as_named(tmp_path, name):
    """The bench's variants hold what their names say: rate, polarity, units, file format."""
    from bench.analyze_foreign import SECONDS, resample
    from ecgviz.io.recording import read_recording

    v = BY_NAME[name]
    path, kwargs, ref, _ = write(v, tmp_path)
    rec = read_recording(path, **kwargs)
    assert rec.fs == v.fs and rec.lead == "MLII" and path.suffix == {"wfdb": ".hea"}.get(v.form, f".{v.form}")
    assert abs(len(rec.signal) - SECONDS * v.fs) <= 1 and ref.max() < len(rec.signal)
    import wfdb

    mlii = wfdb.rdrecord(str(MITDB / "100"), channels=[0], sampto=SECONDS * 360).p_signal[:, 0]
    expected = resample(mlii, 360.0, v.fs)[:len(rec.signal)] * v.gain
    assert rec.units == ("" if v.form == "csv" else "uV" if v.gain == 1000.0 else "mV")  # a CSV names no units
    np.testing.assert_allclose(rec.signal, expected, atol=0.01 * abs(v.gain))
