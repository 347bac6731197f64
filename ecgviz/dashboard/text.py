"""User-supplied text (labels, class, file, attribute and model names) made safe to show as plain text.

Streamlit reads Markdown in st.markdown, st.caption, st.title/st.subheader, alert bodies, spinner and progress text,
widget, button and metric labels and help tooltips: a Markdown image there makes the browser fetch its URL, and
links, bold, LaTeX (`$`), `:color[...]` directives and `:emoji:` / `:material/...:` shortcodes would render.
Plotly reads a little HTML (`<b>`, `<br>`, `<a href>`), entities and `$...$` in titles, legend names and hover text.
plain() and plotly_text() turn any string into one these show character for character.
"""

from __future__ import annotations

import re

# escaped wherever they stand (a backslash before ASCII punctuation always shows that character in CommonMark);
# `(`, `)`, `!` and `.` need no escape once `[` and `]` are escaped, so ordinary file names stay readable
_ALWAYS = re.compile(r"([\\`*\[\]<>&~$|])")
# `_` between two letters or digits never starts or ends emphasis (e.g. up_TRAIN.arff); elsewhere it may
_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
# Shortcodes (:smile:, :material/x:) and GFM's bare links (http://x, www.x, a@b.x) are found in the text after
# escapes are resolved, so an escape alone does not stop them: an invisible word joiner (U+2060) breaks each
# pattern. A colon before a name or `/` could also start a directive (:red[...]), which its escape stops.
WORD_JOINER = "\u2060"
_COLON = re.compile(r":(?=[\w+\-/])")
_WWW = re.compile(r"\b(www)\.", re.IGNORECASE)
_EMAIL = re.compile(r"(?<=[\w.+\-])@")  # not "no @data line"
# at the start of a line: a heading, a list item or a thematic break
_LEADING = re.compile(r"^([#+\-=])|^(\d+)([.)])")
_WHITESPACE = re.compile(r"\s+")


def plain(text: object) -> str:
    """`text` escaped for Streamlit's Markdown, shown literally (a whitespace run as one space, as HTML shows it)."""
    # one line: a newline could start a heading, list, table or code block
    out = _WHITESPACE.sub(" ", str(text)).strip()
    out = _ALWAYS.sub(r"\\\1", out)
    out = _UNDERSCORE.sub(r"\\_", out)
    out = _COLON.sub("\\\\:" + WORD_JOINER, out)
    out = _WWW.sub(r"\1" + WORD_JOINER + ".", out)
    out = _EMAIL.sub("\\\\@" + WORD_JOINER, out)
    return _LEADING.sub(lambda m: f"\\{m[1]}" if m[1] else f"{m[2]}\\{m[3]}", out)


def plotly_text(text: object) -> str:
    """`text` for a Plotly title, legend name, axis title or hover text: tags, entities and `$` math shown literally."""
    # `$` as an entity: Plotly looks for math before it decodes entities, and shows the entity as `$`
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("$", "&#36;")
