"""What one upload costs the server: time and memory to load and score files of ECG5000's kind at several sizes.

    .venv/bin/python -m bench.upload_cost [--mb 8 50 100]

Each file repeats ECG5000's own TEST rows (same number format, so the beats per MB are those of real data) up to
`--mb` MB (10^6 bytes, as the upload limit counts). A fresh process loads it as an upload does, fingerprints it
and scores it with the shipped model (errors only, as a session keeps them). It reports the seconds of each
step and, in MiB over its resident memory once imports are done, the peak (the file's bytes count) and what it
still holds with the data and errors once the bytes are dropped: what a session holding the file adds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHILD = """
import json, sys, time
from pathlib import Path

def status(key):
    for line in open('/proc/self/status'):
        if line.startswith(key + ':'):
            return int(line.split()[1]) / 1024

from ecgviz.checkpoint.store import SHIPPED_CHECKPOINT
from ecgviz.dashboard import session
model = session.model_from_path(SHIPPED_CHECKPOINT)
with open('/proc/self/clear_refs', 'w') as fh:
    fh.write('5')
base = status('VmRSS')
raw = Path(sys.argv[1]).read_bytes()
started = time.perf_counter()
data = session.data_from_uploads([('upload.arff', raw)])
loaded = time.perf_counter()
del raw
errors = session.scores(model, data)
scored = time.perf_counter()
print(json.dumps({"beats": data.data.n_beats, "load_s": loaded - started, "score_s": scored - loaded,
                  "peak": status('VmHWM') - base, "held": status('VmRSS') - base}))
"""


def write_file(path: Path, mb: float) -> None:
    """ECG5000's TEST header, then its data rows again and again up to `mb` MB."""
    text = (ROOT / "data" / "ECG5000_TEST.arff").read_text()
    head, body = text.split("@DATA", 1) if "@DATA" in text else text.split("@data", 1)
    rows = [r for r in body.splitlines() if r.strip()]
    target = int(mb * 1e6)
    with open(path, "w") as fh:
        size = fh.write(head + "@DATA\n")
        while size < target:
            for row in rows:
                size += fh.write(row + "\n")
                if size >= target:
                    break


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.upload_cost", description=__doc__.splitlines()[0])
    p.add_argument("--mb", type=float, nargs="+", default=[8.0, 50.0, 100.0])
    args = p.parse_args(argv)
    print(f"shipped model; {os.cpu_count()} cores; a fresh process per file; memory in MiB above the start")
    print("| file (MB) | beats of 140 samples | load | score | peak memory (MiB) | held with data and errors (MiB) |")
    print("|---|---|---|---|---|---|")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory(prefix="ecgviz-upload-") as folder:
        for mb in args.mb:
            path = Path(folder) / f"upload_{mb:g}.arff"
            write_file(path, mb)
            done = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True,
                                  env=env, cwd=ROOT, timeout=1800)
            size = path.stat().st_size / 1e6
            path.unlink()
            if done.returncode:
                print(f"| {size:.1f} | {done.stderr.strip().splitlines()[-1][:100]} | | | | |")
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"| {size:.1f} | {r['beats']:,} | {r['load_s']:.1f} s | {r['score_s']:.1f} s | {r['peak']:,.0f} | "
                  f"{r['held']:,.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
