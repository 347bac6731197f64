"""Why pages/common/multipage.py exists, shown on a two-file app: Streamlit runs a page file of a folder called
pages/ on its own when no st.navigation has run yet, frame and sidebar left out. When these tests fail, Streamlit has
dropped that rule and the workaround can go."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
APP = """
import streamlit as st
page = st.navigation([st.Page("pages/first.py", default=True), st.Page("pages/second.py")])
st.sidebar.markdown("frame")
{run}
"""
PAGE = """
import streamlit as st
{guard}
st.title("{name}")
"""


def _app(folder: Path, *, guarded: bool) -> AppTest:
    (folder / "pages").mkdir()
    guard = f"import sys; sys.path.insert(0, {str(ROOT)!r})\nfrom pages.common import multipage\n"
    if guarded:
        # the project's workaround, pointed at this app's frame
        guard += f"multipage.framed(app=__import__('pathlib').Path({str(folder / 'app.py')!r}))\n"
    for name in ("first", "second"):
        (folder / "pages" / f"{name}.py").write_text(PAGE.format(guard=guard if guarded else "", name=name))
    run = "from pages.common import multipage\nmultipage.run(page)" if guarded else "page.run()"
    prelude = f"import sys; sys.path.insert(0, {str(ROOT)!r})\n" if guarded else ""
    (folder / "app.py").write_text(prelude + APP.format(run=run))
    return AppTest.from_file(str(folder / "app.py"), default_timeout=60)


def test_a_page_of_a_pages_folder_runs_without_its_frame(tmp_path):
    at = _app(tmp_path, guarded=False)
    at.run()
    assert [m.value for m in at.sidebar.markdown] == ["frame"]  # the entry page runs inside the frame
    at.switch_page("pages/second.py").run()
    assert at.title[0].value == "second"
    assert [m.value for m in at.sidebar.markdown] == []  # the page ran alone: st.navigation never ran


@pytest.mark.parametrize("page", ["pages/first.py", "pages/second.py"])
def test_the_workaround_runs_every_page_inside_its_frame(tmp_path, page):
    at = _app(tmp_path, guarded=True)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.title[0].value == Path(page).stem
    assert [m.value for m in at.sidebar.markdown] == ["frame"]
