"""Where each beat of a recording came from: record, lead, R-peak sample and time, paid per distinct value."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _frozen(values: np.ndarray) -> np.ndarray:
    view = values.view()
    view.flags.writeable = False
    return view


@dataclass(frozen=True, eq=False)
class BeatOrigin:
    """Per-beat record/lead codes into name tables, the R-peak sample (int64) and the original annotation symbol."""

    record_codes: np.ndarray  # (n,) int32 index into record_names
    record_names: tuple[str, ...]
    lead_codes: np.ndarray  # (n,) int32 index into lead_names
    lead_names: tuple[str, ...]
    samples: np.ndarray  # (n,) int64 R-peak sample in its recording
    fs: tuple[float, ...]  # sampling rate of each record (Hz), indexed like record_names
    symbol_codes: np.ndarray | None = None  # (n,) int16 index into symbol_names; None: no annotations
    symbol_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        samples = np.asarray(self.samples, dtype=np.int64)
        n = len(samples)
        codes = {"record_codes": (self.record_codes, self.record_names, np.int32),
                 "lead_codes": (self.lead_codes, self.lead_names, np.int32)}
        if self.symbol_codes is not None:
            codes["symbol_codes"] = (self.symbol_codes, self.symbol_names, np.int16)
        for attr, (values, names, dtype) in codes.items():
            arr = np.asarray(values, dtype=dtype)
            if arr.shape != (n,) or (n and (arr.min() < 0 or arr.max() >= len(names))):
                raise ValueError(f"BeatOrigin.{attr} must be ({n},) codes into a table of {len(names)} names")
            object.__setattr__(self, attr, _frozen(arr))
        if len(self.fs) != len(self.record_names):
            raise ValueError("BeatOrigin needs one sampling rate per record")
        object.__setattr__(self, "samples", _frozen(samples))
        for attr in ("record_names", "lead_names", "symbol_names"):
            object.__setattr__(self, attr, tuple(str(v) for v in getattr(self, attr)))
        object.__setattr__(self, "fs", tuple(float(v) for v in self.fs))

    def __len__(self) -> int:
        return len(self.samples)

    def times(self) -> np.ndarray:
        """(n,) float64 seconds from the start of each beat's recording to its R-peak."""
        return self.samples / np.asarray(self.fs, dtype=np.float64)[self.record_codes]

    def records(self) -> np.ndarray:
        """(n,) record name of each beat (built on demand; the stored form is codes)."""
        return np.asarray(self.record_names, dtype=object)[self.record_codes]

    def leads(self) -> np.ndarray:
        """(n,) lead name of each beat."""
        return np.asarray(self.lead_names, dtype=object)[self.lead_codes]

    def symbols(self) -> np.ndarray | None:
        """(n,) original annotation symbol of each beat, or None without annotations."""
        if self.symbol_codes is None:
            return None
        return np.asarray(self.symbol_names, dtype=object)[self.symbol_codes]

    def nbytes(self) -> int:
        """Memory held by the per-beat arrays (the name tables are a few bytes per distinct value)."""
        arrays = (self.record_codes, self.lead_codes, self.samples, self.symbol_codes)
        return sum(a.nbytes for a in arrays if a is not None)
