"""Keep-the-files split, copies of a beat on one side only, and every beat's role."""

import io

import numpy as np
import pandas as pd
import pytest

from ecgviz.dashboard import explore
from ecgviz.evaluation import duplicates
from ecgviz.evaluation.split import Split, SplitError, make_file_split, make_split, protocol_split
from ecgviz.io.data import load_files
from ecgviz.pipeline import export
from ecgviz.pipeline.protocol import fit
from tests.conftest import TINY_TRAIN
from tests.helpers import synthetic_beats, write_arff


def test_file_split_trains_on_one_file_and_judges_the_other(tiny_data):
    s = protocol_split(tiny_data, ["1"], mode="files", files=("tiny_TRAIN.arff", "tiny_TEST.arff"))
    src, lab = tiny_data.sources, tiny_data.labels
    assert s.mode == "files" and s.files == ("tiny_TRAIN.arff", "tiny_TEST.arff")
    assert set(src[np.r_[s.train, s.val]]) == {"tiny_TRAIN.arff"} and set(lab[np.r_[s.train, s.val]]) == {"1"}
    assert set(src[s.held_out()]) == {"tiny_TEST.arff"}
    assert len(s.held_out()) == np.count_nonzero(src == "tiny_TEST.arff")
    roles = s.roles()
    # the TRAIN file's anomalies are not used
    assert set(roles[(src == "tiny_TRAIN.arff") & (lab != "1")]) == {"not used"}
    back = Split.from_dict(s.to_dict())
    assert (back.mode, back.files) == (s.mode, s.files) and np.array_equal(back.test, s.test)
    with pytest.raises(SplitError, match="not part of the data"):
        make_file_split(lab, src, ["1"], "nope.arff", "tiny_TEST.arff")
    with pytest.raises(SplitError, match="two different files"):
        make_file_split(lab, src, ["1"], "tiny_TEST.arff", "tiny_TEST.arff")


def test_the_checkpoint_records_the_file_split(tiny_data, tmp_path):
    from ecgviz.checkpoint.store import load_checkpoint, save_checkpoint
    from ecgviz.detectors.config import ModelConfig

    ckpt = fit(tiny_data, ["1"], ModelConfig(embedding_dim=4), TINY_TRAIN, split_mode="files",
               files=("tiny_TRAIN.arff", "tiny_TEST.arff"))
    back = load_checkpoint(save_checkpoint(ckpt, tmp_path / "f.pt"))
    assert back.split.mode == "files" and back.split.files == ("tiny_TRAIN.arff", "tiny_TEST.arff")
    assert "tiny_TRAIN.arff" in back.split.describe()


def test_seed_split_is_unchanged_without_copies():
    labels = np.array(["1"] * 200 + ["2"] * 40)
    plain = make_split(labels, ["1"], seed=5)
    grouped = make_split(labels, ["1"], seed=5, groups=np.arange(240))
    for part in ("train", "val", "test", "anomalies"):
        assert np.array_equal(getattr(plain, part), getattr(grouped, part))


def test_copies_never_straddle_the_split(tmp_path):
    X, labels = synthetic_beats(n_normal=60, n_anomaly=10, length=16)
    # the TEST file repeats 15 TRAIN beats (normal and abnormal), one of them twice
    rep = np.r_[np.arange(0, 60, 5), [60, 61], [0]]
    a = write_arff(tmp_path / "A_TRAIN.arff", X, labels)
    b = write_arff(tmp_path / "A_TEST.arff", X[rep], labels[rep])
    data = load_files([a, b])
    dup = duplicates.find(data.X)
    assert dup.n_extra == len(rep) and dup.describe(data.sources, data.rows)[0].startswith("A_TRAIN.arff row")
    for seed in range(5):
        s = protocol_split(data, ["1"], seed=seed)
        g = dup.groups
        seen = set(g[np.r_[s.train, s.val]])
        assert not seen & set(g[s.held_out()])
    f = protocol_split(data, ["1"], mode="files", files=("A_TRAIN.arff", "A_TEST.arff"))
    # every TEST beat is a copy of a TRAIN beat: the normal copies of training beats are left out
    assert not set(dup.groups[np.r_[f.train, f.val]]) & set(dup.groups[f.held_out()])


def test_explorer_counts_follow_from_the_csv(tiny_data, tiny_ckpt):
    from ecgviz.pipeline.protocol import score_beats

    errors = score_beats(tiny_ckpt, tiny_data.X)
    ev = explore.explorer_view(errors, tiny_data.labels, tiny_data.class_names, ["1"], split=tiny_ckpt.split,
                          same_data=True)
    for t in (float(np.median(errors)), tiny_ckpt.threshold, float(errors.max()) + 1):
        m = ev.metrics_at(t)
        table = pd.read_csv(io.BytesIO(export.to_csv(ev.beat_table(tiny_data, t))), keep_default_na=False)
        held = table[table.split_role == "held-out"]  # the one filter
        counts = held.outcome.value_counts().to_dict()
        assert (counts.get("TP", 0), counts.get("FP", 0), counts.get("TN", 0), counts.get("FN", 0)) == (
            m.tp, m.fp, m.tn, m.fn)
        assert set(table.split_role) <= {"train", "validation", "held-out", "not used"}
        assert (table.split_role == "train").sum() == len(tiny_ckpt.split.train)
        assert (table.outcome[table.split_role != "held-out"] == "").all()
        for label, (flagged, total) in m.class_counts.items():
            mine = held[held.label.astype(str) == label]
            assert (len(mine), int(mine.flagged.sum())) == (total, flagged)
