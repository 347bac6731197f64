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


def training(tree: Path, epochs: int, repeats: int, env: dict) -> dict:
    """Median training seconds (the run's own clock) alone and beside one busy loop, measured in turns."""
    args = ["-m", "ecgviz", "train", "--epochs", str(epochs), "--quiet", "--force"]
    times: dict[int, list[float]] = {0: [], 1: []}
    used = set()
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            for load in (0, 1):
                with busy_loops(load):
                    out = _run(tree, [*args, "--out", str(Path(tmp) / "m.pt")], env=env)[1]
                m = re.search(r"([\d.]+)s on (\w+), (\d+) torch thread", out)
                times[load].append(float(m.group(1)))
                used.add(int(m.group(3)))
    quiet, busy = statistics.median(times[0]), statistics.median(times[1])
    return {"quiet_s": quiet, "busy_s": busy, "busy_over_quiet": busy / quiet, "threads": sorted(used)}


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


def measure(tree: Path, files: dict, repeats: int, epochs: int, log=print) -> dict:
    """Start-up, parsing and training threads of one tree."""
    log(f"[{tree}] start-up and parsing")
    m = {"startup": startup(tree, repeats), "parsing": parsing(tree, files, repeats),
         "refused": eval_json(_run(tree, ["-c", _REFUSED])[1])}
    log(f"[{tree}] default training alone and beside a busy loop: threads as chosen, then 1 and 2")
    m["train"] = training(tree, epochs, repeats, {})
    for n in (1, 2):
        m[f"train_{n}"] = training(tree, epochs, repeats, {"ECGVIZ_TORCH_THREADS": str(n), "OMP_NUM_THREADS": str(n)})
    return m


def table(got: dict[str, dict], epochs: int) -> str:
    """Markdown: each ratio before -> after, with its target."""
    values = {k: ratios(m) for k, m in got.items()}
    threads = ", ".join(f"{k} {got[k]['train']['threads']}" for k in got)
    lines = ["| measure | before | after | target |", "|---|---|---|---|"]
    for key, label, _, _, target in RATIOS:
        b, a = (values.get(k, {}).get(key) for k in ("before", "after"))
        unit = "" if key.endswith("_mib") else "x"
        cells = ["—" if v is None else f"{v:.2f}{unit}" for v in (b, a)]
        lines.append(f"| {label} | {cells[0]} | {cells[1]} | {'' if target is None else f'<= {target:g}x'} |")
    rows = got["after"]["parsing"].get("csv.rows")
    return "\n".join(lines) + (f"\n\nParsing: {rows:,} ECG5000 rows; training: {epochs} epochs of the default "
                               f"model on ECG5000; threads chosen for default training: {threads}.")


def main(argv: list[str] | None = None) -> int:
    """Measure this tree (and --before) and print the table."""
    ap = argparse.ArgumentParser(prog="python -m bench.speed", description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, help="a checkout of the code to compare with")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=5, help="training epochs per run (default 5)")
    ap.add_argument("--quick", action="store_true", help="one repeat, one epoch, 5,000 rows: proves the harness")
    args = ap.parse_args(argv)
    repeats, epochs = (1, 1) if args.quick else (args.repeats, args.epochs)
    trees = {**({"before": args.before.resolve()} if args.before else {}), "after": ROOT}
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"bench.speed: {len(os.sched_getaffinity(0))} usable cores, load average at start {load}; "
          f"{repeats} repeat(s), medians, each tree measured in its own processes\n")
    with tempfile.TemporaryDirectory() as tmp:
        files = ecg_rows(Path(tmp), copies=1 if args.quick else 9)
        got = {k: measure(t, files, repeats, epochs, log=lambda s: print(s, file=sys.stderr, flush=True))
               for k, t in trees.items()}
    print(table(got, epochs))
    print(f"\nload average at end {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
