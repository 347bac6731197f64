"""The baselines the dashboard fits in seconds beside the autoencoder, on the same held-out beats."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace

from ecgviz.dashboard.session import ActiveData, ActiveModel, same_data
from ecgviz.errors import UserError

# (kind, parameters) of each baseline fitted
BASELINE_SPECS = (("knn", {"k": 5, "metric": "l1"}), ("knn", {"k": 5, "metric": "l2"}), ("pca", {"n_components": 8}))


def baseline_split(data: ActiveData, normal_labels: Sequence[str], model: ActiveModel | None):
    """The split baselines fit on: the active model's when it was trained on these beats with these normal labels
    (so every detector is judged on the same held-out beats), else the seeded default split."""
    from ecgviz.evaluation.split import protocol_split

    if model is not None and same_data(model, data) and tuple(model.card.split.normal_labels) == tuple(normal_labels):
        return model.card.split
    return protocol_split(data.data, list(normal_labels))


def fit_baselines(data: ActiveData, normal_labels: Sequence[str], split) -> list[ActiveModel]:
    """kNN-5 (L1, L2) and PCA fitted on the split's training normals, as models the explorer can activate."""
    from ecgviz.detectors.baselines import BASELINES
    from ecgviz.pipeline.protocol import fit_detector

    if not data.data.has_labels:
        raise UserError("fitting a baseline needs labelled data, to know which beats are normal")
    key = hashlib.sha256(repr((data.fingerprint, split.to_dict())).encode()).hexdigest()[:12]
    out = []
    for kind, params in BASELINE_SPECS:
        ckpt = fit_detector(data.data, BASELINES[kind](**params), normal_labels, split=split)
        ckpt = replace(ckpt, class_names=data.class_names)
        model_id = f"{kind}-" + "-".join(f"{v}" for v in params.values()) + f"-{key}"
        out.append(ActiveModel(ckpt=ckpt, id=model_id, name=ckpt.name, source="baseline"))
    return out
