"""``analyze``: a recording's abnormal beats found without labels, written as beats.csv, flagged.atr, summary.json."""

from __future__ import annotations

import argparse


def cmd_analyze(args: argparse.Namespace) -> int:
    """Analyse --record and write the report folder --out-dir (all or nothing)."""
    from ecgviz.analysis.analyze import analyze  # the analysis stack loads only for this command
    from ecgviz.analysis.report import check_out_dir, write_report

    check_out_dir(args.out_dir, args.force)  # refused before any work, so nothing is half-written
    result = analyze(args.record, lead=args.lead, fs=args.fs)
    out = write_report(result, args.out_dir, force=args.force)
    s = result.summary
    reasons = ", ".join(f"{n} {r}" for r, n in s["flagged_by_reason"].items() if n) or "none"
    print(f"{s['record']} lead {s['lead']} ({s['fs']:g} Hz, {s['duration_s']:.0f} s): {s['beats']:,} beats, "
          f"{s['flagged']:,} flagged ({reasons}); {s['detection']['possible_missed_beats']} possible missed beat(s), "
          f"{len(s['irregular_stretches'])} irregular stretch(es); wrote {out}/ in {s['seconds']:.2f}s")
    ev = s["evaluation"]
    if ev and ev.get("balanced_accuracy") is not None:
        print(f"against the reference annotations: R-peak sensitivity {ev['r_peak_sensitivity']:.4f}, "
              f"balanced accuracy {ev['balanced_accuracy']:.4f}, AUROC {ev['auroc']}")
    return 0
