"""Start-up, parsing and training threads, before -> after: every time as a ratio to a reference of the same run.

    .venv/bin/python -m bench.speed [--before TREE] [--quick] [--repeats N] [--epochs N]

TREE is a checkout of the code to compare with (e.g. `git worktree add /tmp/ecgviz-before <commit>`); without it
only this tree is measured. Each tree runs in its own processes (PYTHONPATH=tree). The references:

* start-up: `python -m ecgviz --help` and an argument error, against `python -c "import torch"`;
* parsing: loading 45,000 ECG5000 rows (CSV and ARFF) against `pandas.read_csv` of the same rows in the same
  process, and `python -m ecgviz pack` of them against a process that only imports pandas and reads them;
* threads: default `python -m ecgviz train --epochs N` beside one busy-loop process against the same training
  alone, on the threads each tree chooses, and on 1 and 2 threads forced.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.threads import busy_loops

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
_REFUSED = """
import json, sys, time
def status(key):
    for line in open('/proc/self/status'):
        if line.startswith(key + ':'):
            return int(line.split()[1]) / 1024
from ecgviz.io.data import DataError, load_uploads
raw = b'1,2,abc,4\\n' + b'1,2,3,4\\n' * 6_500_000  # 52 MB whose first row is bad
open('/proc/self/clear_refs', 'w').write('5')
base = status('VmRSS')
t = time.perf_counter()
try:
    load_uploads([('refused.csv', raw)])
except DataError:
    pass
refuse = time.perf_counter() - t
peak = status('VmHWM') - base
import io, pandas as pd
t = time.perf_counter(); pd.read_csv(io.BytesIO(raw), header=None); read = time.perf_counter() - t
print(json.dumps({"peak_mib": peak, "refuse_s": refuse, "read_csv_s": read}))
"""
_PARSE = """
import json, sys, time
import pandas as pd
from ecgviz.io.data import load_files
path, skip, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ours, theirs = [], []
for _ in range(repeats):
    t = time.perf_counter(); data = load_files([path]); ours.append(time.perf_counter() - t)
    t = time.perf_counter(); frame = pd.read_csv(path, header=None, skiprows=skip)
    theirs.append(time.perf_counter() - t)
    assert data.X.shape[0] == len(frame)
print(json.dumps({"ours": ours, "pandas": theirs, "rows": len(frame)}))
"""


def _run(tree: Path, args: list[str], env: dict | None = None, cwd: Path | None = None) -> tuple[float, str]:
    """(wall seconds, stdout) of `python ARGS` with `tree` on the path."""
    full = {**os.environ, "PYTHONPATH": str(tree), **(env or {})}
    started = time.perf_counter()
    done = subprocess.run([PY, *args], cwd=cwd or tree, env=full, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 2):
        raise RuntimeError(f"{args}: exit {done.returncode}: {done.stderr[-2000:]}")
    return wall, done.stdout


def startup(tree: Path, repeats: int) -> dict:
    """Median wall seconds of --help, an argument error and `import torch`, measured in turns."""
    cases = {"help": ["-m", "ecgviz", "--help"], "bad_argument": ["-m", "ecgviz", "train", "--epochs", "0",
                                                                   "--out", "x.pt"],
             "import_torch": ["-c", "import torch"]}
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(repeats):
        for key, args in cases.items():
            times[key].append(_run(tree, args)[0])
    return {k: statistics.median(v) for k, v in times.items()}


def ecg_rows(folder: Path, copies: int = 9) -> dict[str, tuple[Path, int]]:
    """ECG5000's 5,000 beats `copies` times as a UCR CSV (label first) and as ARFF: (path, header lines) each."""
    texts = [(ROOT / "data" / f"ECG5000_{part}.arff").read_text() for part in ("TRAIN", "TEST")]
    head = texts[0][: texts[0].lower().index("@data") + len("@data\n")]
    rows = [line for text in texts for line in text[text.lower().index("@data") + 6:].splitlines() if line.strip()]
    body = "\n".join(rows) + "\n"
    arff, csv = folder / "ecg45k.arff", folder / "ecg45k.csv"
    arff.write_text(head + body * copies)
    csv.write_text("".join(f"{r.rsplit(',', 1)[1]},{r.rsplit(',', 1)[0]}\n" for r in rows) * copies)
    return {"csv": (csv, 0), "arff": (arff, head.count("\n"))}


def parsing(tree: Path, files: dict[str, tuple[Path, int]], repeats: int) -> dict:
    """Per format: load_files / pandas.read_csv in one process; `ecgviz pack` / a pandas-only process."""
    out = {}
    for fmt, (path, skip) in files.items():
        r = eval_json(_run(tree, ["-c", _PARSE, str(path), str(skip), str(repeats)])[1])
        out[f"{fmt}.parse_over_read_csv"] = statistics.median(r["ours"]) / statistics.median(r["pandas"])
        out[f"{fmt}.rows"] = r["rows"]
    path = files["csv"][0]
    packs, reads = [], []
    for _ in range(repeats):
        packs.append(_run(tree, ["-m", "ecgviz", "pack", "--data", str(path), "--out",
                                 str(path.with_suffix(".npz"))])[0])
        reads.append(_run(tree, ["-c", f"import pandas; pandas.read_csv({str(path)!r}, header=None)"])[0])
    out["pack_over_read_csv_process"] = statistics.median(packs) / statistics.median(reads)
    return out


def eval_json(text: str) -> dict:
    import json

    return json.loads(text.strip().splitlines()[-1])


THREAD_SETTINGS = {"train": {}, **{f"train_{n}": {"ECGVIZ_TORCH_THREADS": str(n), "OMP_NUM_THREADS": str(n)}
                                    for n in (1, 2)}}  # as each tree chooses, then 1 and 2 threads forced


def training(trees: dict[str, Path], epochs: int, repeats: int, log=print) -> dict[str, dict]:
    """Per tree and thread setting: median training seconds (the run's own clock) alone and beside one busy loop.

    Every repeat runs every tree, setting and load once, in turns, so a change in the machine's other load
    falls on all of them alike.
    """
    args = ["-m", "ecgviz", "train", "--epochs", str(epochs), "--quiet", "--force"]
    times = {(k, s, load): [] for k in trees for s in THREAD_SETTINGS for load in (0, 1)}
    used: dict[str, set] = {k: set() for k in trees}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            log(f"training: repeat {r + 1} of {repeats}")
            for key, tree in trees.items():
                for setting, env in THREAD_SETTINGS.items():
                    for load in (0, 1):
                        with busy_loops(load):
                            out = _run(tree, [*args, "--out", str(Path(tmp) / "m.pt")], env=env)[1]
                        m = re.search(r"([\d.]+)s on (\w+), (\d+) torch thread", out)
                        times[key, setting, load].append(float(m.group(1)))
                        if setting == "train":
                            used[key].add(int(m.group(3)))
    out: dict[str, dict] = {k: {} for k in trees}
    for key in trees:
        for setting in THREAD_SETTINGS:
            quiet, busy = (statistics.median(times[key, setting, load]) for load in (0, 1))
            out[key][setting] = {"quiet_s": quiet, "busy_s": busy, "busy_over_quiet": busy / quiet}
        out[key]["train"]["threads"] = sorted(used[key])
    return out


# (id, label, numerator, denominator or None, target): each a ratio within one tree's measurements
RATIOS = (
    ("startup.help_over_import_torch", "`python -m ecgviz --help` / `python -c \"import torch\"`",
     "startup/help", "startup/import_torch", 0.3),
    ("startup.bad_argument_over_import_torch", "argument error (`train --epochs 0`) / `import torch`",
     "startup/bad_argument", "startup/import_torch", 0.3),
    ("parsing.csv_over_read_csv", "loading the CSV (UCR layout) / `pandas.read_csv` of it, one process",
     "parsing/csv.parse_over_read_csv", None, 2.0),
    ("parsing.arff_over_read_csv", "loading the ARFF / `pandas.read_csv` of its data rows, one process",
     "parsing/arff.parse_over_read_csv", None, 2.0),
    ("parsing.pack_over_read_csv_process", "`ecgviz pack` of the CSV / a process that reads it with pandas",
     "parsing/pack_over_read_csv_process", None, None),
    ("parsing.refused_over_read_csv", "refusing a 52 MB CSV at line 1 / `pandas.read_csv` of it",
     "refused/refuse_s", "refused/read_csv_s", None),
    ("parsing.refused_peak_mib", "refusing it: peak memory above the start, MiB (not a ratio)",
     "refused/peak_mib", None, None),
    ("threads.train_busy_over_quiet", "default training beside one busy loop / alone, threads as chosen",
     "train/busy_over_quiet", None, 1.5),
    ("threads.train_1_busy_over_quiet", "the same on 1 thread", "train_1/busy_over_quiet", None, None),
    ("threads.train_2_busy_over_quiet", "the same on 2 threads", "train_2/busy_over_quiet", None, None),
    ("threads.train_2_over_1_quiet", "default training alone: 2 threads / 1 thread", "train_2/quiet_s",
     "train_1/quiet_s", None),
    ("threads.train_2_over_1_busy", "beside one busy loop: 2 threads / 1 thread", "train_2/busy_s",
     "train_1/busy_s", None),
)


def _get(m: dict, path: str):
    for part in path.split("/"):
        m = m.get(part) if isinstance(m, dict) else None
    return m


def ratios(m: dict) -> dict[str, float | None]:
    """Every RATIOS entry for one tree's measurements."""
    out = {}
    for key, _, num, den, _ in RATIOS:
        a, b = _get(m, num), (_get(m, den) if den else 1.0)
        out[key] = a / b if a is not None and b else None
    return out


def measure(tree: Path, files: dict, repeats: int, log=print) -> dict:
    """Start-up and parsing of one tree."""
    log(f"[{tree}] start-up and parsing")
    return {"startup": startup(tree, repeats), "parsing": parsing(tree, files, repeats),
            "refused": eval_json(_run(tree, ["-c", _REFUSED])[1])}


def table(got: dict[str, dict], epochs: int) -> str:
    """Markdown: each ratio before -> after, with its target; then the trees' training times against each other."""
    values = {k: ratios(m) for k, m in got.items()}
    lines = ["| measure | before | after | target |", "|---|---|---|---|"]
    for key, label, _, _, target in RATIOS:
        b, a = (values.get(k, {}).get(key) for k in ("before", "after"))
        unit = "" if key.endswith("_mib") else "x"
        cells = ["—" if v is None else f"{v:.2f}{unit}" for v in (b, a)]
        lines.append(f"| {label} | {cells[0]} | {cells[1]} | {'' if target is None else f'<= {target:g}x'} |")
    notes = []
    if rows := _get(got["after"], "parsing/csv.rows"):
        notes.append(f"Parsing: {rows:,} ECG5000 rows.")
    if "train" in got["after"]:
        threads = ", ".join(f"{k} {got[k]['train']['threads']}" for k in got)
        notes.append(f"Training: {epochs} epochs of the default model on ECG5000; threads chosen: {threads}.")
        if "before" in got:
            b, a = got["before"]["train"], got["after"]["train"]
            notes.append(f"Default training, after / before (same run, threads as chosen): alone "
                         f"{a['quiet_s'] / b['quiet_s']:.2f}x, beside one busy loop {a['busy_s'] / b['busy_s']:.2f}x.")
    return "\n".join(lines) + "\n\n" + " ".join(notes)


def main(argv: list[str] | None = None) -> int:
    """Measure this tree (and --before) and print the table."""
    ap = argparse.ArgumentParser(prog="python -m bench.speed", description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, help="a checkout of the code to compare with")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=5, help="training epochs per run (default 5)")
    ap.add_argument("--quick", action="store_true", help="one repeat, one epoch, 5,000 rows: proves the harness")
    ap.add_argument("--parts", default="parsing,training",
                    help="parsing (start-up and parsing), training, or both (default)")
    args = ap.parse_args(argv)
    repeats, epochs = (1, 1) if args.quick else (args.repeats, args.epochs)
    trees = {**({"before": args.before.resolve()} if args.before else {}), "after": ROOT}
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"bench.speed: {len(os.sched_getaffinity(0))} usable cores, load average at start {load}; "
          f"{repeats} repeat(s), medians, each tree measured in its own processes\n")
    with tempfile.TemporaryDirectory() as tmp:
        files = ecg_rows(Path(tmp), copies=1 if args.quick else 9)
        log = (lambda s: print(s, file=sys.stderr, flush=True))  # noqa: E731
        got = {k: measure(t, files, repeats, log) if "parsing" in args.parts else {} for k, t in trees.items()}
    if "training" in args.parts:
        for key, m in training(trees, epochs, repeats, log).items():
            got[key].update(m)
    print(table(got, epochs))
    print(f"\nload average at end {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
