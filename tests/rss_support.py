"""Memory measured as the peak RSS of a fresh subprocess (resource.getrusage in the child), never guessed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIB = 2**20


def peak_rss(script: str, timeout: float = 120) -> dict:
    """Run `script` in a fresh Python and report its RSS when it calls `mark()` and its peak RSS after that (MiB).

    mark() resets the kernel's peak-RSS mark (/proc/self/clear_refs), so the peak is that of the work after it,
    not of the imports before; the reply also holds whatever the script put in `out`.
    """
    prelude = ("import json, os\n"
               "out = {}\n"
               "def _status(key):\n"
               "    for line in open('/proc/self/status'):\n"
               "        if line.startswith(key + ':'):\n"
               "            return int(line.split()[1]) / 1024\n"
               "def mark():\n"
               "    with open('/proc/self/clear_refs', 'w') as fh:\n"
               "        fh.write('5')\n"
               "    out['base'] = _status('VmRSS')\n")
    coda = "\nout['peak'] = _status('VmHWM')\nprint(json.dumps(out))\n"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", prelude + script + coda], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
