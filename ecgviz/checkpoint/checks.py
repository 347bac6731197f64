"""Checks on a checkpoint file before and after torch reads it: archive layout, then every field's type and range.

The archive is inspected before torch.load (a compressed member could unpack to gigabytes); the loaded dict
is checked before any model is built, so a bad field gives one message naming it instead of a crash later.
"""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Mapping

import torch

from ecgviz.detectors.config import ERRORS, ModelConfig
from ecgviz.detectors.limits import MIB, check_bounds, check_memory, weight_shapes
from ecgviz.errors import FieldError
from ecgviz.io.parse import MAX_LABEL_CHARS

MAX_CHECKPOINT_BYTES = 256 * MIB  # file size, and the unpacked size of all archive members together
MAX_MEMBERS = 1000  # a checkpoint holds about 25 records
MAX_BEATS = 10**9  # split indices refer to a data set of at most this many beats
MAX_HISTORY = 100_000  # epochs
MAX_ITEMS = 1_000_000  # values in the free-form dicts (metrics, train_config, versions) together
MAX_TEXT = 1000  # characters of a free-form text value
MAX_MEAN = 1e9  # |mean| of the normalisation: beyond any ECG unit (24-bit ADC counts reach 1.7e7)
STD_RANGE = (1e-12, 1e9)  # training uses 1.0 for a std at or below 1e-12
MAX_THRESHOLD = 1e15  # errors are >= 0; a larger threshold flags nothing on any data this loads
RATES = ("auroc", "average_precision", "normal_recall", "anomaly_recall", "precision", "f1", "accuracy",
         "balanced_accuracy")


def inspect_archive(raw: bytes, max_bytes: int = MAX_CHECKPOINT_BYTES) -> str | None:
    """Why the file must not reach torch.load (too big, compressed or too many members), else None."""
    if len(raw) > max_bytes:
        return f"the file is {len(raw) / MIB:,.1f} MiB; checkpoints may be at most {max_bytes // MIB} MiB"
    if not raw.startswith(b"PK\x03\x04"):
        return None  # the legacy format has no compression: torch reads what the file holds
    try:
        members = zipfile.ZipFile(io.BytesIO(raw)).infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return "it is not a PyTorch file"
    if len(members) > MAX_MEMBERS:
        return f"its archive has {len(members):,} members; a checkpoint has at most {MAX_MEMBERS}"
    packed = [m for m in members if m.compress_type != zipfile.ZIP_STORED or m.file_size != m.compress_size]
    if packed:
        return (f"its archive member {packed[0].filename[:80]!r} is compressed; torch.save never compresses, "
                f"and a compressed member can unpack to far more than the file's size")
    total = sum(m.file_size for m in members)
    if total > max_bytes:
        return f"its archive members hold {total / MIB:,.1f} MiB; at most {max_bytes // MIB} MiB"
    return None


def _fail(field: str, msg: str) -> FieldError:
    return FieldError(f"{field}: {msg}")


def _int(d: Mapping, key: str, lo: int, hi: int, where: str = "") -> int:
    value = d[key]
    if type(value) is not int or not (lo <= value <= hi):
        raise _fail(where + key, f"{_show(value)} is not a whole number in [{lo:,}, {hi:,}]")
    return value


def _num(value, field: str, lo: float, hi: float, none: bool = False) -> float | None:
    if value is None and none:
        return None
    if type(value) not in (int, float) or not math.isfinite(value) or not (lo <= value <= hi):
        raise _fail(field, f"{_show(value)} is not a number in [{lo:g}, {hi:g}]")
    return float(value)


def _text(value, field: str, limit: int = MAX_TEXT) -> str:
    if type(value) is not str or len(value) > limit:
        raise _fail(field, f"{_show(value)} is not a text of at most {limit:,} characters")
    return value


def _show(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    if type(value) in (int, float, bool, type(None)) or (type(value) is str and len(value) <= 40):
        return repr(value)
    return f"a {type(value).__name__}"


def _plain(value, field: str, budget: list[int], depth: int = 0) -> None:
    """JSON-like data only (dict/list of text, numbers, booleans, None), bounded in size and depth."""
    budget[0] -= 1
    if budget[0] < 0 or depth > 6:
        raise _fail(field, "is too large or too deeply nested")
    if type(value) in (bool, int, type(None)) or (type(value) is float):
        return
    if type(value) is str:
        _text(value, field)
    elif isinstance(value, dict):
        for k, v in value.items():
            _text(k, field + " key", MAX_TEXT)
            _plain(v, f"{field}.{k}" if len(field) < 80 else field, budget, depth + 1)
    elif type(value) in (list, tuple):
        if len(value) > budget[0]:
            raise _fail(field, "is too large")
        for v in value:
            _plain(v, field, budget, depth + 1)
    else:
        raise _fail(field, f"holds {_show(value)}, not plain data")


def _indices(values, field: str, n_beats: int) -> None:
    if type(values) is not list or len(values) > n_beats:
        raise _fail(field, f"{_show(values)} is not a list of at most {n_beats:,} beat indices")
    if values and (set(map(type, values)) != {int} or min(values) < 0 or max(values) >= n_beats):
        raise _fail(field, f"holds a value that is not a beat index in [0, {n_beats:,})")


def check_split(d) -> None:
    """The split's labels, index lists (inside [0, n_beats)), seed and fractions."""
    if not isinstance(d, dict):
        raise _fail("split", f"{_show(d)} is not a dict")
    n = _int(d, "n_beats", 0, MAX_BEATS, "split.")
    _int(d, "seed", 0, 2**63 - 1, "split.")
    labels = d["normal_labels"]
    if type(labels) not in (list, tuple) or len(labels) > MAX_HISTORY:
        raise _fail("split.normal_labels", f"{_show(labels)} is not a list of labels")
    for lab in labels:
        _text(lab, "split.normal_labels", MAX_LABEL_CHARS)
    total = 0
    for key in ("train", "val", "test", "anomalies"):
        _indices(d[key], f"split.{key}", n)
        total += len(d[key])
    if total > n:
        raise _fail("split", f"its lists hold {total:,} indices for {n:,} beats")
    if d.get("mode", "seed") != "seed":  # kept files: no fractions to check
        return
    fr = d["fractions"]
    if type(fr) not in (list, tuple) or len(fr) != 3:
        raise _fail("split.fractions", f"{_show(fr)} is not three numbers")
    for f in fr:
        _num(f, "split.fractions", 0.0, 1.0)
    if abs(sum(fr) - 1.0) > 1e-6:
        raise _fail("split.fractions", f"they sum to {sum(fr):g}, not 1")


def check_fields(d: dict) -> ModelConfig:
    """Check every field of a loaded checkpoint dict and the model it asks for; the model's config on success."""
    raw_config = d["model_config"]
    if not isinstance(raw_config, dict) or not set(raw_config) <= {"embedding_dim", "n_features", "chunk"}:
        raise _fail("model_config", f"{_show(raw_config)} is not a dict of embedding_dim, n_features and chunk")
    raw_config = {"chunk": 1, **raw_config}  # checkpoints written before `chunk` existed read one sample per step
    for key in raw_config:
        _int(raw_config, key, 1, 2**31, "model_config.")
    config = ModelConfig(**raw_config)
    seq_len = _int(d, "seq_len", 3, 2**31)
    try:
        check_bounds(config, seq_len)
    except ValueError as exc:
        raise _fail("model_config", str(exc)) from None
    check_record(d, ERRORS)
    return config


def check_baseline_seq_len(d: dict) -> int:
    """A baseline detector's beat length, checked before its arrays are read."""
    return _int(d, "seq_len", 1, 2**31)


def check_record(d: dict, losses: tuple[str, ...]) -> None:
    """Every field but the detector's own: split, normalisation, loss, threshold, texts, history, metrics, names.

    Shared by the autoencoder and the baselines (whose `loss` is their kind), so a bad field of either is one
    message naming it rather than a page that breaks on every visit.
    """
    check_split(d["split"])
    _text(d["data_fingerprint"], "data_fingerprint", 128)
    norm = d["normalisation"]
    if type(norm) not in (list, tuple) or len(norm) != 2:
        raise _fail("normalisation", f"{_show(norm)} is not (mean, std)")
    _num(norm[0], "normalisation mean", -MAX_MEAN, MAX_MEAN)
    _num(norm[1], "normalisation std", *STD_RANGE)
    if d["loss"] not in losses:
        raise _fail("loss", f"{_show(d['loss'])} is not one of {', '.join(losses)}")
    _num(d["threshold"], "threshold", 0.0, MAX_THRESHOLD)
    _text(d.get("threshold_rule", ""), "threshold_rule")
    for key, limit in (("name", 200), ("created", 64)):
        if d.get(key) is not None:
            _text(d[key], key, limit)
    _check_history(d.get("history", []))
    budget = [MAX_ITEMS]
    for key in ("metrics", "train_config", "versions"):
        if not isinstance(d.get(key, {}), dict):
            raise _fail(key, f"{_show(d[key])} is not a dict")
        _plain(d.get(key, {}), key, budget)
    metrics, train = d.get("metrics", {}), d.get("train_config", {})
    for key in RATES:
        _num(metrics.get(key), f"metrics.{key}", 0.0, 1.0, none=True)
    if train.get("best_epoch") is not None:
        _int(train, "best_epoch", 0, MAX_HISTORY, "train_config.")
    names = d.get("class_names", {})
    if not isinstance(names, dict) or len(names) > MAX_ITEMS:
        raise _fail("class_names", f"{_show(names)} is not a dict of label names")
    for k, v in names.items():
        _text(k, "class_names", MAX_LABEL_CHARS)
        _text(v, f"class_names[{k!r}]", 200)


def _check_history(history) -> None:
    if type(history) not in (list, tuple) or len(history) > MAX_HISTORY:
        raise _fail("history", f"{_show(history)} is not a list of at most {MAX_HISTORY:,} epochs")
    for i, h in enumerate(history):
        where = f"history[{i}]"
        if not isinstance(h, dict) or len(h) > 50:
            raise _fail(where, f"{_show(h)} is not a dict of epoch numbers")
        _int(h, "epoch", 1, MAX_HISTORY, where + ".")
        for k, v in h.items():
            _text(k, where + " key", 100)
            # losses of a run that diverged are NaN: still numbers worth showing
            if v is not None and (type(v) not in (int, float) or (math.isinf(v))):
                raise _fail(f"{where}.{k}", f"{_show(v)} is not a number")


def check_weights(config: ModelConfig, seq_len: int, state: object) -> None:
    """The stored weights have the configuration's names and shapes, fit the memory limit, and are finite."""
    expected = weight_shapes(config)
    if not isinstance(state, dict):
        raise FieldError(f"state_dict: {_show(state)} is not a dict of weights")
    for key, shape in expected.items():
        have = state.get(key)
        if not isinstance(have, torch.Tensor):
            raise FieldError(f"weight {key} is missing")
        if tuple(have.shape) != shape:
            raise FieldError(f"weight {key} has shape {tuple(have.shape)}, but its model_config "
                             f"(embedding {config.embedding_dim}, {config.n_features} feature(s)) needs {shape}")
    extra = sorted(map(str, set(state) - set(expected)))
    if extra:
        raise FieldError(f"state_dict: unexpected weight {extra[0][:80]!r}")
    try:  # only now, with the shapes known to be the config's, may a check touch every weight
        check_memory(config, seq_len)
    except ValueError as exc:
        raise _fail("model_config", str(exc)) from None
    for key in expected:
        if not state[key].is_floating_point() or not bool(torch.isfinite(state[key]).all()):
            raise FieldError(f"weight {key} holds values that are not finite floating-point numbers")
