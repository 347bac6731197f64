"""Memory of labels and file names: peak resident memory while loading many short beats with long labels.

    .venv/bin/python -m bench.labels [--beats 40000 400000] [--label-chars 1 100] [--code DIR]

Each case is a CSV of `--beats` rows of 3 samples whose labels are 5 distinct texts of `--label-chars`
characters, under a 255-character file name. A fresh process loads it (ecgviz.io.data.load_uploads), counts the
labels and fingerprints the data, as the dashboard does on upload. It reports, in MiB (2^20 bytes, as /proc
counts) over its resident memory once imports are done, its peak from reading the file to the fingerprint
(VmHWM after a reset of the mark; the file's bytes count) and what it still holds once the bytes are dropped.
File sizes are in MB (10^6 bytes), as the upload limit counts them. `--code DIR` measures another checkout's
ecgviz (e.g. an older one, for a before/after table).
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
NAME = "b" * 251 + ".csv"  # the longest file name that loads
CHILD = """
import json, sys
from pathlib import Path

def status(key):
    for line in open('/proc/self/status'):
        if line.startswith(key + ':'):
            return int(line.split()[1]) / 1024

from ecgviz.io.data import fingerprint, load_uploads
with open('/proc/self/clear_refs', 'w') as fh:
    fh.write('5')
base = status('VmRSS')
raw = Path(sys.argv[1]).read_bytes()
data = load_uploads([(sys.argv[2], raw)])
counts = data.label_counts()
digest = fingerprint(data)
del raw
print(json.dumps({"base": base, "peak": status('VmHWM'), "held": status('VmRSS'), "n": data.n_beats,
                  "classes": len(counts)}))
"""


def write_csv(path: Path, n: int, chars: int) -> None:
    """n rows of 3 samples; labels are 5 distinct texts of `chars` characters."""
    labels = [(str(k) + "x" * chars)[:chars] if chars > 1 else str(k) for k in range(5)]
    with open(path, "w") as fh:
        for start in range(0, n, 100_000):
            rows = range(start, min(n, start + 100_000))
            fh.write("".join(f"{labels[i % 5]},{i % 7},{i % 11},{i % 13}\n" for i in rows))


def measure(path: Path, code: Path) -> dict:
    """Load `path` under the 255-character name in a fresh process running `code`'s ecgviz."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(code)}
    done = subprocess.run([sys.executable, "-c", CHILD, str(path), NAME], capture_output=True, text=True, env=env,
                          cwd=code, timeout=1800)
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1][:120]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.labels", description=__doc__.splitlines()[0])
    p.add_argument("--beats", type=int, nargs="+", default=[40_000, 400_000])
    p.add_argument("--label-chars", type=int, nargs="+", default=[1, 100])
    p.add_argument("--code", type=Path, default=ROOT, help="checkout whose ecgviz is measured")
    args = p.parse_args(argv)
    print(f"ecgviz from {args.code}; file name of {len(NAME)} characters; 3 samples a beat; 5 distinct labels")
    print("| beats | label characters | file (MB) | peak while loading (MiB) | held after (MiB) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="ecgviz-labels-") as folder:
        for n in args.beats:
            for chars in args.label_chars:
                path = Path(folder) / f"beats_{n}_{chars}.csv"
                write_csv(path, n, chars)
                r = measure(path, args.code.resolve())
                size = path.stat().st_size / 1e6
                if "error" in r:
                    print(f"| {n:,} | {chars} | {size:.1f} | {r['error']} | |")
                    continue
                print(f"| {n:,} | {chars} | {size:.1f} | {r['peak'] - r['base']:,.1f} | "
                      f"{r['held'] - r['base']:,.1f} |")
                path.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
