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

That unit must not depend on the sampling rate. A detected R-peak lies on the sample nearest the peak, up to half a
sample (3.9 ms at 128 Hz, 0.5 ms at 1000 Hz) from it, and a QRS complex compared a few ms off its median differs by
more than normal beats differ from each other. Windows cut at the detected samples made the unit depend on the rate
(at 128 Hz more than half of it was that jitter), so the same recording flagged 1 in 1,000 normal beats at 128 Hz
and 1 in 30 at 1000 Hz; an inverted lead, whose R-peaks the detector places less consistently, 1 in 15. Each beat is
therefore moved, by at most ALIGN_S and between samples, to where its QRS best correlates with the median QRS, and
its window is read there by interpolation on a fixed STEP_HZ grid from a signal low-passed at LOWPASS_HZ: the
windows, and the unit, are those of the continuous signal at any rate.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SHAPE_LIMIT", "TemplateDistance", "align", "beat_windows", "smooth", "windows_at"]

SHAPE_LIMIT = 12.0  # lower-tail spreads above the lower quartile (bench.analyze measures 6 to 20)
PRE_S, POST_S = 0.25, 0.45  # the widest window: P wave before the R-peak, T wave after it
T_END_S = 0.4  # the previous beat's T wave is over this long after its R-peak (QT at rest)
P_START_S = 0.28  # the next beat's P wave starts at most this long before its R-peak (P wave + PR)
QRS_S = (0.05, 0.1)  # always compared, however close the neighbours: the QRS complex itself
STEP_HZ = 120.0  # windows are sampled at this rate: enough for a QRS, and a day fits in tens of MB
ALIGN_S = 0.01  # a beat's fiducial may move this far from its detected R-peak to meet the median QRS
ALIGN_PASSES = 2
ALIGN_HZ = 1000.0  # above this rate the alignment compares every k-th sample
# the band the beats are compared in ends here, steeply, at every rate: the band-pass's gentle slope above 40 Hz
# passes 30 % of any 50 Hz mains and more of it at higher rates, and the STEP_HZ grid needs nothing above
LOWPASS_HZ, LOWPASS_ORDER = 40.0, 8
_LOW, _MID = 0.05, 0.25
_CHUNK = 8192
_BLOCK = 1 << 21  # samples low-passed at once
_ELEMENTS = 1 << 22  # (beats, lags, samples) compared at once when aligning: tens of MB at any rate


def _at(y: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """`y` at fractional sample positions `pos` (any shape), by cubic convolution (Keys, a = -0.5)."""
    i = np.floor(pos).astype(np.int64)
    f = (pos - i).astype(np.float32)
    # the four taps' weights at distances 1 + f, f, 1 - f, 2 - f
    w = (((-0.5 * f + 1.0) * f - 0.5) * f,
         (1.5 * f - 2.5) * f * f + 1.0,
         ((-1.5 * f + 2.0) * f + 0.5) * f,
         (0.5 * f - 0.5) * f * f)
    last = len(y) - 1
    out = np.zeros(pos.shape, dtype=np.float32)
    for k, wk in zip((-1, 0, 1, 2), w, strict=True):
        out += y[np.clip(i + k, 0, last)] * wk
    return out


def smooth(y: np.ndarray, fs: float) -> np.ndarray:
    """`y` low-passed steeply at LOWPASS_HZ (zero phase, float32), block by block to bound the temporaries."""
    from scipy import signal as sps

    sos = sps.butter(LOWPASS_ORDER, min(LOWPASS_HZ, 0.4 * fs), fs=fs, output="sos")
    out = np.empty(len(y), dtype=np.float32)
    pad = round(fs)  # the filter's response has faded long before a second
    for c0 in range(0, len(y), _BLOCK):
        c1 = min(len(y), c0 + _BLOCK)
        a, b = max(0, c0 - pad), min(len(y), c1 + pad)
        out[c0:c1] = sps.sosfiltfilt(sos, np.asarray(y[a:b], dtype=np.float64))[c0 - a:c1 - a]
    return out


def _zscore(a: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=-1, keepdims=True)
    sd = a.std(axis=-1, keepdims=True)
    return a / np.where(sd > 0, sd, 1.0)


def align(y: np.ndarray, peaks: np.ndarray, fs: float) -> np.ndarray:
    """Each beat's fiducial (fractional sample): the shift within ALIGN_S that best correlates its QRS with the
    median QRS, refined between samples by a parabola through the correlation peak."""
    lo, hi = round(QRS_S[0] * fs), round(QRS_S[1] * fs)
    stride = max(1, int(fs // ALIGN_HZ))  # lags and samples this far apart: the cost of 1 kHz at any higher rate
    reach = max(1, round(ALIGN_S * fs) // stride)
    core = np.arange(-lo, hi, stride)
    width = len(core)
    wide = np.arange(-lo - reach * stride, -lo + (width + reach) * stride, stride)
    start = np.asarray(peaks, dtype=np.float64)
    pos = start.copy()
    for _ in range(ALIGN_PASSES):  # the second pass correlates with a median QRS no longer blurred by the grid
        cores = np.empty((len(pos), width), dtype=np.float32)
        for i in range(0, len(pos), _CHUNK):
            cores[i:i + _CHUNK] = _zscore(_at(y, pos[i:i + _CHUNK, None] + core))
        template = _zscore(np.median(cores, axis=0)) / width
        del cores
        per = max(1, _ELEMENTS // ((2 * reach + 1) * width))
        for i in range(0, len(pos), per):
            sl = slice(i, i + per)
            lags = np.lib.stride_tricks.sliding_window_view(_at(y, pos[sl, None] + wide), width, axis=1)
            c = _zscore(lags) @ template  # (beats, 2 reach + 1) correlation per lag
            j = np.argmax(c, axis=1)
            inner = (j > 0) & (j < 2 * reach)
            rows = np.flatnonzero(inner)
            left, mid, right = (c[rows, j[inner] + d] for d in (-1, 0, 1))
            bend = left - 2 * mid + right
            frac = np.zeros(len(j))
            frac[inner] = np.where(bend < 0, 0.5 * (left - right) / np.where(bend < 0, bend, -1.0), 0.0)
            pos[sl] += (j - reach + np.clip(frac, -0.5, 0.5)) * stride
        pos = np.clip(pos, start - reach * stride, start + reach * stride)
    return pos


def windows_at(y: np.ndarray, fiducial: np.ndarray, rr_prev: np.ndarray, rr_next: np.ndarray,
               fs: float) -> np.ndarray:
    """(n, L) float32 windows of `y` on a STEP_HZ grid from each (fractional) fiducial, z-normalised over the QRS,
    NaN outside the beat's own span."""
    t = np.arange(round(-PRE_S * STEP_HZ), round(POST_S * STEP_HZ)) / STEP_HZ
    start = -np.clip(np.nan_to_num(rr_prev, nan=PRE_S + T_END_S) - T_END_S, QRS_S[0], PRE_S)
    stop = np.clip(np.nan_to_num(rr_next, nan=POST_S + P_START_S) - P_START_S, QRS_S[1], POST_S)
    core = (t >= -QRS_S[0]) & (t < QRS_S[1])
    fiducial = np.asarray(fiducial, dtype=np.float64)
    out = np.empty((len(fiducial), len(t)), dtype=np.float32)
    for i in range(0, len(fiducial), _CHUNK):
        sl = slice(i, i + _CHUNK)
        w = _at(y, fiducial[sl, None] + t * fs)
        w[(t < start[sl, None]) | (t >= stop[sl, None])] = np.nan
        # level and scale from the QRS, which every window holds: the same for a beat whatever its neighbours
        mean = np.mean(w[:, core], axis=1, keepdims=True)
        sd = np.std(w[:, core], axis=1, keepdims=True)
        out[sl] = (w - mean) / np.where(sd > 0, sd, 1.0)
    return out


def beat_windows(y: np.ndarray, peaks: np.ndarray, rr_prev: np.ndarray, rr_next: np.ndarray,
                 fs: float) -> np.ndarray:
    """The windows the shape score compares: `y` low-passed, each beat read from its aligned fiducial (windows_at)."""
    y = smooth(y, fs)
    return windows_at(y, align(y, peaks, fs), rr_prev, rr_next, fs)


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
