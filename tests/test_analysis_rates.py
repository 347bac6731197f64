"""Records whose lead has several samples per frame and whose annotations count at another rate (record 100 data)."""

from pathlib import Path

import numpy as np
import pytest
import wfdb

from ecgviz.io.recording import read_recording
from ecgviz.signal.beats import cut_beats

MITDB = Path(__file__).resolve().parent.parent / "data" / "mitdb"
SECONDS = 600


@pytest.fixture(scope="module")
def source():
    rec = wfdb.rdrecord(str(MITDB / "100"), channels=[0], physical=False, sampto=360 * SECONDS)
    ann = wfdb.rdann(str(MITDB / "100"), "atr", sampto=360 * SECONDS)
    return rec, ann


def write_record(folder: Path, rec, ann, ann_fs: float | None) -> Path:
    """MLII at 360 Hz stored as 4 samples per 90 Hz frame beside a 90 Hz lead; annotations at ann_fs (None: frames)."""
    d = rec.d_signal[:, 0].astype(np.int16)
    frames = len(d) // 4
    slow = (np.sin(np.arange(frames) / 30) * 100).astype(np.int16)
    wfdb.wrsamp("rate", fs=90, units=["mV", "mV"], sig_name=["MLII", "RESP"], e_d_signal=[d[:frames * 4], slow],
                samps_per_frame=[4, 1], fmt=["16", "16"], adc_gain=[rec.adc_gain[0], 1.0],
                baseline=[rec.baseline[0], 0], write_dir=str(folder))
    keep = ann.sample < frames * 4
    samples = ann.sample[keep] if ann_fs == 360 else ann.sample[keep] // 4
    wfdb.wrann("rate", "atr", samples, np.asarray(ann.symbol)[keep], fs=ann_fs, write_dir=str(folder))
    return folder / "rate.hea"


@pytest.mark.parametrize("ann_fs", [360, None], ids=["annotations at 360 Hz", "annotations at the frame rate"])
def test_lead_at_its_own_rate_and_annotations_at_theirs(tmp_path, source, ann_fs):
    rec, ann = source
    path = write_record(tmp_path, rec, ann, ann_fs)
    assert wfdb.rdheader(str(tmp_path / "rate")).fs == 90
    got = read_recording(path)
    assert got.fs == 360 and len(got.signal) == 360 * SECONDS
    expected = (rec.d_signal[:, 0] - rec.baseline[0]) / rec.adc_gain[0]
    np.testing.assert_allclose(got.signal, expected.astype(np.float32), atol=1e-5)
    beats = [(s, sym) for s, sym in zip(ann.sample, ann.symbol, strict=True) if sym not in "+~|\"x[]!"]
    reference = np.array([s for s, _ in beats])
    # every annotated beat lands within a frame (4 samples) of its time at 360 Hz
    assert len(got.ann_samples) == len(reference)
    assert np.abs(got.ann_samples - reference).max() <= (0 if ann_fs == 360 else 3)
    cut = cut_beats(got)
    assert cut.data.n_beats >= 0.95 * len(reference), cut.summary()
    near = np.abs(cut.data.origin.samples[:, None] - reference[None, :]).min(axis=1)
    assert near.max() <= 3


def test_slow_lead_keeps_the_frame_rate(tmp_path, source):
    rec, ann = source
    got = read_recording(write_record(tmp_path, rec, ann, 360), lead="RESP")
    assert got.fs == 90 and len(got.signal) == 90 * SECONDS
