"""MLflow tracking against a temporary SQLite tracking database: what train and evaluate log is read back."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import mlflow
import pytest

from ecgviz.checkpoint.store import load_checkpoint
from ecgviz.cli.main import main
from ecgviz.detectors.config import ModelConfig
from ecgviz.io.data import fingerprint
from ecgviz.pipeline import tracking
from ecgviz.pipeline.protocol import TrainingCancelled, fit
from tests.conftest import TINY_TRAIN

ROOT = Path(__file__).resolve().parent.parent
TRAIN_ARGS = ["--epochs", "3", "--embedding-dim", "3", "--chunk", "4", "--batch-size", "8", "--lr", "0.01",
              "--device", "cpu", "--seed", "2", "--quiet"]


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def runs(uri: str, command: str) -> list:
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(tracking.EXPERIMENT)
    return client.search_runs([experiment.experiment_id], f"tags.`ecgviz.command` = '{command}'",
                              order_by=["attributes.start_time DESC"])


@pytest.fixture(scope="module")
def trained(db, tiny_files, tmp_path_factory):
    """(checkpoint path, its MLflow run) of one `train --mlflow` on the tiny files."""
    out = tmp_path_factory.mktemp("out") / "tracked.pt"
    assert main(["train", "--data", *map(str, tiny_files), "--out", str(out), "--mlflow", db, *TRAIN_ARGS]) == 0
    (run,) = runs(db, "train")
    return out, run


def test_train_logs_params_and_data(trained, tiny_data):
    out, run = trained
    p = run.data.params
    assert run.info.status == "FINISHED" and run.info.run_name == "tracked"
    assert p["model.embedding_dim"] == "3" and p["model.chunk"] == "4"
    assert p["train.epochs"] == "3" and p["train.lr"] == "0.01" and p["train.seed"] == "2"
    assert p["train.batch_size"] == "8" and p["train.loss"] == "l1" and p["percentile"] == "98.0"
    assert p["data_fingerprint"] == fingerprint(tiny_data) == load_checkpoint(out).data_fingerprint
    assert p["data_files"] == "tiny_TRAIN.arff, tiny_TEST.arff" and p["normal_labels"] == "1"
    assert p["n_beats"] == "80" and p["beat_length"] == "24" and p["checkpoint"] == "tracked.pt"


def test_train_logs_losses_per_epoch_and_final_metrics(trained, db):
    out, run = trained
    ckpt = load_checkpoint(out)
    client = mlflow.MlflowClient(tracking_uri=db)
    for key in ("train_loss", "val_loss"):
        history = client.get_metric_history(run.info.run_id, key)
        assert [m.step for m in history] == [1, 2, 3]
        assert [m.value for m in history] == pytest.approx([h[key] for h in ckpt.history], rel=1e-12)
    m = run.data.metrics
    assert m["auroc"] == pytest.approx(ckpt.metrics["auroc"]) and m["threshold"] == pytest.approx(ckpt.threshold)
    assert m["balanced_accuracy"] == pytest.approx(ckpt.metrics["balanced_accuracy"])
    assert m["average_precision"] == pytest.approx(ckpt.metrics["average_precision"])
    assert m["normal_recall"] == pytest.approx(ckpt.metrics["normal_recall"])
    for label, recall in ckpt.metrics["metrics"]["class_recall"].items():  # classes "2" and "3"
        assert m[f"recall_class_{label}"] == pytest.approx(recall)
    assert {"recall_class_2", "recall_class_3"} <= set(m)
    assert m["best_epoch"] == ckpt.train_config["best_epoch"] and m["epochs_run"] == 3
    assert run.data.tags["device_used"] == "cpu" and run.data.tags["ecgviz.command"] == "train"


def test_train_logs_the_saved_checkpoint_and_metrics_json(trained, db, tmp_path):
    out, run = trained
    client = mlflow.MlflowClient(tracking_uri=db)
    assert sorted(a.path for a in client.list_artifacts(run.info.run_id)) == ["metrics.json", "tracked.pt"]
    # artifacts sit next to the database, not in the directory the command ran in
    assert run.info.artifact_uri.startswith((Path(db[len("sqlite:///"):]).parent / "mlartifacts").as_uri())
    local = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path)))
    assert (local / "tracked.pt").read_bytes() == out.read_bytes()  # the very file that was saved
    logged = json.loads((local / "metrics.json").read_text())
    ckpt = load_checkpoint(out)
    assert logged["threshold"] == ckpt.threshold and logged["held_out"]["auroc"] == ckpt.metrics["auroc"]
    assert len(logged["history"]) == 3


def test_evaluate_logs_its_metrics(trained, db, tiny_files, capsys):
    out, _ = trained
    assert main(["evaluate", "--checkpoint", str(out), "--data", *map(str, tiny_files), "--json",
                 "--mlflow", db]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)  # stdout stays pure JSON; the run id goes to stderr
    (run,) = runs(db, "evaluate")
    assert f"MLflow run {run.info.run_id}" in captured.err
    assert run.data.metrics["auroc"] == pytest.approx(summary["auroc"])
    assert run.data.metrics["anomaly_recall"] == pytest.approx(summary["anomaly_recall"])
    assert run.data.metrics["n_normal"] == summary["n_normal"]
    assert run.data.params["threshold_source"] == "checkpoint" and run.data.params["held_out_split"] == "True"
    client = mlflow.MlflowClient(tracking_uri=db)
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["metrics.json"]


def test_dashboard_training_logs_through_the_environment(db, tiny_data, tmp_path, monkeypatch):
    from ecgviz.dashboard import session, training

    monkeypatch.setenv(tracking.ENV, db)
    settings = training.TrainSettings(embedding_dim=2, chunk=4, epochs=2, batch_size=8, lr=0.01, seed=1,
                                     device="cpu")
    data = session.make_data(tiny_data, "tiny").with_names({"2": "Spiky"})  # a display name from the Data page
    job = training.start_training(data, ["1"], "from_page", settings, directory=tmp_path).start()
    assert job.join(120) and job.result is not None, job.state().message
    run = next(r for r in runs(db, "train") if r.info.run_name == "from_page")
    assert run.info.status == "FINISHED" and run.data.params["model.embedding_dim"] == "2"
    client = mlflow.MlflowClient(tracking_uri=db)
    logged = Path(client.download_artifacts(run.info.run_id, "from_page.pt", str(tmp_path / "dl")))
    assert logged.read_bytes() == (tmp_path / "from_page.pt").read_bytes()  # the model the page saved
    assert load_checkpoint(logged).class_names["2"] == "Spiky"
    history = mlflow.MlflowClient(tracking_uri=db).get_metric_history(run.info.run_id, "val_loss")
    assert [m.step for m in history] == [1, 2]


def test_cancelled_training_ends_its_run_killed(db, tiny_data):
    stop = threading.Event()
    tracked = tracking.track_training(fit, db, checkpoint_name="cancelled.pt")
    with pytest.raises(TrainingCancelled):
        tracked(tiny_data, ["1"], ModelConfig(embedding_dim=2), TINY_TRAIN, fractions=(0.6, 0.2, 0.2),
                on_epoch=lambda info: stop.set(), stop=stop)
    run = next(r for r in runs(db, "train") if r.info.run_name == "cancelled")
    assert run.info.status == "KILLED"


def test_without_a_uri_nothing_changes_and_neither_mlflow_nor_fastapi_is_imported(tiny_files, tmp_path, monkeypatch):
    monkeypatch.delenv(tracking.ENV, raising=False)
    assert tracking.track_training(fit, None) is fit
    code = (
        "import sys; from ecgviz.cli.main import main; import ecgviz.dashboard.session\n"
        f"rc = main(['train', '--data', {str(tiny_files[0])!r}, {str(tiny_files[1])!r}, "
        f"'--out', {str(tmp_path / 'plain.pt')!r}, '--epochs', '1', '--embedding-dim', '2', '--quiet'])\n"
        "assert rc == 0, rc\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mlflow', 'sqlalchemy', 'alembic', 'fastapi',"
        " 'uvicorn')))\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != tracking.ENV}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "plain.pt").exists() and not (tmp_path / "mlruns").exists()


def test_missing_mlflow_is_a_clear_error_before_training(tiny_files, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow now raises ImportError
    out = tmp_path / "never.pt"
    rc = main(["train", "--data", *map(str, tiny_files), "--out", str(out), "--mlflow", "sqlite:///x.db",
               *TRAIN_ARGS])
    assert rc == 2 and not out.exists()
    assert "mlflow is not installed: pip install -r requirements-tracking.txt" in capsys.readouterr().err
