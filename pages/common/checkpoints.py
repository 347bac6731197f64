"""The Model page's lists: which checkpoint files to offer, and where a model's training data can be found."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ecgviz.dashboard import config, session, workspace
from ecgviz.dashboard.text import plain
from pages.common import state, sync


def checkpoint_choices() -> list[Path]:
    """Checkpoint files offered on the Model page: the start-up one first, then those saved."""
    from ecgviz.checkpoint.store import list_checkpoints

    seen, out = set(), []
    default = config.default_checkpoint_path()
    for path in ([default] if default.is_file() else []) + list_checkpoints(config.checkpoint_dir()):
        if path.resolve() not in seen:
            seen.add(path.resolve())
            out.append(path)
    return out


def model_dir() -> Path:
    """This workspace's model area: models are trained and saved there, seen by no other visitor until shared."""
    ws = sync.workspace_of_session()
    return ws.model_dir() if ws is not None else config.checkpoint_dir()


def offered() -> list[Path]:
    """This workspace's models, then the shared checkpoints (the start-up one first)."""
    ws = sync.workspace_of_session()
    return (ws.model_files() if ws is not None else []) + checkpoint_choices()


def data_provenance(model: session.ActiveModel) -> None:
    """When the model was trained on other data: name that data and offer to load it where it is at hand."""
    ckpt, data = model.card, state.active_data()
    if ckpt.data_fingerprint == data.fingerprint:
        return
    offers = workspace.data_offers(sync.workspace_of_session(), ckpt.data_fingerprint)
    files = (", ".join(ckpt.data_sources) if ckpt.data_sources
             else offers[0][0] if offers else "file names not recorded in this checkpoint")
    st.info(f"'{plain(model.name)}' was trained on other data than {plain(data.name)}: {plain(files)}; beats of "
            f"{ckpt.seq_len} samples, fingerprint {plain(ckpt.data_fingerprint[:12])}. Its held-out split only applies "
            "to that data.",
            icon=":material/info:")
    for i, (label, load) in enumerate(offers):
        if st.button(f"Load {plain(label)}", key=f"provenance_load_{i}", icon=":material/dataset:"):
            new, raw = load()
            state.set_data(new, files=raw)
            state.set_threshold(float(model.card.threshold))
            state.notify(f"Loaded {new.name}, the data '{model.name}' was trained on.")
            st.rerun()
