"""The threshold slider and its live figure, drawn in the browser (chart.js, chart.css here), fed by livechart."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import streamlit as st

_ASSETS = Path(__file__).parent
_HTML = """<div class="ecgviz-tc">
  <div class="ecgviz-tc-head"><span class="ecgviz-tc-title"></span><span class="ecgviz-tc-legend"></span></div>
  <svg class="ecgviz-tc-svg" role="img" aria-label="Reconstruction error histogram and recall curves"></svg>
  <input class="ecgviz-tc-range" type="range" aria-label="Threshold">
  <div class="ecgviz-tc-readout" aria-live="polite"></div>
</div>"""
# registered once per server process (this module is imported once); styles share the page's fonts and colours
_COMPONENT = st.components.v2.component(
    "ecgviz_threshold_chart",
    html=_HTML,
    css=(_ASSETS / "chart.css").read_text(encoding="utf-8"),
    js=(_ASSETS / "chart.js").read_text(encoding="utf-8"),
    isolate_styles=False,
)


def threshold_chart(data: dict, *, key: str, on_change: Callable[[], None]) -> None:
    """Mount the chart; when the user moves its slider, `on_change` runs (read the value with slider_value(key))."""
    # sent inside a list: Streamlit looks for data frames among a dict's values, and that look imports pandas
    # (0.5-0.8 s on the first page, before the chart could be drawn); a list's items it passes as they are
    _COMPONENT(data=[data], key=key, default={"threshold": {"value": data["threshold"], "move": 0}},
               on_threshold_change=on_change)


def slider_value(key: str) -> float:
    """The value the chart's slider last sent."""
    return float(st.session_state[key].threshold["value"])
