"""Is a trained model any use? Flags collapsed reconstructions and chance-level AUROC, with what to try."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# A collapsed autoencoder draws near-flat lines (little variance along a beat) or one beat for every input
# (little variance across beats). The shipped ECG5000 model keeps 94 % / 61 % of its held-out normals'
# variance, an untrained one 0.5 % / 0.0001 %: the limits sit far from both.
MIN_WITHIN = 0.2  # reconstruction variance along a beat / the data's
MIN_ACROSS = 0.05  # reconstruction variance across beats, per sample / the data's
CHANCE_AUROC = 0.1  # |AUROC - 0.5| below this is chance level
TRY = ("What to try: train longer (the Model page's Continue, or the CLI's --resume), a larger embedding, "
       "more samples per step for long beats (fewer LSTM steps per beat), and check the normal labels.")


@dataclass(frozen=True)
class Quality:
    """Variance kept by the reconstructions, the held-out AUROC, and the warnings they raise."""

    within_ratio: float | None
    across_ratio: float | None
    auroc: float | None
    warnings: tuple[str, ...]

    @property
    def degenerate(self) -> bool:
        """True when any warning was raised."""
        return bool(self.warnings)

    def to_dict(self) -> dict:
        """JSON-safe form, stored in a checkpoint's metrics."""
        return {"within_ratio": self.within_ratio, "across_ratio": self.across_ratio, "auroc": self.auroc,
                "warnings": list(self.warnings)}

    def message(self) -> str:
        """The warnings and the advice as one paragraph; empty when there is nothing to say."""
        return "This model looks degenerate. " + " ".join(self.warnings) + " " + TRY if self.warnings else ""


def variance_ratios(X: np.ndarray, recon: np.ndarray) -> tuple[float | None, float | None]:
    """(along a beat, across beats) variance of `recon` (n, T) relative to that of `X` (n, T); None if undefined."""
    X, recon = np.asarray(X, dtype=np.float64), np.asarray(recon, dtype=np.float64)
    if X.shape != recon.shape or X.ndim != 2 or len(X) == 0:
        return None, None
    within_x = X.var(axis=1).mean()
    within = float(recon.var(axis=1).mean() / within_x) if within_x > 0 else None
    across_x = X.var(axis=0).mean() if len(X) > 1 else 0.0
    across = float(recon.var(axis=0).mean() / across_x) if across_x > 0 else None
    return within, across


def assess(X: np.ndarray, recon: np.ndarray | None, auroc: float | None = None) -> Quality:
    """Judge a model from its reconstructions `recon` of beats `X` (held-out normals where possible) and AUROC."""
    within, across = variance_ratios(X, recon) if recon is not None else (None, None)
    warnings = []
    if within is not None and within < MIN_WITHIN:
        warnings.append(f"Its reconstructions are nearly flat: they keep {within:.1%} of the beats' variance "
                        f"along a beat (a working model keeps most of it).")
    if across is not None and across < MIN_ACROSS:
        warnings.append(f"It reconstructs nearly every beat alike: {across:.2%} of the variance between beats "
                        f"is kept.")
    if auroc is not None and np.isfinite(auroc) and abs(auroc - 0.5) < CHANCE_AUROC:
        warnings.append(f"Its held-out ROC AUC is {auroc:.3f}, near chance (0.5): its errors barely separate "
                        f"normal beats from anomalies.")
    elif auroc is not None and np.isfinite(auroc) and auroc <= 0.5 - CHANCE_AUROC:
        warnings.append(f"Its held-out ROC AUC is {auroc:.3f}, below chance: the anomalies are reconstructed "
                        f"better than the normal beats.")
    return Quality(within, across, None if auroc is None else float(auroc), tuple(warnings))


def from_metrics(metrics: dict) -> Quality | None:
    """The assessment stored in a checkpoint's metrics (None for checkpoints written before it existed)."""
    q = metrics.get("quality") if isinstance(metrics, dict) else None
    if not isinstance(q, dict):
        return None
    warnings = q.get("warnings", [])
    return Quality(q.get("within_ratio"), q.get("across_ratio"), q.get("auroc"),
                   tuple(str(w) for w in warnings) if isinstance(warnings, list) else ())
