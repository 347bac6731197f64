"""Tiny synthetic beats shared by the tests: smooth normals and spiky anomalies."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def synthetic_beats(n_normal: int = 60, n_anomaly: int = 20, length: int = 24, seed: int = 0):
    """(X float32 (n, T), labels str (n,)): label "1" is a sine, "2" a sine with a spike, "3" noise."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 2 * np.pi, length)
    normal = np.sin(t)[None, :] + 0.05 * rng.standard_normal((n_normal, length))
    spiky = np.sin(t)[None, :] + 0.05 * rng.standard_normal((n_anomaly, length))
    spiky[:, length // 2] += 4.0
    half = n_anomaly // 2
    spiky[half:] = rng.standard_normal((n_anomaly - half, length))
    X = np.vstack([normal, spiky]).astype(np.float32)
    labels = np.array(["1"] * n_normal + ["2"] * half + ["3"] * (n_anomaly - half))
    return X, labels


def write_arff(path: Path, X: np.ndarray, labels=None, relation: str = "beats") -> Path:
    """Write beats as a dense ARFF file with an optional nominal `target` attribute."""
    lines = [f"@relation {relation}", ""]
    lines += [f"@attribute att{i + 1} numeric" for i in range(X.shape[1])]
    if labels is not None:
        classes = sorted(set(map(str, labels)), key=lambda s: (len(s), s))
        lines.append("@attribute target {" + ",".join(classes) + "}")
    lines += ["", "@data"]
    for i, row in enumerate(X):
        values = [repr(float(v)) for v in row]
        if labels is not None:
            values.append(str(labels[i]))
        lines.append(",".join(values))
    path.write_text("\n".join(lines) + "\n")
    return path
