"""Checkpoints as plain dicts of tensors, numbers and strings, read with ``weights_only=True``: no code ever runs."""

from __future__ import annotations

import datetime as _dt
import io
import os
import platform
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ecgviz.checkpoint import checks as checks
from ecgviz.checkpoint.files import CHECKPOINT_DIR, SHIPPED_CHECKPOINT, write_atomically
from ecgviz.detectors import baselines as detectors
from ecgviz.detectors.config import ERRORS, ModelConfig
from ecgviz.detectors.lstm import RecurrentAutoencoder
from ecgviz.errors import CheckpointError, UserError
from ecgviz.evaluation.split import Split

FORMAT = "ecgviz-checkpoint"
FORMAT_VERSION = 2  # 2: baseline detectors (kNN, PCA); autoencoder checkpoints are still written as 1


@dataclass(frozen=True)
class Checkpoint:
    """A trained detector: the model plus everything needed to score and evaluate honestly."""

    model: RecurrentAutoencoder  # or a baseline detector from ecgviz.detectors.baselines (kNN, PCA)
    model_config: ModelConfig | None  # None for a baseline detector
    split: Split
    data_fingerprint: str  # which data the split indices refer to
    seq_len: int  # beat length the model was trained on
    normalisation: tuple[float, float]  # (mean, std) applied before the model
    loss: str  # error measure the threshold is expressed in
    threshold: float  # suggested threshold
    threshold_rule: str  # how the suggestion was made, e.g. "p95 of validation normals"
    history: tuple[dict, ...] = ()
    metrics: dict = field(default_factory=dict)  # held-out metrics at `threshold`
    train_config: dict = field(default_factory=dict)
    class_names: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    name: str = ""
    created: str = ""
    data_sources: tuple[str, ...] = ()  # file names of the data it was trained on, in load order
    train_state: dict = field(default_factory=dict, repr=False)  # {"optimizer": Adam state dict}: for a resume

    @property
    def kind(self) -> str:
        """'lstm_ae', 'knn' or 'pca'."""
        return detectors.kind_of(self.model)

    @property
    def description(self) -> str:
        """The detector in a few words, e.g. 'kNN-5 (L1)'."""
        return detectors.describe(self.model)

    def with_threshold(self, threshold: float, rule: str = "chosen by the user") -> Checkpoint:
        """A copy carrying another threshold."""
        return replace(self, threshold=float(threshold), threshold_rule=rule)

    def check_fits(self, length: int) -> None:
        """Refuse beats of another length than the model was trained on."""
        if length != self.seq_len:
            source = f" (it was trained on {', '.join(self.data_sources)})" if self.data_sources else ""
            raise CheckpointError(
                f"model '{self.name or 'checkpoint'}' was trained on beats of {self.seq_len} samples, "
                f"but the data has {length} samples per beat{source}"
            )


def library_versions() -> dict:
    """Versions worth knowing when a checkpoint behaves differently elsewhere."""
    from ecgviz import __version__

    # str(): torch's version object is a class the weights-only loader would refuse
    return {"ecgviz": __version__, "torch": str(torch.__version__), "numpy": str(np.__version__),
            "python": platform.python_version()}


def to_dict(ckpt: Checkpoint) -> dict:
    """The on-disk form: only tensors, lists, dicts, strings and numbers."""
    baseline = ckpt.kind != "lstm_ae"
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION if baseline else 1,
        **({"detector": detectors.baseline_state(ckpt.model)} if baseline else {}),
        "state_dict": {} if baseline else {k: v.detach().cpu() for k, v in ckpt.model.state_dict().items()},
        "model_config": {} if baseline else ckpt.model_config.to_dict(),
        "split": ckpt.split.to_dict(),
        "data_fingerprint": ckpt.data_fingerprint,
        "seq_len": int(ckpt.seq_len),
        "normalisation": [float(ckpt.normalisation[0]), float(ckpt.normalisation[1])],
        "loss": ckpt.loss,
        "threshold": float(ckpt.threshold),
        "threshold_rule": ckpt.threshold_rule,
        "history": [dict(h) for h in ckpt.history],
        "metrics": dict(ckpt.metrics),
        "train_config": dict(ckpt.train_config),
        "class_names": dict(ckpt.class_names),
        "versions": dict(ckpt.versions) or library_versions(),
        "name": ckpt.name,
        "created": ckpt.created or _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "data_sources": list(ckpt.data_sources),
        **({"train_state": ckpt.train_state} if ckpt.train_state else {}),
    }


def to_bytes(ckpt: Checkpoint) -> bytes:
    """Serialised checkpoint, e.g. for a download button."""
    buf = io.BytesIO()
    torch.save(to_dict(ckpt), buf)
    return buf.getvalue()


def save_checkpoint(ckpt: Checkpoint, path: str | os.PathLike, *, exclusive: bool = False) -> Path:
    """Write atomically, so a crash never leaves half a checkpoint under the final name.

    `exclusive`: never replace a file already there (FileExistsError instead).
    """
    return write_atomically(to_bytes(ckpt), path, exclusive=exclusive)


def load_checkpoint(source: str | os.PathLike | bytes, name: str | None = None) -> Checkpoint:
    """Read a checkpoint from a path or bytes onto the CPU; anything else raises CheckpointError."""
    label = name or (Path(source).name if not isinstance(source, bytes | bytearray) else "uploaded file")
    try:
        raw = source if isinstance(source, bytes | bytearray) else Path(source).read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{label}: cannot read checkpoint ({exc.strerror or exc})") from None
    if not raw.startswith((b"PK\x03\x04", b"\x80")):  # torch's zip format, or a legacy pickle stream
        raise CheckpointError(f"{label} is not an ecgviz checkpoint: it is not a PyTorch file")
    if (why := checks.inspect_archive(raw)) is not None:
        raise CheckpointError(f"{label} is not an ecgviz checkpoint: {why}")
    try:
        d = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types; all mean "not a safe checkpoint"
        raise CheckpointError(f"{label} is not an ecgviz checkpoint: {_why_refused(exc)}") from None
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise CheckpointError(f"{label} is not an ecgviz checkpoint (no '{FORMAT}' marker)")
    version = d.get("format_version", 0)
    if type(version) is not int:
        raise CheckpointError(f"{label} is a damaged ecgviz checkpoint: format_version {version!r:.40} is not a number")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{label} was written by a newer ecgviz (format {d['format_version']}); please upgrade")
    try:
        if "detector" in d:
            seq_len = checks.check_baseline_seq_len(d)
            config, model = None, detectors.baseline_from_state(d["detector"], seq_len)
            checks.check_record(d, (detectors.kind_of(model),))
        else:
            # every field's type and range, and the model's size, before anything is built
            config = checks.check_fields(d)
            checks.check_weights(config, d["seq_len"], d["state_dict"])
            model = RecurrentAutoencoder(config)
            model.load_state_dict(d["state_dict"], strict=True)
            model = model.eval()
        ckpt = Checkpoint(
            model=model,
            model_config=config,
            split=Split.from_dict(d["split"]),
            data_fingerprint=str(d["data_fingerprint"]),
            seq_len=int(d["seq_len"]),
            normalisation=(float(d["normalisation"][0]), float(d["normalisation"][1])),
            loss=str(d["loss"]),
            threshold=float(d["threshold"]),
            threshold_rule=str(d.get("threshold_rule", "")),
            history=tuple(d.get("history", ())),
            metrics=dict(d.get("metrics", {})),
            train_config=dict(d.get("train_config", {})),
            class_names={str(k): str(v) for k, v in d.get("class_names", {}).items()},
            versions=dict(d.get("versions", {})),
            name=str(d.get("name") or Path(label).stem),
            created=str(d.get("created", "")),
            data_sources=_data_sources(d.get("data_sources", [])),
            train_state=_train_state(d.get("train_state", {})),
        )
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
        raise CheckpointError(f"{label} is a damaged ecgviz checkpoint: {_first_reason(exc)}") from None
    if not (np.isfinite(ckpt.threshold) and ckpt.normalisation[1] > 0
            and (ckpt.loss in ERRORS or ckpt.kind != "lstm_ae")):
        raise CheckpointError(f"{label} is a damaged ecgviz checkpoint: bad threshold, normalisation or loss")
    return ckpt


def _data_sources(value: object) -> tuple[str, ...]:
    """Optional list of file names: at most 1,000, each a string of at most 255 characters."""
    if not isinstance(value, list | tuple) or len(value) > 1000:
        raise UserError("data_sources must be a list of at most 1000 file names")
    if not all(isinstance(v, str) and 0 < len(v) <= 255 for v in value):
        raise UserError("data_sources must hold file names (text of 1-255 characters)")
    return tuple(value)


def _train_state(value: object) -> dict:
    """Optional resume state: {"optimizer": {"state": {...}, "param_groups": [...]}}, or empty."""
    if not isinstance(value, dict):
        raise UserError("train_state must be a dict")
    if not value:
        return {}
    opt = value.get("optimizer")
    if not (isinstance(opt, dict) and isinstance(opt.get("state"), dict) and isinstance(opt.get("param_groups"), list)
            and all(isinstance(g, dict) for g in opt["param_groups"])):
        raise UserError("train_state has no usable optimizer state")
    return {"optimizer": opt}


def _first_reason(exc: Exception) -> str:
    """The first line that says what is wrong: torch's state-dict errors start with a bare heading."""
    if isinstance(exc, KeyError) and exc.args:
        return f"no {exc.args[0]!r} entry"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    reasons = [line for line in lines if not line.startswith("Error(s) in loading state_dict")]
    return ((reasons or lines or [type(exc).__name__])[0])[:200]


def _why_refused(exc: Exception) -> str:
    """One readable reason from torch's multi-paragraph loader errors."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    # zip checkpoints say "Unsupported global: GLOBAL x", legacy and bare pickles "unsupported GLOBAL x whose ..."
    found = re.search(r"unsupported (?:global: )?GLOBAL ([\w.]+)", text, re.IGNORECASE)
    if found:
        return f"it refers to code ({found.group(1)}), which is never loaded because it could run on your machine"
    if "zip" in text.lower() or "load key" in text.lower() or isinstance(exc, EOFError):
        return "it is not a PyTorch file"
    # torch's first paragraph is boilerplate that suggests the unsafe way to load; the reason comes after it
    paragraphs = [para.strip() for para in re.split(r"\n\s*\n", text) if para.strip()]
    reasons = [para for para in paragraphs if not para.startswith("Weights only load failed")
               and "documentation of torch.load" not in para]
    first = (reasons or [type(exc).__name__])[0].splitlines()[0]
    return f"it could not be read safely ({first[:160]})"


def list_checkpoints(directory: str | os.PathLike = CHECKPOINT_DIR) -> list[Path]:
    """Checkpoint files in `directory`, the shipped one first."""
    files = sorted(Path(directory).glob("*.pt"))
    return sorted(files, key=lambda p: p.name != SHIPPED_CHECKPOINT.name)
