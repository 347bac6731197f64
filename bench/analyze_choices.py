"""The choices behind `analyze`, measured on record 100 and the 208 excerpt: shape detector, combination, limit."""

from __future__ import annotations

import time

import numpy as np

from ecgviz.analysis.evaluate import MATCH_S


def shape_candidates(r100: dict, r208: dict) -> list[dict]:
    """Label-free shape detectors on each recording's beat windows: AUROC and normal beats over the limit rule."""
    from sklearn.covariance import MinCovDet
    from sklearn.decomposition import PCA
    from sklearn.ensemble import IsolationForest
    from sklearn.neighbors import NearestNeighbors

    from ecgviz.analysis.rpeaks import match
    from ecgviz.analysis.shape import SHAPE_LIMIT, TemplateDistance, beat_windows
    from ecgviz.evaluation.metrics import roc_auc

    def recon(p, W):
        return ((W - p.inverse_transform(p.transform(W))) ** 2).sum(axis=1)

    def trimmed_pca(W):
        keep = np.ones(len(W), bool)
        for _ in range(3):  # fit, drop the 40 % worst, refit
            err = recon(PCA(5).fit(W[keep]), W)
            keep = err <= np.quantile(err, 0.6)
        return err

    def first_minutes(W, t):
        return recon(PCA(5).fit(W[t < t[0] + 120]), W)

    def knn(W):
        return NearestNeighbors(n_neighbors=11).fit(W).kneighbors(W)[0][:, 1:].mean(axis=1)

    def mcd(W):
        Z = PCA(8).fit_transform(W)
        return MinCovDet(random_state=0, support_fraction=0.5).fit(Z).mahalanobis(Z)

    methods = {
        "median beat, own span (chosen)": lambda W, Wf, t: TemplateDistance().fit(W).decision_scores_,
        "median beat, fixed window": lambda W, Wf, t: TemplateDistance().fit(Wf).decision_scores_,
        "PCA-5 on all beats": lambda W, Wf, t: recon(PCA(5).fit(Wf), Wf),
        "PCA-5, trim 40 % and refit x3": lambda W, Wf, t: trimmed_pca(Wf),
        "PCA-5 on the first 2 minutes": lambda W, Wf, t: first_minutes(Wf, t),
        "kNN-10 on all beats": lambda W, Wf, t: knn(Wf),
        "robust covariance (MCD) on PCA-8": lambda W, Wf, t: mcd(Wf),
        "isolation forest": lambda W, Wf, t: -IsolationForest(random_state=0).fit(Wf).score_samples(Wf),
    }
    sets = {}
    for name, r in (("100", r100), ("208", r208)):
        a = r["analysis"]
        rr = np.diff(a.beats.peaks) / a.recording.fs
        kept = a.beats.kept
        W = beat_windows(a.beats.filtered, a.samples, np.r_[np.nan, rr][kept], np.r_[rr, np.nan][kept],
                         a.recording.fs)
        Wf = np.asarray(a.beats.data.X, np.float64)
        if name == "100":
            sym = r["symbols"]
            ev = np.isin(sym, list("NLRBejAaJSVEF"))
            positive = np.isin(sym, list("VEF"))  # shape-abnormal classes; S beats look normal and are left out
            ev &= ~np.isin(sym, list("AaJS"))
        else:
            ref, wide = r["reference"]
            to_beat, _ = match(a.samples, ref, round(MATCH_S * a.recording.fs))
            positive = np.zeros(len(a.samples), bool)
            ev = np.zeros(len(a.samples), bool)
            ev[to_beat[to_beat >= 0]] = True
            positive[to_beat[(to_beat >= 0) & wide]] = True
        sets[name] = (W, Wf, a.samples / a.recording.fs, ev, positive)
    out = []
    for method, fn in methods.items():
        row = {"method": method}
        for name, (W, Wf, t, ev, positive) in sets.items():
            t0 = time.perf_counter()
            s = np.asarray(fn(W, Wf, t), np.float64)
            row[f"s_{name}"] = time.perf_counter() - t0
            low, mid = np.quantile(s, [0.05, 0.25])
            over = s > mid + SHAPE_LIMIT * (mid - low)
            row[f"auroc_{name}"] = roc_auc(s[ev], positive[ev]) if positive[ev].any() else None
            row[f"normal_over_{name}"] = float(over[ev & ~positive].mean())
            row[f"abnormal_over_{name}"] = float(over[ev & positive].mean())
        out.append(row)
    return out


def combinations(r100: dict, r208: dict) -> list[dict]:
    """Shape and timing scores combined in several ways, each at its label-free threshold of 1."""
    from ecgviz.analysis.rhythm import PREMATURE
    from ecgviz.analysis.shape import SHAPE_LIMIT
    from ecgviz.evaluation.metrics import roc_auc

    def parts(a):
        k = a.beats.kept
        pause = np.nan_to_num(a.rhythm.rr_next[k] / a.rhythm.median_rr[k] - 1.0)
        return a.shape_score / SHAPE_LIMIT, a.rhythm_score / PREMATURE, pause / PREMATURE

    rules = {
        "shape only": lambda s, r, p: s,
        "timing only": lambda s, r, p: r,
        "max(shape, timing) (chosen)": lambda s, r, p: np.maximum(s, r),
        "shape + timing": lambda s, r, p: np.maximum(s, 0) + np.maximum(r, 0),
        "max(shape, timing needing a pause)": lambda s, r, p: np.maximum(s, np.minimum(r, p)),
    }
    a100, a208 = r100["analysis"], r208["analysis"]
    sym = r100["symbols"]
    ev100 = np.isin(sym, list("NLRBejAaJSVEF"))
    ref, wide = r208["reference"]
    from ecgviz.analysis.rpeaks import match

    to_beat, _ = match(a208.samples, ref, round(MATCH_S * a208.recording.fs))
    idx, w = to_beat[to_beat >= 0], wide[to_beat >= 0]
    out = []
    for name, rule in rules.items():
        s100, s208 = rule(*parts(a100)), rule(*parts(a208))
        n, s = sym == "N", np.isin(sym, list("AaJS"))
        abn = ev100 & (sym != "N")
        row = {"rule": name, "n_passed_100": float((s100[n] <= 1).mean()), "s_flagged_100": float((s100[s] > 1).mean()),
               "ba_100": float(((s100[n] <= 1).mean() + (s100[abn] > 1).mean()) / 2),
               "auroc_100": roc_auc(s100[ev100], abn[ev100]),
               "wide_flagged_208": float((s208[idx][w] > 1).mean()),
               "narrow_flagged_208": float((s208[idx][~w] > 1).mean()),
               "auroc_208": roc_auc(s208[idx], w)}
        out.append(row)
    return out


def limits(r100: dict, r208: dict, values=(6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 20.0)) -> list[dict]:
    """The combined rule at other shape limits: what moves on each recording."""
    from ecgviz.analysis.rhythm import PREMATURE
    from ecgviz.analysis.rpeaks import match

    a100, a208 = r100["analysis"], r208["analysis"]
    sym = r100["symbols"]
    ref, wide = r208["reference"]
    to_beat, _ = match(a208.samples, ref, round(MATCH_S * a208.recording.fs))
    idx, w = to_beat[to_beat >= 0], wide[to_beat >= 0]
    n, s = sym == "N", np.isin(sym, list("AaJS"))
    out = []
    for k in values:
        f100 = (a100.shape_score > k) | (a100.rhythm_score > PREMATURE)
        f208 = ((a208.shape_score > k) | (a208.rhythm_score > PREMATURE))[idx]
        out.append({"limit": k, "n_passed_100": float((~f100[n]).mean()), "s_flagged_100": float(f100[s].mean()),
                    "wide_flagged_208": float(f208[w].mean()), "narrow_flagged_208": float(f208[~w].mean())})
    return out
