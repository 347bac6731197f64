"""Training that fits the data: the automatic cap and patience, resuming, the quality check, keep-best, the CLI."""

import itertools
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from ecgviz.checkpoint.store import load_checkpoint, save_checkpoint
from ecgviz.cli import main as cli
from ecgviz.dashboard import jobs, session, training
from ecgviz.detectors.config import BY_PATIENCE, BY_USER, ModelConfig, TrainConfig
from ecgviz.detectors.train import still_improving
from ecgviz.evaluation import quality
from ecgviz.io.data import BeatData
from ecgviz.pipeline.protocol import fit, resume_fit
from tests.helpers import write_arff

SMALL = ModelConfig(embedding_dim=8)
ROOT = Path(__file__).resolve().parent.parent


def small_set(n_normal=120, n_anomaly=40, length=60, seed=0) -> BeatData:
    """A small data set like ECG200: normal beats (a sharp peak, then a negative wave) and beats whose second
    wave is inverted, with random amplitude, timing and noise."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, length)

    def beats(n, wave):
        shift, amp = rng.uniform(-0.05, 0.05, (n, 1)), rng.uniform(0.8, 1.2, (n, 1))
        peaks = 3 * np.exp(-((t - 0.3 - shift) / 0.03) ** 2) + wave * np.exp(-((t - 0.6 - shift) / 0.08) ** 2)
        return amp * peaks + 0.05 * rng.standard_normal((n, length))

    X = np.vstack([beats(n_normal, -0.5), beats(n_anomaly, 0.5)]).astype(np.float32)
    labels = np.array(["1"] * n_normal + ["2"] * n_anomaly)
    return BeatData(X, labels, {}, np.array(["small_TRAIN.tsv"] * len(X)), np.arange(len(X)))


@pytest.fixture(scope="module")
def data():
    return small_set()


@pytest.fixture(scope="module")
def old_default(data):
    """The previous default: 40 epochs whatever the data (here 4 optimizer steps each)."""
    return fit(data, ["1"], SMALL, TrainConfig(epochs=40, patience=10))


@pytest.fixture(scope="module")
def new_default(data):
    return fit(data, ["1"], SMALL, TrainConfig())


def test_the_cap_scales_with_the_data_and_keeps_ecg5000_at_40():
    assert TrainConfig().plan(2481) == (40, 10)  # ECG5000's 2,481 training normals: the tuned run, unchanged
    assert TrainConfig().plan(102) == (780, 78)  # 4 steps an epoch: the same 3,120 optimizer steps
    assert TrainConfig().plan(5) == (2000, 200)  # capped
    assert TrainConfig(epochs=7, patience=3).plan(102) == (7, 3)


def test_the_old_default_undertrains_a_small_set_and_the_new_one_converges(old_default, new_default):
    old, new = old_default, new_default
    assert len(old.history) == 40
    # the new default ran until validation loss stopped improving, far past 40 epochs, and ended there
    assert new.train_config["ended_by"] == BY_PATIENCE and 200 < len(new.history) < 780
    assert not new.train_config["still_improving"]
    old_best, new_best = (min(h["val_loss"] for h in c.history) for c in (old, new))
    assert new_best < 0.4 * old_best  # measured: 6.5 against 24.9
    # the undertrained model draws flat lines and separates nothing; the converged one separates every beat
    assert old.metrics["auroc"] < 0.6 and new.metrics["auroc"] > 0.99
    q_old, q_new = quality.from_metrics(old.metrics), quality.from_metrics(new.metrics)
    assert q_old.degenerate and q_old.within_ratio < 0.01 and q_old.across_ratio < 0.01
    assert not q_new.degenerate and q_new.within_ratio > 0.5 and q_new.across_ratio > 0.5
    assert new.train_config["torch_threads"] == torch.get_num_threads()
    assert new.data_sources == ("small_TRAIN.tsv",)


def test_resume_continues_the_loss_curve_and_the_adam_state(data, old_default, tmp_path):
    path = save_checkpoint(old_default, tmp_path / "old.pt")
    ckpt = load_checkpoint(path)
    assert ckpt.train_state["optimizer"]["state"]  # Adam's moments survive a weights-only round trip
    more = resume_fit(ckpt, data, 60)
    h = more.history
    assert [e["epoch"] for e in h] == list(range(1, 101))
    assert list(h[:40]) == list(ckpt.history)  # the earlier curve, unchanged
    assert all(b["elapsed_s"] >= a["elapsed_s"] for a, b in itertools.pairwise(h))
    assert more.split == ckpt.split and more.detector.normalisation_ == ckpt.detector.normalisation_
    assert min(e["val_loss"] for e in h[40:]) < 0.9 * min(e["val_loss"] for e in h[:40])
    assert more.train_config["resumed_from"] == 40


def test_still_improving_reads_the_last_quarter():
    falling = [{"val_loss": 100 - i} for i in range(40)]
    flat = [{"val_loss": 100 - i} for i in range(20)] + [{"val_loss": 80.0}] * 20
    assert still_improving(falling) and not still_improving(flat)


def test_a_collapsed_model_triggers_the_warning(data):
    X = data.X[:50]
    flat = np.repeat(X.mean(axis=1, keepdims=True), X.shape[1], axis=1)  # a flat line per beat
    same = np.repeat(X.mean(axis=0, keepdims=True), len(X), axis=0)  # one beat for all
    q = quality.assess(X, flat, auroc=0.52)
    assert q.degenerate and len(q.warnings) == 3 and q.within_ratio == pytest.approx(0.0, abs=1e-9)
    assert "What to try" in q.message()
    assert quality.assess(X, same).across_ratio == pytest.approx(0.0, abs=1e-9)
    good = quality.assess(X, X, auroc=0.99)
    assert not good.degenerate and good.within_ratio == pytest.approx(1.0) and good.across_ratio == pytest.approx(1.0)
    # cross-check the ratios with numpy's variance on a hand-made pair
    R = X * 0.5
    assert quality.variance_ratios(X, R)[0] == pytest.approx(0.25, rel=1e-6)


def test_stop_and_keep_saves_the_best_model_marked_as_stopped_by_the_user(data, tmp_path):
    settings = training.TrainSettings(embedding_dim=4, epochs=500, batch_size=16, device="cpu")
    job = training.start_training(session.make_data(data, "small"), ["1"], "kept", settings, directory=tmp_path)
    started = threading.Event()
    inner = job._on_epoch

    def on_epoch(info):
        if info.epoch == 3:
            started.set()
        return inner(info)

    job._on_epoch = on_epoch
    job.start()
    assert started.wait(60)
    job.stop_and_keep()
    assert job.join(120)
    s = job.state()
    assert s.status == jobs.DONE and s.kept
    ckpt = job.result.ckpt
    assert ckpt.train_config["ended_by"] == BY_USER and ckpt.train_config["cancelled"] is True
    assert 3 <= len(ckpt.history) < 500 and (tmp_path / "kept.pt").is_file()


def test_cancel_and_discard_saves_nothing(data, tmp_path):
    settings = training.TrainSettings(embedding_dim=4, epochs=500, batch_size=16, device="cpu")
    job = training.start_training(session.make_data(data, "small"), ["1"], "gone", settings, directory=tmp_path)
    job.start()
    job.cancel()
    assert job.join(120)
    assert job.state().status == jobs.CANCELLED and job.result is None and not (tmp_path / "gone.pt").exists()


def test_cli_refuses_to_overwrite_without_force_and_says_when_to_continue(data, tmp_path, capsys):
    files = [str(write_arff(tmp_path / "small.arff", data.X, data.labels))]
    out = tmp_path / "m.pt"
    out.write_bytes(b"x")
    args = ["train", "--data", *files, "--out", str(out), "--embedding-dim", "8", "--quiet"]
    assert cli.main([*args, "--epochs", "40"]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == b"x"
    assert cli.main([*args, "--epochs", "40", "--force"]) == 0
    text = capsys.readouterr().out
    assert "ended by epoch cap" in text and "1 torch thread(s)" in text
    assert "Its reconstructions are nearly flat" in text  # the undertrained model, flagged
    assert f"train --resume {out} --out {out} --force" in text
    assert cli.main(["evaluate", "--checkpoint", str(out), "--data", *files]) == 0
    assert "Its reconstructions are nearly flat" in capsys.readouterr().out
    assert cli.main(["train", "--data", *files, "--resume", str(out), "--out", str(out), "--force", "--quiet",
                     "--epochs", "20"]) == 0
    assert len(load_checkpoint(out).history) == 60


def test_cli_and_dashboard_share_defaults():
    parser = cli.build_parser()
    args = parser.parse_args(["train", "--out", "x.pt"])
    s, t = training.TrainSettings(), TrainConfig()
    assert (args.epochs, args.patience, args.batch_size, args.lr, args.loss, args.seed) == (
        s.epochs, s.patience, s.batch_size, s.lr, s.loss, s.seed) == (
        t.epochs, t.patience, t.batch_size, t.lr, t.loss, t.seed)
    assert args.percentile == s.percentile and args.max_minutes is None and s.max_minutes is None


def test_ctrl_c_in_the_cli_stops_and_keeps_the_best_model(data, tmp_path):
    files = [str(write_arff(tmp_path / "small.arff", data.X, data.labels))]
    out = tmp_path / "stopped.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "ecgviz", "train", "--data", *files, "--out", str(out),
                             "--embedding-dim", "4", "--epochs", "3000"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = b""
    while b"epoch 3/" not in seen:  # the progress bar: training has started
        chunk = proc.stderr.read1(4096)
        assert chunk, seen.decode(errors="replace")
        seen += chunk
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr.decode(errors="replace")
    assert b"the best model so far will be saved" in stderr
    assert b"stopped early by the user" in stdout and f"--resume {out}".encode() in stdout
    ckpt = load_checkpoint(out)
    assert ckpt.train_config["ended_by"] == BY_USER and 3 <= len(ckpt.history) < 3000


def test_auroc_below_chance_is_flagged_too(data):
    X = data.X[:20]
    assert [w.split(",")[0] for w in quality.assess(X, X, auroc=0.27).warnings] == ["Its held-out ROC AUC is 0.270"]
    assert not quality.assess(X, X, auroc=0.65).degenerate


def test_a_run_stopped_by_the_user_resumes_the_rest_of_its_schedule(data):
    cfg = TrainConfig(epochs=20, patience=100)
    stopped = fit(data, ["1"], SMALL, cfg, on_epoch=lambda info: info.epoch == 5)
    assert stopped.train_config["ended_by"] == BY_USER and len(stopped.history) == 5
    lr_at_stop = stopped.train_state["optimizer"]["param_groups"][0]["lr"]
    per_epoch = -(-len(stopped.split.train) // cfg.batch_size)
    assert lr_at_stop == pytest.approx(0.5 * cfg.lr * (1 + np.cos(np.pi * 5 * per_epoch / (20 * per_epoch))))
    more = resume_fit(stopped, data)  # no epoch count: the rest of the interrupted cosine cycle
    assert [h["epoch"] for h in more.history] == list(range(1, 21)) and more.train_config["epoch_cap"] == 20
    assert more.train_state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.0, abs=1e-9)
    assert more.train_config["cycle_start"] == 0 and more.train_config["cycle_lr"] == cfg.lr
    # a run that used up its cycle starts a new one at half the rate
    again = resume_fit(more, data, 4)
    assert again.train_config["cycle_start"] == 20 and again.train_config["cycle_lr"] == cfg.lr / 2
    assert len(again.history) == 24


def test_resuming_leaves_the_checkpoint_it_started_from_unchanged(data, old_default):
    before = {k: v["exp_avg"].clone() for k, v in old_default.train_state["optimizer"]["state"].items()}
    resume_fit(old_default, data, 2)
    after = old_default.train_state["optimizer"]["state"]
    assert all(torch.equal(before[k], after[k]["exp_avg"]) for k in before)
