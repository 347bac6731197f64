"""Hostile text: labels and file names full of Markdown, HTML and LaTeX show as plain text, and the dashboard asks
for nothing beyond its own server (clinical data tools run behind firewalls)."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from ecgviz.dashboard import config, figures
from ecgviz.dashboard.text import WORD_JOINER, plain, plotly_text
from tests.helpers import synthetic_beats

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
OUTSIDE = "198.51.100.7"  # TEST-NET-2: never a real host
IMAGE = f"![x](http://{OUTSIDE}/x.png)"
LINK = f"[link](http://{OUTSIDE}/l)"
# the beat labels of the hostile upload: an image, then bold, LaTeX, HTML and a link, then an emoji shortcode
LABELS = {"1": "normal", "2": IMAGE, "3": f"**bold** $x^2$ <img src=http://{OUTSIDE}/i.png> {LINK} :smile:"}
# a file name cannot hold "/", but browsers read "\" as "/" in an http URL: Markdown would fetch this image
FILE_NAME = f"**f**_![i](http:\\{OUTSIDE}\\f.png).csv"

# (text, what plain() makes of it): exact, so a change in the escaping is a decision, not an accident
PLAIN = [
    (IMAGE, f"!\\[x\\](http\\:{WORD_JOINER}//{OUTSIDE}/x.png)"),
    ("**bold**", "\\*\\*bold\\*\\*"),
    ("$x^2$", "\\$x^2\\$"),
    ("<img src=x>", "\\<img src=x\\>"),
    (LINK, f"\\[link\\](http\\:{WORD_JOINER}//{OUTSIDE}/l)"),
    ("a\\b \\*", "a\\\\b \\\\\\*"),
    (":material/home: :smile: :red[x]",
     f"\\:{WORD_JOINER}material/home: \\:{WORD_JOINER}smile: \\:{WORD_JOINER}red\\[x\\]"),
    ("_x_ __init__ a_b", "\\_x\\_ \\_\\_init\\_\\_ a_b"),
    ("~~s~~ `c` a|b &amp; a@b.org www.x.org",
     f"\\~\\~s\\~\\~ \\`c\\` a\\|b \\&amp; a\\@{WORD_JOINER}b.org www{WORD_JOINER}.x.org"),
    ("# h", "\\# h"), ("- x", "\\- x"), ("+ x", "\\+ x"), ("12. x", "12\\. x"), ("3) x", "3\\) x"),
    ("two\nlines\t and  spaces ", "two lines and spaces"),
    # ordinary names and messages stay as they are
    ("up_TRAIN.arff + up_TEST.arff", "up_TRAIN.arff + up_TEST.arff"),
    ("broken.arff: row 2 (of 3)!", "broken.arff: row 2 (of 3)!"),
    ("no @data line", "no @data line"),
]


def shown(escaped: str) -> str:
    """What CommonMark shows for plain()'s output: every backslash escape resolved, word joiners invisible."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", escaped).replace(WORD_JOINER, "")


@pytest.mark.parametrize(("text", "expected"), PLAIN)
def test_plain_escapes_exactly_what_markdown_would_read(text, expected):
    assert plain(text) == expected


@pytest.mark.parametrize("text", [t for t, _ in PLAIN] + list(LABELS.values()) + [FILE_NAME])
def test_plain_text_reads_back_as_the_original_characters(text):
    escaped = plain(text)
    assert shown(escaped) == " ".join(text.split())
    # no Markdown construct is left unescaped: no image or link opener, emphasis, math, HTML or shortcode
    assert not re.search(r"(?<!\\)[\[\]*`$<>~]|(?<![\\A-Za-z0-9])_|(?<!\\):[\w/]", escaped)


def test_plotly_text_shows_tags_entities_and_math_literally():
    assert plotly_text(f"<b>bold</b> <a href='http://{OUTSIDE}/'>x</a> <img src=x> $x^2$ &amp; <br>") == (
        f"&lt;b&gt;bold&lt;/b&gt; &lt;a href='http://{OUTSIDE}/'&gt;x&lt;/a&gt; &lt;img src=x&gt; "
        "&#36;x^2&#36; &amp;amp; &lt;br&gt;")
    assert plotly_text("Class 2 (N): 10 beats") == "Class 2 (N): 10 beats"
    title = figures.class_preview(np.zeros((3, 8)), title=LABELS["3"]).layout.title.text
    assert "<" not in title and "$" not in title and f"&lt;img src=http://{OUTSIDE}/i.png&gt;" in title


def hostile_csv() -> bytes:
    """60 beats of 140 samples (the shipped model's length) labelled with LABELS, in the UCR CSV layout."""
    X, labels = synthetic_beats(n_normal=40, n_anomaly=20, length=140)
    rows = [",".join([LABELS[k]] + [f"{v:.5f}" for v in row]) for k, row in zip(labels, X, strict=True)]
    return ("\n".join(rows) + "\n").encode()


def markdown_values(at: AppTest) -> list[str]:
    """Every string this run handed to an element or label that Streamlit reads as Markdown."""
    out = [e.value for kind in ("markdown", "caption", "title", "subheader", "info", "warning", "error", "success")
           for e in getattr(at, kind)]
    out += [e.value for e in at.sidebar.caption]
    out += [m.label for m in at.metric] + [m.proto.help for m in at.metric] + [b.label for b in at.button]
    return out


def assert_all_plain(values: list[str]) -> None:
    for value in values:
        # the hostile fragments, each with its Markdown unescaped (our own text may use **bold**)
        assert not re.search(r"(?<!\\)\]\(http|(?<!\\)\*\*(bold|f)|(?<!\\)\$x|(?<!\\)<img|(?<!\\):smile", value), value
        assert f"http://{OUTSIDE}" not in value, value


def test_hostile_labels_and_file_name_show_as_plain_text(monkeypatch, tmp_path):
    st.cache_data.clear()
    st.cache_resource.clear()
    monkeypatch.delenv(config.CHECKPOINT_ENV, raising=False)  # the shipped model: beats of 140 samples
    monkeypatch.setenv(config.CHECKPOINT_DIR_ENV, str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("pages/data.py").run()
    at.file_uploader(key="data_upload").set_value((FILE_NAME, hostile_csv(), "text/csv")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.session_state["active_data"].name == FILE_NAME  # loaded, name kept as given
    assert at.subheader[0].value == plain(FILE_NAME)
    assert at.sidebar.caption[0].value.startswith(plain(FILE_NAME) + "  \n")
    # the class previews' titles (a class's name is "Class <label>", shortened; labels sort by their first character)
    data = at.session_state["active_data"]
    assert [json_title(c) for c in at.get("plotly_chart")][:2] == [
        plotly_text(f"{data.class_name(label)} ({label}): 10 beats") for label in (LABELS["2"], LABELS["3"])]
    assert_all_plain(markdown_values(at))

    at.switch_page("pages/explorer.py").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    labels = [m.label for m in at.metric]
    names = [data.class_name(LABELS[k]) for k in ("2", "3")]
    assert plain(names[0]) in labels and plain(names[1]) in labels
    # the held-out caveats name the classes (the last unescaped image that reached the browser)
    assert any(plain(names[0]) in c.value for c in at.caption)
    assert_all_plain(markdown_values(at))
    st.cache_data.clear()
    st.cache_resource.clear()


def json_title(chart) -> str:
    import json

    return json.loads(chart.proto.spec)["layout"]["title"]["text"]


# --- in a real browser ---------------------------------------------------------------------------------------------

PAGES = ["", "data", "model", "explorer", "compare", "export"]  # "" and "explorer" are both the default page


def outside(requests: list[tuple[str, str]], port: int) -> list[tuple[str, str]]:
    """The requests (URL, what the page showed when it was made) that went anywhere but the app's own server."""
    own = {("127.0.0.1", port), ("localhost", port)}
    return [(u, where) for u, where in requests
            if urlsplit(u).scheme not in ("data", "blob") and (urlsplit(u).hostname, urlsplit(u).port) not in own]


@pytest.mark.browser
def test_no_request_leaves_the_server_with_hostile_labels(browser, tmp_path):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    from tests.browser_support import StreamlitServer, wait_idle

    upload = tmp_path / FILE_NAME
    upload.write_bytes(hostile_csv())
    env = {config.CHECKPOINT_ENV: None, config.CHECKPOINT_DIR_ENV: str(tmp_path / "ckpt"), "OMP_NUM_THREADS": "1"}
    requests: list[tuple[str, str]] = []
    with StreamlitServer(APP, env=env) as server:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(60_000)
        where = {"page": "/"}
        context.on("request", lambda r: requests.append((r.url, where["page"])))  # every frame, every kind
        try:
            page = context.new_page()
            page.goto(server.url)
            wait_idle(page)
            where["page"] = "data, upload"
            page.goto(server.url + "data?" + urlsplit(page.url).query)
            wait_idle(page)
            page.locator("[data-testid=stFileUploader]").first.locator("input[type=file]").set_input_files(upload)
            wait_idle(page)
            # what the page shows is checked after the requests: first the finding, then its symptoms
            shown = {"heading": page.locator("h3").first.inner_text(),
                     "sidebar": page.locator("[data-testid=stSidebarUserContent] [data-testid=stCaptionContainer]")
                     .first.inner_text().split("\n")[0]}
            query = urlsplit(page.url).query  # the workspace, so every page shows the hostile data
            for path in PAGES:
                where["page"] = path or "/"
                page.goto(f"{server.url}{path}?{query}")
                wait_idle(page)
                assert page.locator("[data-testid=stException]").count() == 0
                if path == "data":  # the class previews' Plotly titles
                    shown["titles"] = page.locator("[data-testid=stPlotlyChart] .gtitle").all_text_contents()
                if path == "explorer":  # the per-class cards (the caveats under them name the classes too)
                    shown["cards"] = page.locator("[data-testid=stMetricLabel]").all_inner_texts()
                if path == "compare" and page.get_by_role("button", name="Fit baselines (kNN, PCA)").count():
                    page.get_by_role("button", name="Fit baselines (kNN, PCA)").click()
                    wait_idle(page)
            # a hostile class as a normal one: its name in the multiselect's list and in its chip
            where["page"] = "data, normal classes"
            page.goto(f"{server.url}data?{query}")
            wait_idle(page)
            option = page.get_by_role("option").filter(has_text="![x]")
            for _ in range(3):  # the list opens on a click once the widget is ready; on a busy machine, click again
                page.locator("[data-testid=stMultiSelect] input").first.click()
                with contextlib.suppress(PlaywrightTimeout):
                    option.wait_for(timeout=5_000)
                    break
                page.keyboard.press("Escape")
            option.click()
            wait_idle(page)
            page.keyboard.press("Escape")
            shown["chips"] = page.locator("[data-testid=stMultiSelect] [data-tag] > span").all_inner_texts()
            shown["links"] = page.locator(f"img[src*='{OUTSIDE}'], a[href*='{OUTSIDE}']").count()
        finally:
            context.close()
        stray = outside(requests, server.port)
    assert requests and not stray, stray
    assert plain_text(shown["heading"]) == plain_text(shown["sidebar"]) == FILE_NAME
    assert f"Class {LABELS['2']}" in [plain_text(c) for c in shown["cards"]]
    assert f"Class {LABELS['2']} ({LABELS['2']}): 10 beats" in shown["titles"]
    assert any(f"({LABELS['3']}): 10 beats" in t for t in shown["titles"])  # tags, entities and $ as typed
    assert [plain_text(c) for c in shown["chips"]] == ["Class normal (normal)", f"Class {IMAGE} ({IMAGE})"]
    assert shown["links"] == 0


def plain_text(shown_text: str) -> str:
    """Text as the browser shows it, without the invisible word joiners plain() puts after colons."""
    return shown_text.replace(WORD_JOINER, "").strip()


# every string in PLAIN, through Streamlit's own Markdown renderer in the places it reads Markdown
_RENDER_APP = '''
import streamlit as st
from ecgviz.dashboard.text import plain
from tests.test_hostile_text import PLAIN
with st.container(key="markdown"):
    for text, _ in PLAIN:
        st.markdown(plain(text))
with st.container(key="caption"):
    for text, _ in PLAIN:
        st.caption(plain(text))
with st.container(key="metric"):
    for n, (text, _) in enumerate(PLAIN):
        st.metric(plain(text), n)
with st.container(key="button"):
    for n, (text, _) in enumerate(PLAIN):
        st.button(plain(text), key=f"b{n}")
with st.container(key="warning"):
    for text, _ in PLAIN:
        st.warning(plain(text))
'''


@pytest.mark.browser
def test_streamlit_shows_plain_text_character_for_character(browser, tmp_path):
    from tests.browser_support import StreamlitServer, wait_idle

    script = tmp_path / "render.py"
    script.write_text(_RENDER_APP)
    with StreamlitServer(script, env={"PYTHONPATH": str(ROOT)}) as server:
        context = browser.new_context()
        requests: list[str] = []
        context.on("request", lambda r: requests.append(r.url))
        try:
            page = context.new_page()
            page.goto(server.url)
            wait_idle(page)
            inner = {"markdown": "[data-testid=stMarkdownContainer]", "caption": "[data-testid=stCaptionContainer]",
                     "metric": "[data-testid=stMetricLabel]", "button": "button",
                     "warning": "[data-testid=stAlertContentWarning]"}
            boxes = {kind: page.locator(f".st-key-{kind} {sel}") for kind, sel in inner.items()}
            expected = [" ".join(text.split()) for text, _ in PLAIN]
            for kind, box in boxes.items():
                assert [plain_text(t) for t in box.all_inner_texts()] == expected, kind
                # nothing became markup: no link, image, emphasis, code, math, strike-through or icon
                markup = box.locator("a, img, strong, em, code, del, .katex, [data-testid=stIconMaterial], h1, h2, "
                                     "li, blockquote, hr")
                assert markup.count() == 0, (kind, markup.first.evaluate("e => e.outerHTML"))
        finally:
            context.close()
        assert not outside([(u, "") for u in requests], server.port)
