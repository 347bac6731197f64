"""Start-up: --help and argument errors import no heavy library; each command imports what it uses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "pandas", "scipy", "sklearn", "numpy", "streamlit", "fastapi", "mlflow", "dask", "wfdb")


def run_cli(args: list[str], cwd: Path = ROOT) -> dict:
    """The CLI in a fresh interpreter: its exit status, stderr, and which heavy libraries it imported."""
    code = ("import json, sys\n"
            "from ecgviz.cli.main import main\n"
            f"rc = main({args!r})\n"
            f"print(json.dumps({{'rc': rc, 'heavy': [m for m in {HEAVY!r} if m in sys.modules]}}))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return {**out, "stderr": done.stderr}


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"], ["score", "--help"]])
def test_help_imports_no_heavy_library(args):
    r = run_cli(args)
    assert r["rc"] == 0 and r["heavy"] == [], r


@pytest.mark.parametrize("args", [["train", "--epochs", "0", "--out", "x.pt"], ["frobnicate"],
                                  ["score", "--data", "a.csv", "--out", "o.csv", "--threshold", "nan"]])
def test_an_argument_error_is_one_line_and_imports_no_heavy_library(args):
    r = run_cli(args)
    assert r["rc"] == 2 and r["heavy"] == [], r
    assert r["stderr"].count("\n") == 1 and r["stderr"].startswith("ecgviz: error: "), r["stderr"]


def test_pack_of_a_small_file_needs_numpy_and_nothing_heavier(tmp_path):
    (tmp_path / "b.csv").write_text("".join(f"{i % 2},{i},{i + 1},{i + 2}\n" for i in range(50)))
    r = run_cli(["pack", "--data", "b.csv", "--out", "b.npz"], cwd=tmp_path)
    assert r["rc"] == 0 and r["heavy"] == ["numpy"], r
    assert (tmp_path / "b.npz").stat().st_size > 50 * 3 * 4
