"""The layout the README promises: pages in pages/, navigation in app.py, a core free of the dashboard."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
PAGES = {"pages/data.py": "Data", "pages/model.py": "Model", "pages/explorer.py": "Threshold explorer",
         "pages/compare.py": "Compare detectors", "pages/export.py": "Export"}
DASHBOARD_ONLY = {"explore", "figures", "session", "jobs", "livechart", "compare"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def test_every_page_file_is_in_the_navigation_and_nothing_else_is():
    files = {f"pages/{p.name}" for p in (ROOT / "pages").glob("*.py") if p.name != "__init__.py"}
    assert files == set(PAGES)
    app = (ROOT / "app.py").read_text(encoding="utf-8")
    for path in PAGES:
        assert f'st.Page("{path}"' in app


def test_the_core_never_imports_the_dashboard_or_streamlit():
    for path in (ROOT / "ecgviz").rglob("*.py"):
        imports = _imports(path)
        assert not any(m == "streamlit" or m.startswith("streamlit.") for m in imports), path
        if path.parent.name != "dashboard":
            assert not any(m.startswith("ecgviz.dashboard") for m in imports), path
    assert {p.stem for p in (ROOT / "ecgviz" / "dashboard").glob("*.py")} - {"__init__"} >= DASHBOARD_ONLY
    assert not any((ROOT / "ecgviz" / f"{name}.py").exists() for name in DASHBOARD_ONLY)


def test_the_cli_loads_without_the_dashboard_layer():
    import subprocess
    import sys

    code = ("import sys, ecgviz.cli.main; bad = [m for m in sys.modules if m.startswith(('ecgviz.dashboard', "
            "'streamlit', 'plotly'))]; print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("page", list(PAGES))
def test_switch_page_runs_the_app_set_up_first(page, tmp_path, monkeypatch):
    from ecgviz.dashboard import config

    # the bundled data and the shipped model, as a fresh visitor gets them
    monkeypatch.delenv(config.CHECKPOINT_ENV, raising=False)
    monkeypatch.setenv(config.CHECKPOINT_DIR_ENV, str(tmp_path))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.title[0].value == PAGES[page]
    # the sidebar summary comes from app.py, not from the page
    sidebar = [m.value for m in at.sidebar.markdown]
    assert sidebar[:3] == ["**Data**", "**Model**", "**Threshold**"]
    assert "ECG5000" in " ".join(c.value for c in at.sidebar.caption)


def test_streamlit_still_treats_a_pages_folder_as_its_older_mode():
    # Why pages/common/multipage.py exists: Streamlit decides from the folder's existence alone. When
    # this starts failing, Streamlit has dropped that rule and the workaround can go.
    from streamlit.runtime.pages_manager import PagesManager

    saved = PagesManager.uses_pages_directory
    try:
        PagesManager.uses_pages_directory = None
        PagesManager(str(ROOT / "app.py"))
        assert PagesManager.uses_pages_directory is True
    finally:
        PagesManager.uses_pages_directory = saved


# The package's layers, lowest first: a module imports its own subpackage and the layers below it, never above.
LAYERS = ("errors", "io", "signal", "evaluation", "detectors", "checkpoint", "pipeline analysis", "service",
          "cli dashboard", "__main__")


def _layer(module: str) -> int:
    part = module.split(".")[1] if module.count(".") else ""
    return next(i for i, names in enumerate(LAYERS) if part in names.split())


def _package_imports() -> dict[str, set[str]]:
    """Every ecgviz module -> the ecgviz modules it imports (lazy imports inside functions counted too)."""
    modules = {}
    for path in (ROOT / "ecgviz").rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        modules[name] = path
    graph = {}
    for name, path in modules.items():
        targets = set()
        for imported in _imports(path):
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != "ecgviz" and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def test_the_package_is_layered_and_imports_only_point_down():
    graph = _package_imports()
    assert len({m.split(".")[1] for m in graph if m.count(".") and (ROOT / "ecgviz" / m.split(".")[1]).is_dir()}) >= 5
    upward = [(a, b) for a, targets in graph.items() if a != "ecgviz" for b in targets
              if _layer(b) > _layer(a) or (_layer(b) == _layer(a) and a.split(".")[1] != b.split(".")[1])]
    assert upward == []


def test_no_import_cycle():
    graph = _package_imports()
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, stack: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle.extend([*stack[stack.index(nxt):], nxt])
                return True
            if state.get(nxt) is None and visit(nxt, [*stack, nxt]):
                return True
        state[node] = 2
        return False

    assert not any(state.get(n) is None and visit(n, [n]) for n in sorted(graph)), " -> ".join(cycle)


def test_no_module_is_over_400_lines():
    files = [*(ROOT / "ecgviz").rglob("*.py"), *(ROOT / "pages").rglob("*.py"), ROOT / "app.py"]
    long = {str(p.relative_to(ROOT)): n for p in files if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert long == {}
