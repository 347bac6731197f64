"""``score`` and ``serve``: a checkpoint's errors and verdicts for beats, as a CSV or over HTTP."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace

from ecgviz.cli.args import out_file
from ecgviz.cli.loading import load_data
from ecgviz.signal import recording_files


def _file_warnings(result) -> None:  # result: batch.FileResult
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)


def _score_recording(args: argparse.Namespace) -> int:
    """One recording cut into beats of the checkpoint's length, scored in this process."""
    from ecgviz.checkpoint.store import load_checkpoint
    from ecgviz.pipeline import export
    from ecgviz.pipeline.protocol import score_beats

    ckpt = load_checkpoint(args.checkpoint)
    data = load_data(args.data, args, ckpt.seq_len)
    t0 = time.perf_counter()
    errors = score_beats(ckpt, data.X)
    threshold = ckpt.threshold if args.threshold is None else args.threshold
    table = export.beat_table(data, errors, threshold, flagged_only=args.flagged_only,
                              include_samples=args.include_samples)
    export.write_csv(table, args.out)
    flagged = int((errors > threshold).sum())
    print(f"scored {data.n_beats} beats in {time.perf_counter() - t0:.2f}s; {flagged} flagged at threshold "
          f"{threshold:.4f}; wrote {len(table)} rows to {args.out}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    """Score files (here or on a Dask cluster) or one recording, and write the rows to --out."""
    from ecgviz.checkpoint.store import load_checkpoint
    from ecgviz.pipeline import batch

    out_file(args.out)
    if args.data and recording_files.is_recording(args.data, args.fs):
        return _score_recording(args)
    files, problems = batch.expand(args.data)
    ckpt = load_checkpoint(args.checkpoint)  # a bad checkpoint is one error, not one per file
    options = batch.ScoreOptions(str(args.checkpoint), args.threshold, args.flagged_only, args.include_samples)
    if args.scheduler or args.workers:
        with batch.cluster_client(args.scheduler, args.workers or 1) as client:
            summary = batch.write_results(batch.score_on_cluster(client, files, options), args.out,
                                          on_file=_file_warnings)
    else:
        # files that load as one data set are scored as one (split roles span them); otherwise file by file
        results = (batch.score_together(files, options) if files and not problems else None) or \
            batch.score_serial(files, options)
        summary = batch.write_results(results, args.out, on_file=_file_warnings)
    for message in (*problems, *summary.errors):
        print(f"ecgviz: error: {message}", file=sys.stderr)
    threshold = ckpt.threshold if args.threshold is None else args.threshold
    failed = len(problems) + summary.n_failed
    print(f"scored {summary.n_beats} beats in {summary.seconds:.2f}s; {summary.n_flagged} flagged at threshold "
          f"{threshold:.4f}; wrote {summary.n_rows} rows to {args.out}"
          + (f"; {failed} of {len(files) + len(problems)} inputs failed" if failed else ""))
    return 2 if failed else 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the checkpoint over HTTP until interrupted."""
    from ecgviz.checkpoint.store import load_checkpoint
    from ecgviz.detectors import threads
    from ecgviz.service import app as service  # FastAPI is imported only by the command that needs it

    ckpt = load_checkpoint(args.checkpoint)
    limits = service.Limits()
    if args.max_beats is not None:
        limits = replace(limits, max_beats=args.max_beats)
    if args.max_body_mb is not None:
        limits = replace(limits, max_body_bytes=int(args.max_body_mb * 2**20))
    threads.force(args.threads)
    print(f"serving model '{ckpt.name}' (beats of {ckpt.seq_len} samples) on http://{args.host}:{args.port} "
          f"(docs at /docs)", file=sys.stderr)
    service.serve(ckpt, args.host, args.port, limits)
    return 0


