"""``evaluate``: a checkpoint's metrics with 95 % intervals, on its held-out split or on other labelled data."""

from __future__ import annotations

import argparse
import json
import sys

from ecgviz.cli.loading import load_data
from ecgviz.errors import UserError


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Print (or log) the checkpoint's metrics on the data."""
    from ecgviz.checkpoint.store import load_checkpoint
    from ecgviz.pipeline import tracking
    from ecgviz.pipeline.protocol import assess, evaluate

    ckpt = load_checkpoint(args.checkpoint)
    data = load_data(args.data, args, ckpt.seq_len)
    missing = [x for x in args.normal_label or () if x not in data.label_counts()]
    if missing:
        present = ", ".join(list(data.label_counts())[:20])
        raise UserError(f"--normal-label {missing[0]} is not a label of the data (labels: {present or 'none'})")
    ev = evaluate(ckpt, data, threshold=args.threshold, normal_labels=args.normal_label or None)
    summary = {"detector": ckpt.description, "split_mode": ckpt.split.mode, "split": ckpt.split.describe(),
               **ev.summary()}
    if (uri := tracking.tracking_uri(args.mlflow)) is not None:
        run_id = tracking.log_evaluation(uri, summary, checkpoint=str(args.checkpoint), data=data,
                                         normal_labels=args.normal_label or ckpt.split.normal_labels,
                                         threshold_given=args.threshold is not None)
        print(f"MLflow run {run_id}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary))
        return 0
    m = ev.metrics
    ci = summary["intervals_95"]
    where = "held-out split" if ev.held_out else "all labelled beats (not the checkpoint's training data)"
    print(f"{summary['detector']}; {summary['split']}")
    print(f"evaluated on {where}: {m.n_normal} normal, {m.n_anomaly} anomalous beats")
    if not ev.held_out:
        files = ", ".join(ckpt.data_sources) or "file names not recorded"
        print(f"note: the model was trained on other data: {files}; beats of {ckpt.seq_len} samples, "
              f"fingerprint {ckpt.data_fingerprint[:12]}")
    print(f"threshold          {m.threshold:.4f}")
    for key in ("auroc", "average_precision", "balanced_accuracy", "normal_recall", "anomaly_recall",
                "precision", "f1", "accuracy"):
        value = summary[key]
        band = ci.get(key)
        text = "undefined" if value is None else f"{value:.4f}"
        print(f"{key:<18} {text}" + (f"  95% CI [{band[0]:.4f}, {band[1]:.4f}]" if band else ""))
    for label, (flagged, total) in m.class_counts.items():
        band = ci["class_recall"].get(label)
        print(f"class {label:<12} flagged {flagged}/{total}"
              + (f"  recall 95% CI [{band[0]:.3f}, {band[1]:.3f}]" if band else ""))
    for note in summary["caveats"]:
        print(f"note: {note}")
    normals = ev.indices[~ev.is_anomaly]
    if len(normals):
        q = assess(ckpt, data.X[normals], ev.auroc)
        if q.degenerate:
            print(f"warning: {q.message()}")
    return 0


