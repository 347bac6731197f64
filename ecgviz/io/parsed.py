"""What a beat-file parser returns, the limits it enforces, and how it quotes a value in a message."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_LENGTH = 3
MAX_COLUMNS = 100_000  # samples per beat (and other columns): minutes of ECG, far beyond any heartbeat
MAX_LABEL_CHARS = 100  # a class label is a short name; a longer one is shown in messages, legends and cards
MAX_NAME_CHARS = 255  # a file name (most file systems allow 255); it is shown with every beat and stored once
LABEL_NAMES = ("target", "class", "label")


@dataclass
class Parsed:
    """One file's beats: X (n, T) float32, labels as (n,) int32 codes into label_names (or None), 1-based rows."""

    X: np.ndarray
    label_codes: np.ndarray | None
    label_names: tuple[str, ...]
    rows: np.ndarray
    warnings: list[str]


def show(text: str, limit: int = 40) -> str:
    """A value as a message quotes it: repr, cut after `limit` characters."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def is_number(token: str) -> bool:
    """True when Python's float() reads the text."""
    try:
        float(token)
    except ValueError:
        return False
    return True
