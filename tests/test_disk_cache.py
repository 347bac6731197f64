"""The disk cache a restarted dashboard draws its first chart from: checkpoint cards, scores and the parsed built-in
beats, named by hashes of what they derive from, checked when read, and never a reason for the dashboard to fail."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from ecgviz.checkpoint.card import card_from_json, card_of, card_to_json
from ecgviz.checkpoint.store import load_checkpoint, save_checkpoint
from ecgviz.dashboard import disk_cache, session
from ecgviz.errors import CheckpointError
from ecgviz.io.data import fingerprint, load_ecg5000
from ecgviz.pipeline.protocol import score_beats

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    """An empty cache folder for one test."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(disk_cache.CACHE_DIR_ENV, str(folder))
    return folder


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_card_says_what_its_checkpoint_says(tiny_ckpt):
    card = card_from_json(card_to_json(card_of(tiny_ckpt)))
    det = tiny_ckpt.detector
    assert (card.kind, card.description, card.short_name, card.loss) == (det.kind, det.description, det.short_name,
                                                                         det.measure)
    assert (card.threshold, card.threshold_rule, card.seq_len, card.name) == (
        tiny_ckpt.threshold, tiny_ckpt.threshold_rule, tiny_ckpt.seq_len, tiny_ckpt.name)
    assert card.data_fingerprint == tiny_ckpt.data_fingerprint
    assert card.metrics == json.loads(json.dumps(tiny_ckpt.metrics))  # its intervals' pairs as lists
    for part in ("train", "val", "test", "anomalies"):
        assert np.array_equal(getattr(card.split, part), getattr(tiny_ckpt.split, part))
    assert card.split.describe() == tiny_ckpt.split.describe()
    # one message for beats of another length, whichever of the two is asked
    with pytest.raises(CheckpointError) as from_card:
        card.check_fits(tiny_ckpt.seq_len + 1)
    with pytest.raises(CheckpointError) as from_ckpt:
        tiny_ckpt.check_fits(tiny_ckpt.seq_len + 1)
    assert str(from_card.value) == str(from_ckpt.value) and "24 samples" in str(from_card.value)


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.update(format="other"), "marker"),
    (lambda d: d.update(ecgviz="0.0.1"), "written by ecgviz 0.0.1"),
    (lambda d: d.update(seq_len="24"), "'seq_len'"),
    (lambda d: d.update(threshold=None), "'threshold'"),
    (lambda d: d.update(name=7), "'name'"),
    (lambda d: d["split"].pop("train"), "'split' is damaged"),
    (lambda d: d.update(metrics=[]), "'metrics'"),
])
def test_a_damaged_card_is_refused_naming_the_field(tiny_ckpt, change, message):
    d = json.loads(card_to_json(card_of(tiny_ckpt)))
    change(d)
    with pytest.raises(CheckpointError, match=message):
        card_from_json(json.dumps(d).encode())
    with pytest.raises(CheckpointError, match="not JSON"):
        card_from_json(b"{not json")


def test_a_second_load_defers_the_detector_and_gives_identical_scores(own_cache, tiny_ckpt, tiny_data, tmp_path):
    path = save_checkpoint(tiny_ckpt, tmp_path / "tiny.pt")
    data = session.make_data(tiny_data, "tiny")
    first = session.model_from_path(path)
    assert first.loaded and first.sha256 == _sha(path) and first.id == first.sha256[:16]
    computed = session.scores(first, data)

    second = session.model_from_path(path)
    assert not second.loaded and second.id == first.id and second.name == first.name == "tiny"
    assert second.card.threshold == tiny_ckpt.threshold and second.card.split.n_beats == tiny_data.n_beats
    kept = session.scores(second, data)
    assert not second.loaded  # the scores came from disk
    assert np.array_equal(kept, computed) and not kept.flags.writeable
    # the detector, read when asked for, scores exactly as the file's checkpoint does
    assert np.array_equal(score_beats(second.ckpt, tiny_data.X), score_beats(load_checkpoint(path), tiny_data.X))
    assert second.loaded and second.checkpoint_bytes() == path.read_bytes()


def test_a_changed_file_or_damaged_entry_is_never_taken_for_the_old_one(own_cache, tiny_ckpt, tiny_data, tmp_path):
    path = save_checkpoint(tiny_ckpt, tmp_path / "m.pt")
    data = session.make_data(tiny_data, "tiny")
    session.scores(session.model_from_path(path), data)
    save_checkpoint(tiny_ckpt.with_threshold(9.5), path)  # another model under the same name
    changed = session.model_from_path(path)
    assert changed.loaded and changed.card.threshold == 9.5

    # scores of the wrong length, and a card that is not one, read as absent
    kept = own_cache / "scores" / f"{changed.sha256}-{data.fingerprint}.npy"
    session.scores(changed, data)
    np.save(kept, np.zeros(3))
    assert disk_cache.load_scores(changed.sha256, data.fingerprint, tiny_data.n_beats) is None
    assert np.array_equal(session.scores(changed, data), score_beats(changed.ckpt, tiny_data.X))
    (own_cache / "cards" / f"{changed.sha256}.json").write_bytes(b"garbage")
    assert session.model_from_path(path).loaded
    with pytest.raises(ValueError, match="sha256"):
        disk_cache.load_card("../../etc/passwd")


def test_an_unusable_cache_folder_turns_the_cache_off(tmp_path, monkeypatch, tiny_ckpt, tiny_data):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(disk_cache.CACHE_DIR_ENV, str(blocker / "cache"))
    path = save_checkpoint(tiny_ckpt, tmp_path / "t.pt")
    data = session.make_data(tiny_data, "tiny")
    model = session.model_from_path(path)
    assert np.array_equal(session.scores(model, data), score_beats(tiny_ckpt, tiny_data.X))
    assert session.model_from_path(path).loaded  # nothing was kept, nothing went wrong


def test_the_cache_folder_is_private_and_stays_within_its_size(own_cache, monkeypatch):
    monkeypatch.setattr(disk_cache, "MAX_SCORE_BYTES", 4 * (128 + 8 * 100))  # four files of 100 scores
    fp = "ab" * 32
    for k in range(6):
        disk_cache.save_scores(f"{k:064x}", fp, np.full(100, float(k)))
        os.utime(own_cache / "scores" / f"{k:064x}-{fp}.npy", ns=(k * 10**9, k * 10**9))
    left = sorted(p.name[:64] for p in (own_cache / "scores").iterdir())
    assert left == [f"{k:064x}" for k in range(2, 6)]  # the oldest two went
    assert disk_cache.load_scores(f"{5:064x}", fp, 100)[0] == 5.0
    assert (own_cache.stat().st_mode & 0o777) == 0o700
    assert ((own_cache / "scores" / f"{5:064x}-{fp}.npy").stat().st_mode & 0o777) == 0o600


def test_the_built_in_beats_parsed_once_load_identical(own_cache):
    session._builtin_beats.cache_clear()
    try:
        parsed = session.builtin_data()
        session._builtin_beats.cache_clear()
        kept = session.builtin_data()
    finally:
        session._builtin_beats.cache_clear()
    assert len(list((own_cache / "beats").glob("*.npz"))) == 1
    ref = load_ecg5000()
    assert kept.fingerprint == parsed.fingerprint == fingerprint(ref)
    for part in ("X", "label_codes", "source_codes", "rows"):
        assert np.array_equal(getattr(kept.data, part), getattr(ref, part))
        assert getattr(kept.data, part).dtype == getattr(ref, part).dtype
    assert dict(kept.data.class_names) == dict(ref.class_names) and kept.data.source_names == ref.source_names


def test_the_first_chart_needs_no_torch_scikit_learn_scipy_or_pandas(own_cache):
    """What the explorer draws first, in a fresh process: none of the heavy libraries."""
    script = textwrap.dedent("""
        import sys
        from ecgviz.dashboard import config, explore, livechart, session
        data = session.builtin_data()
        model = session.model_from_path(config.default_checkpoint_path(), source="shipped")
        ev = session.explorer_view(model, data, session.default_normal_labels(data, model), session.scores(model, data))
        base = livechart.chart_base(ev, explore.slider_range(ev.errors, [model.card.threshold]))
        chart = livechart.chart_data(base, model.card.threshold, revision=0)
        heavy = sorted(m for m in ("torch", "sklearn", "scipy", "pandas") if m in sys.modules)
        print(model.loaded, ",".join(heavy) or "-", ev.metrics_at(model.card.threshold).tp)
    """)
    env = {**os.environ, disk_cache.CACHE_DIR_ENV: str(own_cache)}
    env.pop("ECGVIZ_CHECKPOINT", None)

    def run() -> list[str]:
        out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stderr
        return out.stdout.split()

    first, second = run(), run()
    # a fresh install (the shipped start-up file) and a restart (the cache the first run filled): the same
    # count of abnormal beats caught, no detector read and none of the heavy libraries imported
    assert first == second == ["False", "-", first[2]] and int(first[2]) > 2000
    assert len(list((own_cache / "beats").glob("*.npz"))) == 1  # the parsed beats, kept by the first run


def test_the_shipped_start_up_file_is_the_shipped_models_own(own_cache):
    """The card and scores shipped beside the model are what reading and scoring it give (rewrite them with
    `python -m ecgviz.dashboard.shipped_start` after replacing the model or the bundled data)."""
    from ecgviz.checkpoint.files import SHIPPED_CHECKPOINT

    with np.load(disk_cache.SHIPPED_START, allow_pickle=False) as z:
        shipped = {key: z[key] for key in z.files}
    ckpt = load_checkpoint(SHIPPED_CHECKPOINT)
    data = session.builtin_data()
    assert str(shipped["checkpoint"]) == _sha(SHIPPED_CHECKPOINT) and str(shipped["data"]) == data.fingerprint
    assert card_from_json(shipped["card"].tobytes()) is not None
    assert json.loads(shipped["card"].tobytes()) == json.loads(card_to_json(card_of(ckpt)))
    # computed on another machine, the scores may differ in the last bits, never in what they flag
    computed = score_beats(ckpt, data.data.X)
    np.testing.assert_allclose(shipped["scores"], computed, rtol=1e-5)
    assert np.count_nonzero(shipped["scores"] > ckpt.threshold) == np.count_nonzero(computed > ckpt.threshold)
    # an empty cache: the shipped model comes up from its card, its scores from the file
    model = session.model_from_path(SHIPPED_CHECKPOINT, source="shipped")
    assert not model.loaded and np.array_equal(session.scores(model, data), shipped["scores"])
    assert not model.loaded


def test_parsed_beats_are_keyed_by_each_files_name_size_and_time(tmp_path):
    a, b = tmp_path / "a.arff", tmp_path / "b.arff"
    a.write_text("one")
    b.write_text("two")
    key = disk_cache.files_key([a, b])
    assert disk_cache.files_key([a, b]) == key and disk_cache.files_key([b, a]) != key
    a.write_text("uno")  # same size, rewritten: another modification time
    os.utime(a, ns=(1, 1))
    assert disk_cache.files_key([a, b]) != key


def test_the_pause_after_the_first_chart_is_made_once_per_process(monkeypatch):
    """A score-only page may never import SciPy: its slider steps must not each wait YIELD_S (nor redraw the blank
    that holds the controls' place)."""
    from pages.common import page

    slept = []
    monkeypatch.setattr(page.time, "sleep", slept.append)
    monkeypatch.setattr(page, "_PAUSED", threading.Event())
    monkeypatch.delitem(sys.modules, "scipy", raising=False)
    assert page.pauses_after_chart()
    page.send_what_is_drawn()
    assert slept == [page.YIELD_S] and not page.pauses_after_chart()
    page.send_what_is_drawn()
    assert slept == [page.YIELD_S]
