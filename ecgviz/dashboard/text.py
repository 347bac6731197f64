"""User-supplied text (labels, class, file, attribute and model names) made safe to show as plain text.

Streamlit reads Markdown in st.markdown, st.caption, st.title/st.subheader, alert bodies, spinner and progress text,
widget labels, button labels, metric labels and help tooltips: Markdown images there make the browser fetch their
URL, and links, bold, LaTeX (`$`), `:color[...]` directives and `:emoji:` / `:material/...:` shortcodes would render.
Plotly reads a little HTML (`<b>`, `<br>`, `<a href>`), entities and `$...$` in titles, legend names and hover text.
plain() and plotly_text() turn any string into one these show character for character.
"""

from __future__ import annotations

import re
import string

# CommonMark lets a backslash escape every ASCII punctuation character, and the escaped one is always literal text
_PUNCTUATION = re.compile("([" + re.escape(string.punctuation) + "])")
_WHITESPACE = re.compile(r"\s+")
# Streamlit replaces `:name:` shortcodes in text *after* escapes are resolved, so an escaped colon still starts one;
# an invisible word joiner after every colon breaks the pattern and shows nothing
WORD_JOINER = "\u2060"


def plain(text: object) -> str:
    """`text` escaped for Streamlit's Markdown, shown literally (a whitespace run as one space, as HTML shows it)."""
    # a newline could start a heading, list or code block; a run of spaces an indented code block
    flat = _WHITESPACE.sub(" ", str(text)).strip()
    return _PUNCTUATION.sub(r"\\\1", flat).replace(":", ":" + WORD_JOINER)


def plotly_text(text: object) -> str:
    """`text` for a Plotly title, legend name, axis title or hover text: tags, entities and `$` math shown literally."""
    # `$` as an entity: Plotly looks for math before it decodes entities, and shows the entity as `$`
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("$", "&#36;")

