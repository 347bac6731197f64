"""Hostile recordings: what each attack on the recording readers costs, in seconds and peak memory.

    .venv/bin/python -m bench.hostile_recordings [--code DIR] [--timeout 60] [--cap-mib 2500]

Builds each hostile file itself in a temporary folder, then runs it in a fresh process the way a user would:
`python -m ecgviz beats` for the command line, `read_uploads` + `cut_beats` for an upload on the Data page.
Each row gives the exit status (2: refused with a one-line message), the wall time, and the peak resident memory
of that process (VmHWM from /proc, polled; a process past --cap-mib or --timeout is killed and reported as such,
so measuring old code cannot take the machine down). `--code DIR` measures another checkout's ecgviz, which gives
the "before" column. Record 100 loaded from data/mitdb is the reference row: what a real 30-minute record costs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MITDB = ROOT / "data" / "mitdb"
MIB = 2**20

# What the Data page does with an upload: read the files' bytes, read them as a recording, cut the beats.
UPLOAD = """
import sys
from pathlib import Path
from ecgviz.io.recording import read_uploads
from ecgviz.signal.beats import cut_beats
from ecgviz.errors import UserError
files = [(Path(p).name, Path(p).read_bytes()) for p in sys.argv[2:]]
try:
    beats = cut_beats(read_uploads(files, fs=float(sys.argv[1])))
except UserError as exc:
    print(f"refused: {exc}", file=sys.stderr)
    sys.exit(2)
print(f"{beats.data.n_beats} beats")
"""


def _ann_word(code: int, diff: int) -> int:
    return (code << 10) | diff


def write_atr_bomb(folder: Path, beats: int, record: str = "100") -> list[Path]:
    """Record 100's header and signal beside an .atr of `beats` normal beats, all at sample 500 (2 bytes a beat)."""
    for suffix in (".hea", ".dat"):
        shutil.copy(MITDB / f"{record}{suffix}", folder / f"{record}{suffix}")
    words = np.full(beats + 1, _ann_word(1, 0), dtype="<u2")  # code 1 is "N"; a zero step keeps the sample
    words[0] = _ann_word(1, 500)
    words[-1] = 0  # end of file
    words.tofile(folder / f"{record}.atr")
    return [folder / f"{record}{s}" for s in (".hea", ".dat", ".atr")]


def write_skew(folder: Path, skew: int = 500_000_000) -> list[Path]:
    """A 4,000-sample record whose one signal claims a skew of `skew` samples (a 60-byte header, an 8 kB .dat)."""
    (folder / "r.hea").write_text(f"r 1 360 4000\nr.dat 16:{skew} 200 11 1024 0 0 0 ECG\n")
    np.zeros(4000, dtype="<i2").tofile(folder / "r.dat")
    return [folder / "r.hea", folder / "r.dat"]


def write_offset(folder: Path, offset: int = 10**12) -> list[Path]:
    """A 4,000-sample record whose signal starts `offset` bytes into an 8 kB .dat."""
    (folder / "o.hea").write_text(f"o 1 360 4000\no.dat 16+{offset} 200 11 1024 0 0 0 ECG\n")
    np.zeros(4000, dtype="<i2").tofile(folder / "o.dat")
    return [folder / "o.hea", folder / "o.dat"]


def write_wide_header(folder: Path, signals: int = 20_000) -> list[Path]:
    """A header of `signals` signal lines (about 1 MB) over a 4,000-frame .dat."""
    lines = [f"w {signals} 360 4000"] + [f"w.dat 16 200 11 1024 0 0 0 s{i}" for i in range(signals)]
    (folder / "w.hea").write_text("\n".join(lines) + "\n")
    np.zeros(8000, dtype="<i2").tofile(folder / "w.dat")
    return [folder / "w.hea", folder / "w.dat"]


def write_many_signals(folder: Path, signals: int = 12_000) -> list[Path]:
    """A header of `signals` shortest signal lines ("d 8", 4 bytes each: 48 kB at 12,000) over a 4,000-frame .dat."""
    (folder / "d.hea").write_text(f"d {signals} 360 4000\n" + "d 8\n" * signals)
    np.zeros(4000, dtype="i1").tofile(folder / "d.dat")
    return [folder / "d.hea", folder / "d.dat"]


def write_day_bomb(folder: Path, beats: int = 1_000_000, hours: float = 24.0, fs: int = 50) -> list[Path]:
    """A `hours`-long one-lead record at `fs` Hz in 1-byte samples beside an .atr of `beats` beats a sample apart:
    the most annotations the file-size bound lets through to the parser (2 bytes a beat)."""
    n = int(hours * 3600 * fs)
    (folder / "day.hea").write_text(f"day 1 {fs} {n}\nday.dat 80 200 0 0 0 0 0 ECG\n")
    np.random.default_rng(0).integers(0, 256, n, dtype="u1").tofile(folder / "day.dat")  # noise: never flat
    words = np.full(beats + 1, _ann_word(1, 1), dtype="<u2")
    words[-1] = 0
    words.tofile(folder / "day.atr")
    return [folder / f"day{s}" for s in (".hea", ".dat", ".atr")]


def write_big_upload(folder: Path, mb: float = 40.0) -> list[Path]:
    """A record whose .dat and .atr hold `mb` MB each: a 16-bit signal of zeros and beats two bytes apiece."""
    n = int(mb * 1e6 / 2)
    (folder / "big.hea").write_text(f"big 1 360 {n}\nbig.dat 16 200 11 1024 0 0 0 ECG\n")
    np.zeros(n, dtype="<i2").tofile(folder / "big.dat")
    words = np.full(n, _ann_word(1, 1), dtype="<u2")
    words[-1] = 0
    words.tofile(folder / "big.atr")
    return [folder / f"big{s}" for s in (".hea", ".dat", ".atr")]


def write_wide_text(folder: Path, columns: int = 5_000_000, suffix: str = ".csv") -> list[Path]:
    """One line of `columns` numbers (about 4 bytes a column: 20 MB at 5M)."""
    sep = b"\t" if suffix == ".tsv" else b","
    path = folder / f"wide{suffix}"
    path.write_bytes(sep.join([b"1.0"] * columns) + b"\n")
    return [path]


def write_long_text(folder: Path, mb: float = 46.0) -> list[Path]:
    """A legitimate one-column CSV recording of about `mb` MB: record 100's MLII lead, repeated, in millivolts."""
    import wfdb

    mv = wfdb.rdrecord(str(MITDB / "100"), channels=[0]).p_signal[:, 0]
    text = "\n".join(f"{v:.3f}" for v in mv).encode()
    path = folder / "long.csv"
    with open(path, "wb") as fh:
        fh.write(b"MLII\n")
        written = 0
        while written + len(text) + 1 <= mb * 1e6:
            fh.write(text + b"\n")
            written += len(text) + 1
    return [path]


def run(cmd: list[str], code: Path, timeout: float, cap_mib: float) -> dict:
    """Run `cmd` in a fresh process under `code`'s ecgviz: exit status, seconds, peak MiB, last stderr line."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(code)}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=code, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak, killed = 0.0, None
    while proc.poll() is None:
        peak = max(peak, _hwm_mib(proc.pid))
        elapsed = time.perf_counter() - t0
        if peak > cap_mib or elapsed > timeout:
            killed = f"killed at {peak:,.0f} MiB" if peak > cap_mib else f"killed after {timeout:g} s"
            proc.kill()
            break
        time.sleep(0.05)
    out, err = proc.communicate()
    seconds = time.perf_counter() - t0
    lines = [x for x in (err or "").strip().splitlines() if x.strip()]
    return {"rc": proc.returncode if killed is None else None, "s": seconds, "peak_mib": peak, "killed": killed,
            "stderr_lines": len(lines), "message": lines[-1] if lines else "", "stdout": (out or "").strip()[-300:]}


def _hwm_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cases() -> list[tuple[str, str, Callable[[Path], list[Path]], float | None]]:
    """(attack, path taken, what writes its files into a folder, --fs) for every row."""
    record_100 = [MITDB / f"100{s}" for s in (".hea", ".dat", ".atr")]
    return [
        ("record 100 (reference)", "cli", lambda d: record_100, None),
        (".atr bomb: 1M beats at one sample, 2 MB", "cli", lambda d: write_atr_bomb(d, 1_000_000), None),
        (".atr bomb: 1M beats at one sample, 2 MB", "upload", lambda d: write_atr_bomb(d, 1_000_000), 360.0),
        (".atr bomb: 200k beats at one sample, 0.4 MB", "cli", lambda d: write_atr_bomb(d, 200_000), None),
        ("skew 500,000,000 in a 60-byte header", "cli", write_skew, None),
        ("skew 500,000,000 in a 60-byte header", "upload", write_skew, 360.0),
        ("byte offset 10^12 into an 8 kB .dat", "cli", write_offset, None),
        (".atr of 1M beats a sample apart beside a 24-hour 50 Hz record", "upload", write_day_bomb, 360.0),
        ("upload of 80 MB in all (.dat 40 MB + .atr 40 MB)", "upload", write_big_upload, 360.0),
        ("header of 20,000 signal lines (1 MB)", "cli", write_wide_header, None),
        ("header of 12,000 signal lines in 48 kB", "cli", write_many_signals, None),
        ("CSV of one 5M-column line (20 MB)", "cli", write_wide_text, 360.0),
        ("CSV of one 5M-column line (20 MB)", "upload", write_wide_text, 360.0),
        ("TSV of one 5M-column line (20 MB)", "upload", lambda d: write_wide_text(d, suffix=".tsv"), 360.0),
        ("one-column CSV recording, 46 MB (legitimate)", "upload", write_long_text, 360.0),
    ]


def command(path_taken: str, files: list[Path], fs: float | None, out: Path) -> list[str]:
    """The command line of one row: the CLI's `beats`, or the Data page's upload reader."""
    if path_taken == "cli":
        cmd = [sys.executable, "-m", "ecgviz", "beats", "--record", str(files[0]), "--out", str(out)]
        return cmd + (["--fs", str(fs)] if fs is not None else [])
    return [sys.executable, "-c", UPLOAD, str(fs), *map(str, files)]


def _outcome(r: dict) -> str:
    if r["killed"]:
        return r["killed"]
    if r["rc"] == 2:
        return f"exit 2 ({r['stderr_lines']} line)" if r["stderr_lines"] == 1 else f"exit 2 ({r['stderr_lines']} lines)"
    if r["rc"] == 0:
        return "loaded: " + (r["stdout"].splitlines()[-1][:60] if r["stdout"] else "")
    return f"exit {r['rc']} ({r['stderr_lines']} lines)"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--code", type=Path, default=ROOT, help="checkout whose ecgviz is measured")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds before a row's process is killed")
    p.add_argument("--cap-mib", type=float, default=2500.0, help="peak memory at which a row's process is killed")
    p.add_argument("--only", help="run only the rows whose attack contains this text")
    p.add_argument("--out", help="also write the JSON here")
    args = p.parse_args(argv)
    code = args.code.resolve()
    rows = []
    with tempfile.TemporaryDirectory(prefix="ecgviz-hostile-") as tmp:
        for i, (attack, path_taken, build, fs) in enumerate(cases()):
            if args.only and args.only not in attack:
                continue
            folder = Path(tmp, str(i))
            folder.mkdir()
            files = build(folder)
            size = sum(f.stat().st_size for f in files)
            r = run(command(path_taken, files, fs, folder / "out.arff"), code, args.timeout, args.cap_mib)
            shutil.rmtree(folder)  # the next row's files, not every row's, on disk at once
            rows.append({"attack": attack, "path": path_taken, "bytes": size, **r})
            print(f"[hostile] {attack} ({path_taken}): {_outcome(r)}, {r['s']:.1f} s, {r['peak_mib']:.0f} MiB; "
                  f"{r['message'][:160]}", file=sys.stderr, flush=True)
    commit = subprocess.run(["git", "-C", str(code), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    print(f"ecgviz from {code} (commit {commit or '?'}); load average {os.getloadavg()[0]:.1f}\n")
    print("| attack | path | file(s) | outcome | time | peak RSS |")
    print("|---|---|---:|---|---:|---:|")
    for r in rows:
        print(f"| {r['attack']} | {r['path']} | {r['bytes'] / 1e6:,.2f} MB | {_outcome(r)} | {r['s']:.1f} s "
              f"| {r['peak_mib']:,.0f} MiB |")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
