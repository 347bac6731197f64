"""Shape score fitted to one recording without labels: distance of each beat to the recording's median beat.

The median beat (sample by sample over every beat, each z-normalised) stays a normal beat while at least half the
beats are normal, whatever the other beats look like: that is what makes it hold on MIT-BIH 208, where about a
third of the beats are PVCs. Models that learn every beat (PCA reconstruction, kNN distance, an autoencoder) learn
frequent PVCs as normal; `python -m bench.analyze` measures them side by side (docs/recordings.md has the table).

Distances are expressed against the lower tail of their own distribution, (d - q25) / (q25 - q05): both quantiles
lie among the normal beats whenever they are the majority, so the scale is that of normal beat-to-beat variation and
one threshold (SHAPE_LIMIT) serves recordings with rare and with frequent ectopy.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SHAPE_LIMIT", "TemplateDistance"]

SHAPE_LIMIT = 8.0  # lower-tail spreads above the lower quartile; measured range that meets the targets: 6 to 10
_LOW, _MID = 0.05, 0.25


class TemplateDistance:
    """Outlier detector: RMS distance to the median beat, scaled by the spread of the closest beats' distances."""

    def fit(self, X: np.ndarray) -> TemplateDistance:
        """Learn the median beat and the distance scale from the beats of one recording (no labels)."""
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or len(X) < 2:
            raise ValueError("TemplateDistance.fit needs a (beats, samples) array of at least two beats")
        self.template_ = np.median(X, axis=0)
        d = self._distance(X)
        low, mid = np.quantile(d, [_LOW, _MID])
        self.location_ = float(mid)
        # a recording of identical beats has no spread; keep the scale positive and tiny against the distances
        self.scale_ = float(max(mid - low, 1e-6 * max(float(np.median(d)), 1e-12)))
        self.decision_scores_ = (d - self.location_) / self.scale_
        return self

    def _distance(self, X: np.ndarray) -> np.ndarray:
        out = np.empty(len(X), dtype=np.float64)
        step = 8192  # bounds the (beats, samples) difference on day-long recordings
        for i in range(0, len(X), step):
            diff = np.asarray(X[i:i + step], dtype=np.float32) - self.template_
            out[i:i + step] = np.sqrt(np.mean(diff * diff, axis=1))
        return out

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Shape score of each beat; higher is more abnormal, SHAPE_LIMIT and above is flagged."""
        return (self._distance(np.asarray(X)) - self.location_) / self.scale_
