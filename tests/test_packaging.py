"""The package outside its checkout: `pip install .` into a fresh environment, then `ecgviz evaluate` and
`python -m ecgviz evaluate` from another folder, on the shipped model and data the install carries."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from ecgviz.checkpoint.store import SHIPPED_CHECKPOINT, load_checkpoint

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_every_subpackage_and_both_shipped_folders_are_packaged():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "ecgviz").rglob("__init__.py")}
    assert {p for p in listed if not p.startswith("ecgviz.shipped")} == found
    mapped = PYPROJECT["tool"]["setuptools"]["package-dir"]
    assert mapped["ecgviz.shipped.checkpoints"] == "checkpoints" and mapped["ecgviz.shipped.data"] == "data"
    data = PYPROJECT["tool"]["setuptools"]["package-data"]
    assert SHIPPED_CHECKPOINT.name in data["ecgviz.shipped.checkpoints"]
    for package, names in data.items():
        folder = ROOT / mapped[package]
        assert all((folder / name).is_file() for name in names), package


def test_the_extras_and_the_script_are_declared():
    dynamic = PYPROJECT["tool"]["setuptools"]["dynamic"]
    assert set(dynamic["optional-dependencies"]) == {"service", "cluster", "tracking"}
    assert dynamic["dependencies"]["file"] == ["requirements-runtime.txt"]
    assert PYPROJECT["project"]["scripts"]["ecgviz"] == "ecgviz.cli.main:main"


@pytest.mark.slow
def test_an_installed_ecgviz_evaluates_the_shipped_model_from_any_folder(tmp_path):
    # built from a copy: a build leaves build/ and ecgviz.egg-info/ in the tree it runs in
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__",
                                                                ".*_cache", ".hypothesis", "tests", "bench", "mlruns"))
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
                            "-w", str(wheels), "-q"], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    # the dependencies come from this environment (no network here); ecgviz itself only from the wheel
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    wheel = next(wheels.glob("ecgviz-*.whl"))
    installed = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "-q", str(wheel)],
                               capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run([str(python), "-c", "import ecgviz; print(ecgviz.__file__)"], cwd=elsewhere, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(site) and not Path(where).is_relative_to(ROOT)
    expected = load_checkpoint(SHIPPED_CHECKPOINT).metrics
    for command in ([str(venv / "bin" / "ecgviz")], [str(python), "-m", "ecgviz"]):
        done = subprocess.run([*command, "evaluate", "--json"], cwd=elsewhere, env=env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout)
        assert out["held_out_split"] is True and out["auroc"] == pytest.approx(expected["auroc"], abs=1e-6)
        assert out["n_normal"] == expected["n_normal"] and out["n_anomaly"] == expected["n_anomaly"]
