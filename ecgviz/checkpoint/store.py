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
from ecgviz.checkpoint.card import card_of
from ecgviz.checkpoint.files import CHECKPOINT_DIR, SHIPPED_CHECKPOINT, write_atomically
from ecgviz.detectors import baselines
from ecgviz.detectors.autoencoder import LSTMAutoencoder
from ecgviz.detectors.base import Detector
from ecgviz.errors import CheckpointError, UserError
from ecgviz.evaluation.split import Split

FORMAT = "ecgviz-checkpoint"
# 1: the autoencoder's weights at the top level; 2: a `detector` entry (the baselines). Each detector writes the
# oldest format that holds it, so a reader of format 1 still reads every autoencoder.
FORMAT_VERSION = 2


@dataclass(frozen=True)
class Checkpoint:
    """A fitted detector plus everything needed to score and evaluate honestly."""

    detector: Detector  # fitted: it owns its normalisation and error measure
    split: Split
    data_fingerprint: str  # which data the split indices refer to
    seq_len: int  # beat length the detector was fitted on
    threshold: float  # suggested threshold
    threshold_rule: str  # how the suggestion was made, e.g. "p98 of training normals"
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
        return self.detector.kind

    @property
    def description(self) -> str:
        """The detector in a few words, e.g. 'kNN-5 (L1)'."""
        return self.detector.description

    @property
    def loss(self) -> str:
        """The error measure the scores and the threshold are expressed in."""
        return self.detector.measure

    def with_threshold(self, threshold: float, rule: str = "chosen by the user") -> Checkpoint:
        """A copy carrying another threshold."""
        return replace(self, threshold=float(threshold), threshold_rule=rule)

    def check_fits(self, length: int) -> None:
        """Refuse beats of another length than the model was trained on."""
        card_of(self).check_fits(length)


def library_versions() -> dict:
    """Versions worth knowing when a checkpoint behaves differently elsewhere."""
    from ecgviz import __version__

    # str(): torch's version object is a class the weights-only loader would refuse
    return {"ecgviz": __version__, "torch": str(torch.__version__), "numpy": str(np.__version__),
            "python": platform.python_version()}


def to_dict(ckpt: Checkpoint) -> dict:
    """The on-disk form: only tensors, lists, dicts, strings and numbers."""
    return {
        "format": FORMAT,
        **ckpt.detector.checkpoint_fields(),
        "split": ckpt.split.to_dict(),
        "data_fingerprint": ckpt.data_fingerprint,
        "seq_len": int(ckpt.seq_len),
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
        ckpt = Checkpoint(
            detector=_read_detector(d),
            split=Split.from_dict(d["split"]),
            data_fingerprint=str(d["data_fingerprint"]),
            seq_len=int(d["seq_len"]),
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
    return ckpt


def _read_detector(d: dict) -> Detector:
    """The detector a loaded dict holds, every field checked before anything is built."""
    if "detector" in d:  # format 2
        det = baselines.from_state(d["detector"], checks.check_baseline_seq_len(d))
        checks.check_record(d, (det.kind,))
        return det
    # format 1: the autoencoder's fields, and the model's size, before it is built
    config = checks.check_fields(d)
    checks.check_weights(config, d["seq_len"], d["state_dict"])
    return LSTMAutoencoder.from_weights(config, d["state_dict"], d["normalisation"], str(d["loss"]))


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
