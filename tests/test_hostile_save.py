"""Hostile saving: many writers on one checkpoint name, two trainings asking for one name at once, a file replaced
under a session's model, and bad fields in baseline (kNN, PCA) checkpoints."""

from __future__ import annotations

import copy
import dataclasses
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from ecgviz.checkpoint.files import NameInUse, marker_for, reserve
from ecgviz.checkpoint.store import CheckpointError, load_checkpoint, save_checkpoint, to_dict
from ecgviz.dashboard import config, session, training
from ecgviz.dashboard.text import plain
from ecgviz.detectors.baselines import KNNDistance
from ecgviz.pipeline.protocol import fit_detector
from tests.test_hostile_checkpoints import BAD_FIELDS, _bad, torch_bytes

ROOT = Path(__file__).resolve().parent.parent
N = 40
IN_USE = "the name 'm' is being used by another training; choose another"


def at_once(n: int, work) -> list:
    """work(i) in n threads released together; each thread's return value, or the exception it raised."""
    barrier, out = threading.Barrier(n), [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = work(i)
        except Exception as exc:
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def same_weights(a, b) -> bool:
    sa, sb = a.detector.model_.state_dict(), b.detector.model_.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# --- the temporary file: one per write ---------------------------------------------------------------------------

def test_forty_saves_at_once_to_one_name_all_succeed_and_leave_one_whole_file(tiny_ckpt, tmp_path):
    ckpts = [tiny_ckpt.with_threshold(1.0 + i) for i in range(N)]
    out = at_once(N, lambda i: save_checkpoint(ckpts[i], tmp_path / "m.pt"))
    assert [o for o in out if isinstance(o, Exception)] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]  # no temporary file left behind
    assert load_checkpoint(tmp_path / "m.pt").threshold in {1.0 + i for i in range(N)}


def test_forty_exclusive_saves_to_one_name_exactly_one_wins(tiny_ckpt, tmp_path):
    ckpts = [tiny_ckpt.with_threshold(1.0 + i) for i in range(N)]
    out = at_once(N, lambda i: save_checkpoint(ckpts[i], tmp_path / "m.pt", exclusive=True))
    won = [i for i, o in enumerate(out) if o == tmp_path / "m.pt"]
    assert len(won) == 1 and sum(isinstance(o, FileExistsError) for o in out) == N - 1
    assert load_checkpoint(tmp_path / "m.pt").threshold == 1.0 + won[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]


def test_a_failed_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    from ecgviz.checkpoint import files as checkpoint_files

    def broken(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint_files.os, "replace", broken)
    with pytest.raises(OSError, match="No space left"):
        checkpoint_files.write_atomically(b"abc", tmp_path / "m.pt")
    assert list(tmp_path.iterdir()) == []


# --- the name: held from the start of a training to its end ------------------------------------------------------

def test_forty_reservations_of_one_name_at_once_exactly_one_wins(tmp_path):
    out = at_once(N, lambda i: reserve(tmp_path / "m.pt"))
    held = [o for o in out if not isinstance(o, Exception)]
    assert len(held) == 1 and [str(o) for o in out if isinstance(o, NameInUse)] == [IN_USE] * (N - 1)
    held[0].release()
    assert not marker_for(tmp_path / "m.pt").exists()
    with reserve(tmp_path / "m.pt") as again:  # free once released
        assert again.held
    (tmp_path / "m.pt").write_bytes(b"saved")
    with pytest.raises(NameInUse, match=r"a checkpoint named 'm\.pt' already exists; choose another name"):
        reserve(tmp_path / "m.pt")


@pytest.fixture
def labelled(tiny_data):
    return session.make_data(tiny_data, "tiny")


@pytest.fixture
def settings(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return training.TrainSettings(embedding_dim=4, epochs=2, device="cpu")


def quick_fit(ckpt):
    """A stand-in for pipeline.fit that returns `ckpt` under the requested name at once."""
    return lambda *args, name, **kwargs: dataclasses.replace(ckpt, name=name)


def test_two_sessions_asking_for_one_name_at_once_one_trains_and_the_other_is_told(labelled, settings, tiny_ckpt,
                                                                                   tmp_path):
    fit_fn = quick_fit(tiny_ckpt)
    out = at_once(2, lambda i: training.start_training(labelled, ["1"], "m", settings, directory=tmp_path,
                                                      fit_fn=fit_fn))
    jobs = [o for o in out if not isinstance(o, Exception)]
    assert len(jobs) == 1 and [str(o) for o in out if isinstance(o, ValueError)] == [IN_USE]
    job = jobs[0].start()
    assert job.join(60) and job.state().status == "done", job.state().message
    assert job.result.path == tmp_path / "m.pt" and job.result.name == "m"
    assert not marker_for(tmp_path / "m.pt").exists()  # released once saved
    with pytest.raises(ValueError, match=r"'m\.pt' already exists"):  # the saved name stays refused, as before
        training.start_training(labelled, ["1"], "m", settings, directory=tmp_path, fit_fn=fit_fn)


def test_a_running_training_holds_its_name_until_it_is_cancelled(labelled, settings, tiny_ckpt, tmp_path):
    def slow_fit(*args, name, stop, **kwargs):
        stop.wait(30)
        return dataclasses.replace(tiny_ckpt, name=name)

    first = training.start_training(labelled, ["1"], "m", settings, directory=tmp_path, fit_fn=slow_fit).start()
    with pytest.raises(ValueError, match=IN_USE):
        training.start_training(labelled, ["1"], "m", settings, directory=tmp_path, fit_fn=slow_fit)
    first.cancel()
    assert first.join(30) and first.state().status == "cancelled"
    assert not (tmp_path / "m.pt").exists()
    second = training.start_training(labelled, ["1"], "m", settings, directory=tmp_path, fit_fn=quick_fit(tiny_ckpt))
    assert second.start().join(60) and second.result.path == tmp_path / "m.pt"


def test_a_failed_training_gives_its_name_back(labelled, settings, tmp_path):
    def failing_fit(*args, **kwargs):
        raise RuntimeError("out of memory")

    job = training.start_training(labelled, ["1"], "m", settings, directory=tmp_path, fit_fn=failing_fit).start()
    assert job.join(30) and job.state().status == "error" and job.state().message == "out of memory"
    with reserve(tmp_path / "m.pt") as held:
        assert held.held


def test_a_file_written_under_a_held_name_is_never_overwritten(labelled, settings, tiny_ckpt, tmp_path):
    job = training.start_training(labelled, ["1"], "m", settings, directory=tmp_path, fit_fn=quick_fit(tiny_ckpt))
    (tmp_path / "m.pt").write_bytes(b"written by hand meanwhile")  # a writer that does not ask for the name
    assert job.start().join(60) and job.state().status == "done", job.state().message
    assert (tmp_path / "m.pt").read_bytes() == b"written by hand meanwhile"
    assert job.result.path == tmp_path / "m_2.pt" and job.result.name == "m_2"
    assert load_checkpoint(tmp_path / "m_2.pt").name == "m_2"


def test_two_continued_trainings_of_one_model_get_two_names(labelled, tiny_ckpt, tmp_path):
    model = session.model_from_path(save_checkpoint(tiny_ckpt, tmp_path / "tiny.pt"))
    model = session.ActiveModel(ckpt=dataclasses.replace(model.ckpt, train_state={"optimizer": {
        "state": {}, "param_groups": [{}]}}), id=model.id, name=model.name, source=model.source, path=model.path)
    out = at_once(2, lambda i: training.start_resume(model, labelled, 3, directory=tmp_path,
                                                    resume_fn=lambda *a, **k: tiny_ckpt))
    assert sorted(o.reservation.path.name for o in out) == [f"tiny_{len(tiny_ckpt.history) + 3}ep.pt",
                                                            f"tiny_{len(tiny_ckpt.history) + 3}ep_2.pt"]


HOLD = """
import sys
from ecgviz.checkpoint.files import reserve
held = reserve(sys.argv[1])
print("held", flush=True)
sys.stdin.readline()
"""


def test_a_name_held_by_a_process_that_died_is_free_again(tmp_path):
    path = tmp_path / "m.pt"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(NameInUse, match=IN_USE):  # held across processes
            reserve(path)
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # a crash: nothing is released by the process itself
        proc.wait(10)
    assert marker_for(path).exists()  # the marker stays behind, unlocked
    with reserve(path) as held:
        assert held.held


# --- Export: the bytes of the model the session holds ------------------------------------------------------------

def test_a_models_bytes_are_its_own_after_another_file_replaces_its_name(tiny_ckpt, tmp_path):
    mine = session.model_from_path(save_checkpoint(tiny_ckpt.with_threshold(1.5), tmp_path / "m.pt"))
    assert mine.checkpoint_bytes() == (tmp_path / "m.pt").read_bytes()  # unchanged: the file itself
    save_checkpoint(other_model(tiny_ckpt), tmp_path / "m.pt")  # another session saved under the same name
    back = load_checkpoint(mine.checkpoint_bytes(), name="m.pt")
    assert back.threshold == 1.5 and same_weights(back, mine.ckpt)
    assert not same_weights(back, other_model(tiny_ckpt))
    assert back.split.to_dict() == mine.ckpt.split.to_dict() and back.metrics == mine.ckpt.metrics
    (tmp_path / "m.pt").unlink()  # and deleted
    assert load_checkpoint(mine.checkpoint_bytes(), name="m.pt").threshold == 1.5
    assert mine.download_name() == "m.pt"


def other_model(ckpt):
    """Another model of the same shape: every weight moved, another threshold."""
    detector = copy.deepcopy(ckpt.detector)
    with torch.no_grad():
        for p in detector.model_.parameters():
            p.add_(1.0)
    return dataclasses.replace(ckpt, detector=detector, threshold=9.0)


def test_a_trained_model_is_the_bytes_it_saved_not_a_reread_file(labelled, settings, tiny_ckpt, tmp_path):
    job = training.start_training(labelled, ["1"], "m", settings, directory=tmp_path, fit_fn=quick_fit(tiny_ckpt))
    assert job.start().join(60)
    mine = job.result
    assert mine.checkpoint_bytes() == (tmp_path / "m.pt").read_bytes()
    assert mine.id == session.model_from_path(tmp_path / "m.pt").id
    save_checkpoint(other_model(tiny_ckpt), tmp_path / "m.pt")
    back = load_checkpoint(mine.checkpoint_bytes())
    assert back.threshold == tiny_ckpt.threshold != 9.0 and same_weights(back, tiny_ckpt)


def test_the_export_page_downloads_the_sessions_model(tiny_ckpt, tiny_data, tmp_path, monkeypatch, downloads):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_data.clear()
    st.cache_resource.clear()
    path = save_checkpoint(tiny_ckpt.with_threshold(1.5), tmp_path / "m.pt")
    monkeypatch.setenv(config.CHECKPOINT_ENV, str(path))
    monkeypatch.setenv(config.CHECKPOINT_DIR_ENV, str(tmp_path))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["active_data"] = session.make_data(tiny_data, "tiny")
    at.run()
    assert at.session_state["active_model"].ckpt.threshold == 1.5
    save_checkpoint(other_model(tiny_ckpt), path)  # another session's model now under the name
    at.switch_page("pages/export.py").run()
    assert not at.exception, [e.message for e in at.exception]
    assert load_checkpoint(downloads["m.pt"]).threshold == 1.5
    st.cache_data.clear()
    st.cache_resource.clear()


# --- bad fields in baseline checkpoints (the autoencoder's are in test_hostile_checkpoints.py) -------------------

@pytest.fixture(scope="module")
def knn_dict(tiny_data):
    return to_dict(fit_detector(tiny_data, KNNDistance(k=3), ["1"]))


BASELINE_BAD = [(f, v, m) for f, v, m in BAD_FIELDS if f != "loss"] + [
    ("loss", "l1", r"loss: 'l1' is not one of knn"),
    ("seq_len", 10**12, r"seq_len: 1000000000000 is not a whole number in \[1, 2,147,483,648\]"),
]


@pytest.mark.parametrize(("field", "value", "message"), BASELINE_BAD,
                         ids=[f"{f}-{i}" for i, (f, _, _) in enumerate(BASELINE_BAD)])
def test_every_field_of_a_baseline_checkpoint_is_checked_at_load(knn_dict, field, value, message):
    with pytest.raises(CheckpointError, match=r"^b\.pt is a damaged ecgviz checkpoint: " + message):
        load_checkpoint(torch_bytes(_bad(knn_dict, field, value)), name="b.pt")


def test_the_model_page_keeps_its_tabs_after_loading_a_bad_baseline(knn_dict, tiny_ckpt, tiny_data, tmp_path,
                                                                      monkeypatch):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_data.clear()
    st.cache_resource.clear()
    monkeypatch.setenv(config.CHECKPOINT_ENV, str(save_checkpoint(tiny_ckpt, tmp_path / "tiny.pt")))
    monkeypatch.setenv(config.CHECKPOINT_DIR_ENV, str(tmp_path))
    bad = tmp_path / "knn_bad.pt"
    bad.write_bytes(torch_bytes(_bad(knn_dict, "metrics.auroc", "high")))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["active_data"] = session.make_data(tiny_data, "tiny")
    at.run()
    at.switch_page("pages/model.py").run()
    at.selectbox(key="ckpt_choice").set_value(str(bad)).run()
    at.button(key="ckpt_load").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert [e.value for e in at.error] == [plain("knn_bad.pt is a damaged ecgviz checkpoint: metrics.auroc: 'high' "
                                                 "is not a number in [0, 1]")]
    assert len(at.tabs) == 2 and at.session_state["active_model"].name == "tiny"
    st.cache_data.clear()
    st.cache_resource.clear()


# --- the command line: `train --out` holds its name too, unless --force ------------------------------------------

def cli_train(tiny_files, out, *extra) -> list[str]:
    return ["train", "--data", *map(str, tiny_files), "--out", str(out), "--epochs", "1", "--embedding-dim", "3",
            "--device", "cpu", "--quiet", *extra]


def test_cli_train_is_refused_at_once_when_a_training_holds_the_name(tiny_files, tmp_path, capsys):
    from ecgviz.cli.main import main

    with reserve(tmp_path / "m.pt"):
        assert main(cli_train(tiny_files, tmp_path / "m.pt")) == 2
    assert IN_USE in capsys.readouterr().err and not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize("force", [False, True])
def test_cli_train_never_overwrites_a_file_that_appeared_unless_forced(tiny_files, tiny_ckpt, tmp_path, monkeypatch,
                                                                       capsys, force):
    from ecgviz.cli import main as cli
    from ecgviz.pipeline import protocol

    def fit_while_another_writes(*args, **kwargs):
        (tmp_path / "m.pt").write_bytes(b"another writer")
        return tiny_ckpt

    monkeypatch.setattr(protocol, "fit", fit_while_another_writes)  # the train command looks it up when it runs
    assert cli.main(cli_train(tiny_files, tmp_path / "m.pt", *(["--force"] if force else []))) == 0
    err = capsys.readouterr().err
    if force:  # asked for: the file is replaced, whole
        assert load_checkpoint(tmp_path / "m.pt").threshold == tiny_ckpt.threshold
        assert not (tmp_path / "m_2.pt").exists()
    else:
        assert (tmp_path / "m.pt").read_bytes() == b"another writer"
        assert load_checkpoint(tmp_path / "m_2.pt").threshold == tiny_ckpt.threshold
        assert f"{tmp_path / 'm.pt'} was written by something else while this trained; saved as " \
               f"{tmp_path / 'm_2.pt'} instead" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == (["m.pt"] if force else ["m.pt", "m_2.pt"])


def cli_baseline(tiny_files, out, *extra) -> list[str]:
    return ["baseline", "--kind", "knn", "--k", "3", "--data", *map(str, tiny_files), "--out", str(out), *extra]


def test_cli_baseline_keeps_an_existing_file_unless_forced(tiny_files, tiny_ckpt, tmp_path, capsys):
    from ecgviz.cli.main import main

    out = save_checkpoint(tiny_ckpt, tmp_path / "b.pt")
    before = out.read_bytes()
    assert main(cli_baseline(tiny_files, out)) == 2
    assert capsys.readouterr().err.strip() == (f"ecgviz: error: {out} already exists; choose another --out or add "
                                               "--force to overwrite it")
    assert out.read_bytes() == before
    assert main(cli_baseline(tiny_files, out, "--force")) == 0
    assert load_checkpoint(out).kind == "knn"


def test_cli_baseline_is_refused_while_a_training_holds_the_name(tiny_files, tmp_path, capsys):
    from ecgviz.cli.main import main

    with reserve(tmp_path / "b.pt"):
        assert main(cli_baseline(tiny_files, tmp_path / "b.pt")) == 2
    assert IN_USE.replace("'m'", "'b'") in capsys.readouterr().err and not (tmp_path / "b.pt").exists()
