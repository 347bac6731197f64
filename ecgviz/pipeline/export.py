"""Per-beat result tables and metrics as downloadable CSV / JSON."""

from __future__ import annotations

import json
import math
import os
import re
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ecgviz.io.codes import as_text

if TYPE_CHECKING:
    from ecgviz.evaluation.metrics import Metrics
    from ecgviz.io.data import BeatData

TABLE_COLUMNS = ("source", "row", "label", "class_name", "error", "threshold", "flagged", "split_role", "outcome")
OUTCOMES = ("TP", "FP", "TN", "FN")  # true/false positive/negative; a positive is a flagged beat
# Beats cut from a recording also say where they sit in it (after "row").
ORIGIN_COLUMNS = ("record", "lead", "sample", "time_s", "symbol")

# A spreadsheet evaluates a cell starting with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A plain negative number ("-1" is a common UCR label) cannot run anything, so it is kept.
_PLAIN_NEGATIVE = re.compile(r"-(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def outcomes(n_beats: int, threshold: float, errors: np.ndarray, eval_idx: np.ndarray | None,
             is_anomaly: np.ndarray | None) -> np.ndarray:
    """TP/FP/TN/FN (n,) for the evaluated beats `eval_idx` (with their is_anomaly), '' for every other beat."""
    out = np.full(n_beats, "", dtype=object)
    if eval_idx is None or is_anomaly is None:
        return out
    idx = np.asarray(eval_idx, dtype=np.int64)
    flagged = np.asarray(errors, dtype=np.float64)[idx] > threshold
    a = np.asarray(is_anomaly, dtype=bool)
    out[idx] = np.where(flagged, np.where(a, "TP", "FP"), np.where(a, "FN", "TN"))
    return out


def beat_table(data: BeatData, errors: np.ndarray, threshold: float, *, flagged_only: bool = False,
               include_samples: bool = False, roles: np.ndarray | None = None,
               outcome: np.ndarray | None = None, class_names: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per beat (or per flagged beat): where it came from, its error, whether it is flagged, its split role
    (train / validation / held-out / not used) and its outcome at the threshold (TP/FP/TN/FN, '' if not evaluated).

    Without `roles` every beat counts as held-out; without `outcome` the column is empty.
    """
    errors = np.asarray(errors, dtype=np.float64)
    n = len(data.sources)
    if errors.shape != (n,):
        raise ValueError(f"errors must have shape ({n},), got {errors.shape}")
    flagged = errors > threshold
    if data.labels is None:
        labels = np.full(n, "", dtype=object)
        names = labels
    else:
        labels = data.labels
        table = {**dict(data.class_names), **dict(class_names or {})}
        names = as_text([table.get(k, f"Class {k}") for k in data.label_names])[data.label_codes]
    table = pd.DataFrame({
        "source": data.sources,
        "row": np.asarray(data.rows, dtype=np.int64),
        "label": labels,
        "class_name": names,
        "error": errors,
        "threshold": np.full(n, float(threshold)),
        "flagged": flagged,
        "split_role": np.full(n, "held-out", dtype=object) if roles is None else np.asarray(roles, dtype=object),
        "outcome": np.full(n, "", dtype=object) if outcome is None else np.asarray(outcome, dtype=object),
    })
    origin = getattr(data, "origin", None)
    if origin is not None:
        symbols = origin.symbols()
        extra = pd.DataFrame({"record": origin.records(), "lead": origin.leads(), "sample": origin.samples,
                              "time_s": origin.times(),
                              "symbol": np.full(n, "", dtype=object) if symbols is None else symbols})
        table = pd.concat([table.iloc[:, :2], extra, table.iloc[:, 2:]], axis=1)
    if include_samples:
        X = np.asarray(data.X)
        samples = pd.DataFrame(X, columns=[f"s{i + 1}" for i in range(X.shape[1])])
        table = pd.concat([table, samples], axis=1)
    if flagged_only:
        table = table[flagged].reset_index(drop=True)
    return table


def _neutralise(value: Any) -> Any:
    """Prefix text that a spreadsheet would run as a formula with a quote."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _PLAIN_NEGATIVE.fullmatch(value):
        return "'" + value
    return value


def to_csv(table: pd.DataFrame) -> bytes:
    """UTF-8 CSV whose floats read back exactly and whose text cannot run as a formula."""
    safe = table.copy()
    for col in safe.columns:
        if not (pd.api.types.is_numeric_dtype(safe[col]) or pd.api.types.is_bool_dtype(safe[col])):
            safe[col] = safe[col].map(_neutralise)
    safe.columns = [_neutralise(str(c)) for c in safe.columns]
    # float_format=None writes the shortest repr that parses back to the same float;
    # "\r\n" (RFC 4180) makes the writer quote cells holding a bare CR as well as LF
    return safe.to_csv(index=False, lineterminator="\r\n", float_format=None).encode("utf-8")


def write_csv(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write to_csv(table) to path."""
    with open(path, "wb") as fh:
        fh.write(to_csv(table))


def export_filename(prefix: str, threshold: float) -> str:
    """File name with the threshold in it, e.g. ecgviz_flagged_t0.4321.csv."""
    safe_prefix = re.sub(r"[^A-Za-z0-9_-]+", "_", prefix).strip("_") or "ecgviz"
    return f"{safe_prefix}_t{float(threshold):.4f}.csv"


def _json_safe(value: Any) -> Any:
    """Python scalars and containers only, with None for NaN/inf."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json_safe(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


def metrics_json(metrics: Metrics, extra: dict | None = None) -> bytes:
    """Metrics.to_dict() under "metrics", plus the JSON-safe items of extra, as UTF-8 JSON."""
    extra = dict(extra or {})
    if "metrics" in extra:
        raise ValueError('extra must not have a "metrics" key')
    payload = {"metrics": metrics.to_dict(), **extra}
    return json.dumps(_json_safe(payload), indent=2, allow_nan=False).encode("utf-8")
