"""Shape score fitted to one recording without labels: distance of each beat to the recording's median beat.

The median beat (sample by sample over every beat, each z-normalised) stays a normal beat while at least half the
beats are normal, whatever the other beats look like: that is what makes it hold on MIT-BIH 208, where about a
third of the beats are PVCs. Models that learn every beat (PCA reconstruction, kNN distance, an autoencoder) learn
frequent PVCs as normal; `python -m bench.analyze` measures them side by side (docs/recordings.md has the table).

Each beat is compared over its own span only: the window stops before the next beat's P wave and after the previous
beat's T wave, so a beat followed closely by another (before a PVC, in fast or irregular rhythms) is not judged by
its neighbour. Distances are expressed against the lower tail of their own distribution, (d - q25) / (q25 - q05):
both quantiles lie among the normal beats whenever they are the majority, so the scale is that of normal
beat-to-beat variation and one threshold (SHAPE_LIMIT) serves recordings with rare and with frequent ectopy.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SHAPE_LIMIT", "TemplateDistance", "beat_windows"]

SHAPE_LIMIT = 8.0  # lower-tail spreads above the lower quartile (bench.analyze measures 4 to 12)
PRE_S, POST_S = 0.25, 0.45  # the widest window: P wave before the R-peak, T wave after it
T_END_S = 0.4  # the previous beat's T wave is over this long after its R-peak (QT at rest)
P_START_S = 0.28  # the next beat's P wave starts at most this long before its R-peak (P wave + PR)
QRS_S = (0.05, 0.1)  # always compared, however close the neighbours: the QRS complex itself
STEP_HZ = 120.0  # windows are sampled at about this rate: enough for a QRS, and a day fits in tens of MB
_LOW, _MID = 0.05, 0.25
_CHUNK = 8192


def beat_windows(y: np.ndarray, peaks: np.ndarray, rr_prev: np.ndarray, rr_next: np.ndarray,
                 fs: float) -> np.ndarray:
    """(n, L) float32 windows of `y` around each peak, z-normalised over the beat's own span, NaN outside it."""
    step = max(1, round(fs / STEP_HZ))
    offsets = np.arange(-round(PRE_S * fs), round(POST_S * fs), step)
    t = offsets / fs
    start = -np.clip(np.nan_to_num(rr_prev, nan=PRE_S + T_END_S) - T_END_S, QRS_S[0], PRE_S)
    stop = np.clip(np.nan_to_num(rr_next, nan=POST_S + P_START_S) - P_START_S, QRS_S[1], POST_S)
    core = (t >= -QRS_S[0]) & (t < QRS_S[1])
    out = np.empty((len(peaks), len(offsets)), dtype=np.float32)
    for i in range(0, len(peaks), _CHUNK):
        sl = slice(i, i + _CHUNK)
        at = np.clip(peaks[sl, None] + offsets, 0, len(y) - 1)
        w = np.asarray(y[at], dtype=np.float32)
        w[(t < start[sl, None]) | (t >= stop[sl, None])] = np.nan
        # level and scale from the QRS, which every window holds: the same for a beat whatever its neighbours
        mean = np.mean(w[:, core], axis=1, keepdims=True)
        sd = np.std(w[:, core], axis=1, keepdims=True)
        out[sl] = (w - mean) / np.where(sd > 0, sd, 1.0)
    return out


class TemplateDistance:
    """Outlier detector: RMS distance to the median beat over each beat's own span (NaN samples are skipped),
    scaled by the spread of the closest beats' distances."""

    def fit(self, X: np.ndarray) -> TemplateDistance:
        """Learn the median beat and the distance scale from the beats of one recording (no labels)."""
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or len(X) < 2:
            raise ValueError("TemplateDistance.fit needs a (beats, samples) array of at least two beats")
        with np.errstate(all="ignore"):
            self.template_ = np.nan_to_num(np.nanmedian(X, axis=0)).astype(np.float32)
        d = self._distance(X)
        low, mid = np.quantile(d, [_LOW, _MID])
        self.location_ = float(mid)
        # a recording of identical beats has no spread; keep the scale positive and tiny against the distances
        self.scale_ = float(max(mid - low, 1e-6 * max(float(np.median(d)), 1e-12)))
        self.decision_scores_ = (d - self.location_) / self.scale_
        return self

    def _distance(self, X: np.ndarray) -> np.ndarray:
        out = np.empty(len(X), dtype=np.float64)
        for i in range(0, len(X), _CHUNK):  # bounds the (beats, samples) difference on day-long recordings
            diff = np.asarray(X[i:i + _CHUNK], dtype=np.float32) - self.template_
            with np.errstate(all="ignore"):
                out[i:i + _CHUNK] = np.sqrt(np.nanmean(diff * diff, axis=1))
        return np.nan_to_num(out)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Shape score of each beat; higher is more abnormal, above SHAPE_LIMIT is flagged."""
        return (self._distance(np.asarray(X)) - self.location_) / self.scale_
