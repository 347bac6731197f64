"""95 % intervals for the figures a threshold produces: Wilson for rates, a stratified bootstrap for areas.

* A rate k/n (recall, precision, accuracy) gets the Wilson score interval (scipy's ``binomtest``); with n = 0 it
  is undefined (None).
* AUROC and average precision get a percentile bootstrap: normals and anomalies are resampled separately with a
  seeded generator, so every resample holds both classes and the figure stays defined. Seeded: the same beats
  give the same interval on every run and in every export.
* A held-out class with fewer than :data:`SMALL_CLASS` beats makes its figures uncertain; :func:`caveats` says so.
* When anomalies outnumber the evaluated normals, precision and AP mostly reflect prevalence; :func:`caveats`
  says that too.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ecgviz.evaluation.metrics import average_precision

CONFIDENCE = 0.95
SMALL_CLASS = 50
MAX_LISTED = 6  # small classes named in a caveat; the rest are counted
N_BOOT = 1000


def wilson(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Wilson score interval for k successes out of n, or None when n is 0."""
    from scipy.stats import binomtest

    if n <= 0:
        return None
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def _auroc_many(normal: np.ndarray, anomaly: np.ndarray) -> np.ndarray:
    """AUROC of each row pair (B, n0) x (B, n1) by ranks, ties counted half (Mann-Whitney U / n0 n1)."""
    from scipy.stats import rankdata

    both = np.concatenate([normal, anomaly], axis=1)
    ranks = rankdata(both, axis=1)
    n0, n1 = normal.shape[1], anomaly.shape[1]
    u = ranks[:, n0:].sum(axis=1) - n1 * (n1 + 1) / 2.0
    return u / (n0 * n1)


def bootstrap_areas(scores, is_anomaly, n_boot: int = N_BOOT, seed: int = 0,
                    confidence: float = CONFIDENCE) -> dict[str, tuple[float, float] | None]:
    """Percentile intervals {'auroc': (lo, hi), 'average_precision': (lo, hi)}; None without both classes."""
    s = np.asarray(scores, dtype=np.float64)
    a = np.asarray(is_anomaly, dtype=bool)
    normal, anomaly = s[~a], s[a]
    if not normal.size or not anomaly.size:
        return {"auroc": None, "average_precision": None}
    rng = np.random.default_rng(seed)
    idx0 = rng.integers(0, normal.size, (n_boot, normal.size))
    idx1 = rng.integers(0, anomaly.size, (n_boot, anomaly.size))
    aurocs = np.empty(n_boot)
    # in chunks, so memory stays ~ chunk * n beats
    for i in range(0, n_boot, 100):
        aurocs[i:i + 100] = _auroc_many(normal[idx0[i:i + 100]], anomaly[idx1[i:i + 100]])
    labels = np.r_[np.zeros(normal.size, bool), np.ones(anomaly.size, bool)]
    aps = np.array([average_precision(np.r_[normal[i0], anomaly[i1]], labels)
                    for i0, i1 in zip(idx0, idx1, strict=True)])
    tail = (1.0 - confidence) / 2.0 * 100.0
    return {"auroc": tuple(float(x) for x in np.percentile(aurocs, [tail, 100.0 - tail])),
            "average_precision": tuple(float(x) for x in np.percentile(aps, [tail, 100.0 - tail]))}


def balanced_accuracy_interval(tn: int, n_normal: int, tp: int, n_anomaly: int, n_boot: int = 10_000,
                               seed: int = 0, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Percentile interval of the mean of the two recalls under the stratified bootstrap; None unless both classes.

    Resampling a class's beats with replacement at a fixed threshold draws its flagged count from a binomial, so the
    bootstrap is drawn directly from the two binomials.
    """
    if n_normal <= 0 or n_anomaly <= 0:
        return None
    rng = np.random.default_rng(seed)
    ba = (rng.binomial(n_normal, tn / n_normal, n_boot) / n_normal
          + rng.binomial(n_anomaly, tp / n_anomaly, n_boot) / n_anomaly) / 2.0
    tail = (1.0 - confidence) / 2.0 * 100.0
    lo, hi = np.percentile(ba, [tail, 100.0 - tail])
    return float(lo), float(hi)


def paired_auroc_difference(scores_a, scores_b, is_anomaly, n_boot: int = N_BOOT, seed: int = 0,
                            confidence: float = CONFIDENCE) -> tuple[float, tuple[float, float]]:
    """AUROC(a) - AUROC(b) on the same beats, with a percentile interval from resampling the beats once for both
    (stratified, as :func:`bootstrap_areas`): an interval that holds 0 means the beats cannot tell them apart."""
    a_s, b_s = np.asarray(scores_a, dtype=np.float64), np.asarray(scores_b, dtype=np.float64)
    y = np.asarray(is_anomaly, dtype=bool)
    if a_s.shape != b_s.shape or a_s.shape != y.shape or y.all() or not y.any():
        raise ValueError("paired scores need equal shapes and both classes")
    rng = np.random.default_rng(seed)
    i0 = rng.integers(0, (~y).sum(), (n_boot, (~y).sum()))
    i1 = rng.integers(0, y.sum(), (n_boot, y.sum()))
    diffs = np.empty(n_boot)
    for i in range(0, n_boot, 100):
        sl = slice(i, i + 100)
        diffs[sl] = (_auroc_many(a_s[~y][i0[sl]], a_s[y][i1[sl]]) - _auroc_many(b_s[~y][i0[sl]], b_s[y][i1[sl]]))
    point = float(_auroc_many(a_s[~y][None], a_s[y][None])[0] - _auroc_many(b_s[~y][None], b_s[y][None])[0])
    tail = (1.0 - confidence) / 2.0 * 100.0
    lo, hi = np.percentile(diffs, [tail, 100.0 - tail])
    return point, (float(lo), float(hi))


def rate_intervals(m) -> dict[str, tuple[float, float] | None]:
    """Wilson intervals for a Metrics' rates (same keys), per-class recall under 'class_recall'; balanced accuracy
    by bootstrap."""
    return {
        "balanced_accuracy": balanced_accuracy_interval(m.tn, m.n_normal, m.tp, m.n_anomaly),
        "normal_recall": wilson(m.tn, m.n_normal),
        "anomaly_recall": wilson(m.tp, m.n_anomaly),
        "precision": wilson(m.tp, m.tp + m.fp) if m.n_anomaly else None,
        "accuracy": wilson(m.tp + m.tn, m.n_normal + m.n_anomaly),
        "class_recall": {k: wilson(f, t) for k, (f, t) in m.class_counts.items() if k in m.class_recall},
    }


def caveats(n_normal: int, n_anomaly: int, class_counts: Mapping[str, int] | None = None,
            names: Mapping[str, str] | None = None) -> list[str]:
    """Plain sentences about what makes these figures uncertain or flattering."""
    out = []
    names = names or {}
    small = {"normal": n_normal} if 0 < n_normal < SMALL_CLASS else {}
    small.update({names.get(k, f"class {k}"): c for k, c in (class_counts or {}).items() if 0 < c < SMALL_CLASS})
    if small:
        # a data set with thousands of tiny classes gets one readable sentence, not thousands of names
        listed = ", ".join(f"{k} ({v} beats)" for k, v in list(small.items())[:MAX_LISTED])
        if len(small) > MAX_LISTED:
            listed += f" and {len(small) - MAX_LISTED:,} more classes"
        out.append(f"Uncertain: {listed} held out, fewer than {SMALL_CLASS}; one beat more or less moves a rate by "
                   "several points, so read the 95 % intervals, not the point values.")
    total = n_normal + n_anomaly
    if total and n_anomaly > n_normal:
        out.append(f"Prevalence {n_anomaly / total:.1%}: most evaluated beats are anomalies, which inflates "
                   "precision and average precision (a detector flagging everything would have precision "
                   f"{n_anomaly / total:.1%}); recall per class and balanced accuracy do not depend on prevalence.")
    elif total:
        out.append(f"Prevalence {n_anomaly / total:.1%} of evaluated beats are anomalies.")
    return out


def fmt_interval(ci: tuple[float, float] | None, percent: bool = True) -> str:
    """'[95.1, 98.2]%' or '[0.991, 0.997]'; an em dash when undefined."""
    if ci is None:
        return "—"
    if percent:
        return f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]%"
    return f"[{ci[0]:.4f}, {ci[1]:.4f}]"
