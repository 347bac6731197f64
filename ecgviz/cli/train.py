"""``train`` and ``baseline``: fit a detector on normal beats and save it under a name held for the whole run."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from ecgviz.checkpoint.files import Reservation, reserve
from ecgviz.cli.args import out_file, train_files
from ecgviz.cli.loading import load_data
from ecgviz.cli.progress import ProgressBar, continue_advice, run_interruptible
from ecgviz.errors import UserError


def _save_under_held_name(args: argparse.Namespace, work: Callable[[Path, Reservation | None], int]) -> int:
    """Refuse an existing --out unless --force; otherwise hold the name while `work` fits, so another run or a
    dashboard save of that name is refused at once."""
    out = Path(out_file(args.out))
    if out.exists() and not args.force:
        raise UserError(f"{out} already exists; choose another --out or add --force to overwrite it")
    if args.force:
        return work(out, None)
    with reserve(out) as held:
        return work(out, held)


def _save(ckpt, out: Path, held: Reservation | None, doing: str) -> Path:
    from ecgviz.checkpoint.store import save_checkpoint, to_bytes

    path = save_checkpoint(ckpt, out) if held is None else held.save(lambda _stem: to_bytes(ckpt))[0]
    if path != out:
        print(f"{out} was written by something else while this {doing}; saved as {path} instead", file=sys.stderr)
    return path


def _print_metrics(m: dict) -> None:
    print(f"held-out: AUROC {m['auroc']:.4f}  balanced accuracy {m['balanced_accuracy']:.4f}  "
          f"normal recall {m['normal_recall']:.4f}  anomaly recall {m['anomaly_recall']:.4f}")


def cmd_train(args: argparse.Namespace) -> int:
    """Train an autoencoder (or continue one) and save its checkpoint."""
    return _save_under_held_name(args, lambda out, held: _train(args, out, held))


def _train(args: argparse.Namespace, out: Path, held: Reservation | None) -> int:
    from ecgviz.checkpoint.store import load_checkpoint
    from ecgviz.detectors.config import ModelConfig, TrainConfig
    from ecgviz.evaluation import quality
    from ecgviz.pipeline import tracking
    from ecgviz.pipeline.protocol import fit, resume_fit

    data = load_data(args.data, args)
    max_seconds = None if args.max_minutes is None else args.max_minutes * 60
    bar = ProgressBar()
    on_epoch = None if args.quiet else bar
    if args.resume:
        resumed = load_checkpoint(args.resume)

        def run(stop):
            return resume_fit(resumed, data, args.epochs, max_seconds=max_seconds, device=args.device,
                              name=args.name, on_epoch=on_epoch, stop=stop)
    else:
        tc = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, patience=args.patience,
                         loss=args.loss, seed=args.seed, device=args.device, precision=args.precision,
                         max_seconds=max_seconds)
        model_config = ModelConfig(embedding_dim=args.embedding_dim, chunk=args.chunk)
        files = train_files(args)
        fit_fn = tracking.track_training(fit, args.mlflow, checkpoint_name=Path(args.out).name,
                                         on_run=lambda run_id: print(f"MLflow run {run_id}", file=sys.stderr))

        def run(stop):
            return fit_fn(data, args.normal_label or ["1"], model_config, tc, percentile=args.percentile,
                          name=args.name or "", on_epoch=on_epoch, stop=stop, split_mode=args.split,
                          files=files, error=args.error)
    try:  # the bar's line ends even when training fails
        ckpt = run_interruptible(run)
    finally:
        if not args.quiet:
            bar.close()
    path = _save(ckpt, out, held, "trained")
    m = ckpt.metrics
    tc = ckpt.train_config
    print(f"saved {path}  (best epoch {tc['best_epoch']} of {len(ckpt.history)}, ended by {tc['ended_by']}, "
          f"{tc['elapsed_s']:.1f}s on {tc['device_used']}, {tc['torch_threads']} torch thread(s))")
    print(f"threshold {ckpt.threshold:.4f} ({ckpt.threshold_rule})")
    if m.get("auroc") is not None:
        _print_metrics(m)
    q = quality.from_metrics(m)
    if q is not None and q.degenerate:
        print(f"warning: {q.message()}")
    for line in continue_advice(ckpt, str(path), degenerate=q is not None and q.degenerate):
        print(line)
    return 0


def cmd_baseline(args: argparse.Namespace) -> int:
    """Fit a kNN-distance or PCA detector and save its checkpoint."""
    return _save_under_held_name(args, lambda out, held: _baseline(args, out, held))


def _baseline(args: argparse.Namespace, out: Path, held: Reservation | None) -> int:
    from ecgviz.detectors.baselines import BASELINES
    from ecgviz.evaluation.split import protocol_split
    from ecgviz.pipeline.protocol import fit_detector

    data = load_data(args.data, args)
    params = {"k": args.k, "metric": args.metric} if args.kind == "knn" else {"n_components": args.components}
    detector = BASELINES[args.kind](**params)
    normal = args.normal_label or ["1"]
    split = protocol_split(data, normal, mode=args.split, seed=args.seed, files=train_files(args))
    ckpt = fit_detector(data, detector, normal, split=split, percentile=args.percentile, name=args.name or "")
    path = _save(ckpt, out, held, "fitted")
    print(f"saved {path}  ({ckpt.description}, fitted in {ckpt.train_config['elapsed_s']:.2f}s; {split.describe()})")
    print(f"threshold {ckpt.threshold:.4f} ({ckpt.threshold_rule})")
    if ckpt.metrics:
        _print_metrics(ckpt.metrics)
    return 0
