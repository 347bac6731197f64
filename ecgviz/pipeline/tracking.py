"""Optional MLflow tracking of training and evaluation runs; without a tracking URI nothing here imports mlflow."""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import socket
import tempfile
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ecgviz.errors import UserError
from ecgviz.pipeline.export import _json_safe

ENV = "MLFLOW_TRACKING_URI"
EXPERIMENT = "ecgviz"
# MLflow refuses longer parameter values; a long list of file names is cut, the fingerprint says which data it was
_MAX_PARAM = 6000
# pipeline.fit's keyword arguments worth a parameter (the others are callbacks, events or the file list)
_FIT_PARAMS = ("percentile", "fractions", "name", "split_mode", "error")
# MLflow retries a request 7 times with growing pauses (4.5 min against a closed port) and waits 120 s for each
# answer; a tracking server that is down should say so within a minute. Values set in the environment win.
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "15"}
CONNECT_TIMEOUT_S = 5.0


class TrackingError(UserError):
    """Tracking was asked for but cannot be done (MLflow missing, or the tracking store refused)."""


def tracking_uri(explicit: str | None = None) -> str | None:
    """The URI to log to: the one given, else $MLFLOW_TRACKING_URI, else None (no tracking)."""
    return explicit or os.environ.get(ENV) or None


def _mlflow():
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    try:
        import mlflow
    except ImportError:
        raise TrackingError("MLflow tracking was asked for (--mlflow or MLFLOW_TRACKING_URI) but mlflow is not "
                            "installed: pip install -r requirements-tracking.txt") from None
    return mlflow


def _metric_key(text: str) -> str:
    """User labels as MLflow metric names, which allow letters, digits and _ - . / and space."""
    return re.sub(r"[^\w\-. /]", "_", text)


def check_reachable(uri: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """For an http(s) tracking URI, one TCP connection to its server (at most `timeout` s); TrackingError if none."""
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise TrackingError(f"MLflow tracking URI {uri} has no valid port") from None
    if not parts.hostname:
        raise TrackingError(f"MLflow tracking URI {uri} names no server")
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            pass
    except OSError as exc:
        why = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise TrackingError(f"MLflow tracking server {parts.hostname}:{port} cannot be reached ({why}); start it, "
                            "or leave out --mlflow and unset MLFLOW_TRACKING_URI") from None


def _artifact_location(uri: str) -> str | None:
    """Artifacts of a SQLite store next to its database file, not in whatever directory the process runs in."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///"):]).resolve().parent / "mlartifacts").as_uri()
    return None


class Run:
    """One MLflow run, logged through the client API (no global active run: the dashboard trains in threads)."""

    def __init__(self, uri: str, run_name: str, tags: Mapping[str, str] | None = None):
        mlflow = _mlflow()
        check_reachable(uri)
        self.uri = uri
        try:
            self.client = mlflow.MlflowClient(tracking_uri=uri)
            experiment = self.client.get_experiment_by_name(EXPERIMENT)
            if experiment is None:
                try:
                    experiment_id = self.client.create_experiment(EXPERIMENT, _artifact_location(uri))
                except mlflow.exceptions.MlflowException:  # another process created it first
                    experiment_id = self.client.get_experiment_by_name(EXPERIMENT).experiment_id
            else:
                experiment_id = experiment.experiment_id
            self.run_id = self.client.create_run(experiment_id, run_name=run_name, tags=dict(tags or {})).info.run_id
        except mlflow.exceptions.MlflowException as exc:
            raise TrackingError(f"MLflow tracking at {uri} failed: {str(exc).strip().splitlines()[0][:300]}") from None

    def params(self, values: Mapping[str, Any]) -> None:
        """Log parameters (as text, cut to MLflow's limit)."""
        from mlflow.entities import Param

        self.client.log_batch(self.run_id, params=[Param(k, str(v)[:_MAX_PARAM]) for k, v in values.items()])

    def metrics(self, values: Mapping[str, float | None], step: int = 0) -> None:
        """Log the metrics that have a value, all at one step."""
        from mlflow.entities import Metric

        now = int(_dt.datetime.now(_dt.UTC).timestamp() * 1000)
        batch = [Metric(_metric_key(k), float(v), now, step) for k, v in values.items() if v is not None]
        self.client.log_batch(self.run_id, metrics=batch)

    def tags(self, values: Mapping[str, str]) -> None:
        """Set tags (text known only once the run has happened, such as the device used)."""
        for key, value in values.items():
            self.client.set_tag(self.run_id, key, value)

    def files(self, named: Mapping[str, bytes]) -> None:
        """Log bytes as artifacts under the given file names."""
        with tempfile.TemporaryDirectory() as tmp:
            for name, raw in named.items():
                path = Path(tmp) / name
                path.write_bytes(raw)
                self.client.log_artifact(self.run_id, str(path))

    def end(self, status: str = "FINISHED") -> None:
        """Close the run: FINISHED, FAILED or KILLED."""
        self.client.set_terminated(self.run_id, status)


def _data_params(data) -> dict:
    files = list(dict.fromkeys(str(s) for s in data.sources))
    from ecgviz.io.data import fingerprint

    return {"data_fingerprint": fingerprint(data), "data_files": ", ".join(files), "n_beats": data.n_beats,
            "beat_length": data.length}


def _held_out_metrics(summary: Mapping[str, Any]) -> dict:
    """Headline numbers and each abnormal class's recall at the threshold, from an Evaluation.summary()."""
    keys = ("auroc", "average_precision", "balanced_accuracy", "normal_recall", "anomaly_recall", "precision", "f1",
            "accuracy", "threshold")
    out = {k: summary.get(k) for k in keys}
    for label, recall in (summary.get("metrics") or {}).get("class_recall", {}).items():
        out[f"recall_class_{label}"] = recall
    return out


def _json_bytes(payload: dict) -> bytes:
    return json.dumps(_json_safe(payload), indent=2, allow_nan=False).encode("utf-8")


def track_training(fit_fn: Callable, uri: str | None = None, *, checkpoint_name: str = "checkpoint.pt",
                   on_run: Callable[[str], None] | None = None) -> Callable:
    """`fit_fn` (pipeline.fit's signature) logging an MLflow run when a tracking URI is set; else `fit_fn` itself.

    The run gets the model and training configuration, the data's fingerprint and file names, the train and
    validation losses per epoch (as steps), the held-out metrics at the stored threshold, and the checkpoint (under
    `checkpoint_name`) and its metrics JSON as artifacts. The returned checkpoint has its creation time set, so
    saving it writes the same bytes as the logged artifact.
    """
    uri = tracking_uri(uri)
    if uri is None:
        return fit_fn
    _mlflow()  # a missing MLflow, or a server that cannot be reached, must fail before training, not after it
    check_reachable(uri)

    def tracked_fit(data, normal_labels=("1",), model_config=None, train_config=None, *, on_epoch=None, **kwargs):
        from ecgviz.checkpoint.store import to_bytes
        from ecgviz.detectors.config import ModelConfig, TrainConfig
        from ecgviz.pipeline.protocol import TrainingCancelled

        model_config, train_config = model_config or ModelConfig(), train_config or TrainConfig()
        run = Run(uri, run_name=Path(checkpoint_name).stem, tags={"ecgviz.command": "train"})
        if on_run is not None:
            on_run(run.run_id)
        params = {f"model.{k}": v for k, v in model_config.to_dict().items()}
        params |= {f"train.{k}": v for k, v in train_config.to_dict().items()}
        params |= {"normal_labels": ", ".join(map(str, normal_labels)), "checkpoint": checkpoint_name,
                   **{k: v for k, v in kwargs.items() if k in _FIT_PARAMS},
                   **_data_params(data)}
        run.params(params)

        def log_epoch(info):
            run.metrics({"train_loss": info.train_loss, "val_loss": info.val_loss}, step=info.epoch)
            return on_epoch(info) if on_epoch is not None else None

        try:
            ckpt = fit_fn(data, normal_labels, model_config, train_config, on_epoch=log_epoch, **kwargs)
            ckpt = replace(ckpt, created=ckpt.created or _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
            tc = ckpt.train_config
            run.metrics({**_held_out_metrics(ckpt.metrics), "best_epoch": tc.get("best_epoch"),
                         "epochs_run": len(ckpt.history), "training_seconds": tc.get("elapsed_s")},
                        step=len(ckpt.history))
            run.tags({"device_used": str(tc.get("device_used", "")), "stopped_by_user": str(tc.get("cancelled"))})
            run.files({checkpoint_name: to_bytes(ckpt), "metrics.json": _json_bytes({
                "name": ckpt.name, "threshold": ckpt.threshold, "threshold_rule": ckpt.threshold_rule,
                "held_out": ckpt.metrics, "history": list(ckpt.history), "train_config": tc})})
        except BaseException as exc:
            run.end("KILLED" if isinstance(exc, TrainingCancelled | KeyboardInterrupt) else "FAILED")
            raise
        run.end()
        return ckpt

    return tracked_fit


def log_evaluation(uri: str, summary: Mapping[str, Any], *, checkpoint: str, data, normal_labels: Sequence[str],
                   threshold_given: bool) -> str:
    """Log one evaluation (an Evaluation.summary() of a checkpoint on data) as a run; returns its id."""
    run = Run(uri, run_name=f"evaluate {Path(checkpoint).stem}", tags={"ecgviz.command": "evaluate"})
    try:
        run.params({"checkpoint": checkpoint, "normal_labels": ", ".join(normal_labels),
                    "threshold_source": "given" if threshold_given else "checkpoint",
                    "held_out_split": summary.get("held_out_split"), **_data_params(data)})
        run.metrics({**_held_out_metrics(summary), "n_normal": summary.get("n_normal"),
                     "n_anomaly": summary.get("n_anomaly")})
        run.files({"metrics.json": _json_bytes(dict(summary))})
    except BaseException:
        run.end("FAILED")
        raise
    run.end()
    return run.run_id
