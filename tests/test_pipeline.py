import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from ecgviz.checkpoint.store import load_checkpoint, save_checkpoint
from ecgviz.evaluation import metrics
from ecgviz.io.data import BeatData, load_files
from ecgviz.pipeline import export
from ecgviz.pipeline.protocol import evaluate, evaluation_indices, score_beats


def test_fit_produces_a_working_detector(tiny_ckpt, tiny_data):
    c = tiny_ckpt
    assert c.seq_len == 24 and c.split.n_beats == tiny_data.n_beats and c.threshold_rule == "p98 of training normals"
    train_errors = score_beats(c, tiny_data.X[c.split.train])
    assert c.threshold == pytest.approx(np.percentile(train_errors, 98))
    m = c.metrics
    assert m["held_out_split"] is True and m["n_normal"] == len(c.split.test) and m["n_anomaly"] == 20
    # spikes and noise are far from a sine: a working autoencoder separates them perfectly
    assert m["auroc"] > 0.95


def test_evaluate_matches_sklearn_on_held_out_split(tiny_ckpt, tiny_data):
    ev = evaluate(tiny_ckpt, tiny_data)
    idx, is_anomaly = tiny_ckpt.split.eval_indices()
    assert ev.held_out and np.array_equal(ev.indices, idx)
    assert not np.intersect1d(ev.indices, tiny_ckpt.split.train).size
    assert ev.auroc == pytest.approx(roc_auc_score(is_anomaly, ev.errors))
    flagged = ev.errors > ev.metrics.threshold
    assert ev.metrics.balanced_accuracy == pytest.approx(balanced_accuracy_score(is_anomaly, flagged))
    other = evaluate(tiny_ckpt, tiny_data, threshold=0.0)
    assert other.metrics.anomaly_recall == 1.0 and other.metrics.normal_recall == 0.0


def test_other_data_is_evaluated_whole(tiny_ckpt, tiny_data):
    X = np.array(tiny_data.X) * 1.0001  # different fingerprint: the split no longer applies
    data = BeatData(X, tiny_data.labels, tiny_data.class_names, tiny_data.sources, tiny_data.rows)
    idx, is_anomaly, held_out = evaluation_indices(tiny_ckpt, data)
    assert not held_out and len(idx) == data.n_beats and is_anomaly.sum() == 20
    with pytest.raises(ValueError, match="labelled"):
        evaluation_indices(tiny_ckpt, BeatData(X, None, {}, tiny_data.sources, tiny_data.rows))


def test_end_to_end_train_save_load_score_export(tiny_ckpt, tiny_files, tmp_path):
    path = save_checkpoint(tiny_ckpt, tmp_path / "m.pt")
    ckpt = load_checkpoint(path)
    data = load_files(tiny_files)
    errors = score_beats(ckpt, data.X)
    assert np.allclose(errors, score_beats(tiny_ckpt, data.X))
    table = export.beat_table(data, errors, ckpt.threshold)
    out = tmp_path / "scores.csv"
    export.write_csv(table, out)
    import pandas as pd

    back = pd.read_csv(out, dtype={"label": str})
    assert len(back) == data.n_beats
    assert np.array_equal(back["error"].to_numpy(), errors)
    assert list(back["source"].unique()) == ["tiny_TRAIN.arff", "tiny_TEST.arff"]
    assert back["flagged"].sum() == int((errors > ckpt.threshold).sum())
    m = metrics.at_threshold(errors, data.labels != "1", ckpt.threshold, data.labels)
    assert m.tp + m.fp == back["flagged"].sum()


def test_fit_stops_without_scoring_when_cancelled(tiny_data):
    import threading

    from ecgviz.detectors.config import ModelConfig
    from ecgviz.pipeline.protocol import TrainingCancelled, fit
    from tests.conftest import TINY_TRAIN

    stop = threading.Event()
    epochs = []

    def on_epoch(info):
        epochs.append(info.epoch)
        stop.set()

    with pytest.raises(TrainingCancelled):
        fit(tiny_data, ["1"], ModelConfig(embedding_dim=3), TINY_TRAIN, fractions=(0.6, 0.2, 0.2),
            on_epoch=on_epoch, stop=stop)
    assert epochs == [1]


def test_shipped_checkpoint_meets_its_bar_on_the_held_out_split():
    from ecgviz.checkpoint.store import SHIPPED_CHECKPOINT
    from ecgviz.io.data import load_ecg5000

    ckpt = load_checkpoint(SHIPPED_CHECKPOINT)
    ev = evaluate(ckpt, load_ecg5000())
    assert ev.held_out and ev.metrics.n_normal == 219 and ev.metrics.n_anomaly == 2081
    assert ev.auroc >= 0.99 and ev.metrics.balanced_accuracy >= 0.97
    assert ev.metrics.threshold == ckpt.threshold and ckpt.threshold_rule == "p98 of training normals"
    # the stored metrics are what evaluation gives today
    assert ckpt.metrics["auroc"] == pytest.approx(ev.auroc, abs=1e-6)
    assert ckpt.metrics["balanced_accuracy"] == pytest.approx(ev.metrics.balanced_accuracy, abs=1e-3)


def test_other_normal_labels_on_the_same_data_still_leave_out_training_beats(tiny_ckpt, tiny_data):
    idx, is_anomaly, held_out = evaluation_indices(tiny_ckpt, tiny_data, ["1", "2"])
    seen = np.union1d(tiny_ckpt.split.train, tiny_ckpt.split.val)
    assert held_out and not np.intersect1d(idx, seen).size
    assert len(idx) == tiny_data.n_beats - len(seen)
    assert np.array_equal(is_anomaly, tiny_data.labels[idx] == "3")
