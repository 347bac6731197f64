"""The dashboard's view model: pure Python (no Streamlit), used by pages/ and nothing the CLI needs.

session (a browser session's data and model), jobs (background training), explore (one evaluation and what a
threshold does to it), classes (class names, colours and the groups drawn, following the chosen normals),
beat_picker (which beat the viewer shows), figures (Plotly figures), livechart (the threshold chart's exact
counts) and text (user text made safe to show: no Markdown, HTML or LaTeX of it renders).
"""
