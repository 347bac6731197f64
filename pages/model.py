"""Model: load a checkpoint (shipped, saved or uploaded) or train a new autoencoder in the background."""

import pandas as pd
import streamlit as st

from ecgviz.checkpoint import CheckpointError, save_checkpoint
from ecgviz.dashboard import explore, figures, session
from ecgviz.dashboard.jobs import CANCELLED, DONE, ERROR, format_seconds
from ecgviz.score import ERROR_NAMES
from pages.common import detectors, state

state.run_through_app()  # first line of every page: app.py's set-up and navigation run first

PLOT_CONFIG = {"displaylogo": False}


@st.cache_data(max_entries=64, show_spinner=False)
def _summary(path: str, mtime_ns: int) -> dict | None:
    try:
        return session.model_summary(session.model_from_path(path))
    except CheckpointError:
        return None


@state.shows_errors
def models_table() -> None:
    """Every saved model (any detector) and the baselines of this session, with their held-out metrics."""
    rows = [_summary(str(p), p.stat().st_mtime_ns) for p in state.checkpoint_choices() if p.is_file()]
    rows = [r for r in rows if r is not None]
    fitted = detectors.baselines()
    rows += [{**session.model_summary(b), "file": "(this session, not saved)"} for b in fitted]
    if rows:
        st.markdown("**Models and their held-out metrics** (at each model's own stored threshold)")
        st.dataframe(pd.DataFrame(rows), hide_index=True,
                     column_config={k: st.column_config.NumberColumn(format="%.4f")
                                    for k in ("AUROC", "AP", "balanced accuracy")})
    if fitted and st.button("Save the baselines to checkpoints/", key="save_baselines", icon=":material/save:"):
        saved = []
        for b in fitted:
            name = session.safe_name(f"{b.ckpt.kind}_{b.name}_{state.active_data().fingerprint[:8]}")
            path = session.checkpoint_dir() / f"{name}.pt"
            if not path.exists():
                save_checkpoint(b.ckpt, path)
            saved.append(path.name)
        state.notify(f"Saved {', '.join(saved)}.")
        st.rerun()

st.title("Model")
state.show_notice()


def activate(load) -> None:
    """Load a model with `load()` and make it active, or say why not; the previous model stays otherwise."""
    try:
        model = load()
        state.set_model(model)
    except CheckpointError as exc:
        st.error(str(exc), icon=":material/error:")
        return
    state.notify(f"Model '{model.name}' is active; the threshold is now its own ({model.ckpt.threshold:.4g}).")
    st.rerun()


model = state.active_model()
with st.container(border=True):
    if model is None:
        st.info("No model is loaded yet.", icon=":material/info:")
    else:
        ckpt = model.ckpt
        st.markdown(f"**Active model: {model.name}** ({model.source})")
        cols = st.columns(4)
        cols[0].metric("Detector", "LSTM AE" if ckpt.kind == "lstm_ae" else ckpt.description,
                       help=ckpt.description, border=True)
        cols[1].metric("Beat length", ckpt.seq_len, border=True)
        cols[2].metric("Split", ckpt.split.mode, help=ckpt.split.describe(), border=True)
        cols[3].metric("Stored threshold", f"{ckpt.threshold:.4g}", help=ckpt.threshold_rule, border=True)
        held_out = ckpt.metrics or {}
        st.caption(f"Scores: {ERROR_NAMES.get(ckpt.loss, ckpt.loss)}; split: {ckpt.split.describe()}.")
        if held_out.get("auroc") is not None:
            st.caption(
                f"On its held-out beats: ROC AUC {held_out['auroc']:.4f}, normal beats passed "
                f"{explore.percent(held_out.get('normal_recall'))}, anomalies caught "
                f"{explore.percent(held_out.get('anomaly_recall'))} at the stored threshold."
            )
        if ckpt.history:
            with st.expander("Training history"):
                best = ckpt.train_config.get("best_epoch")
                st.plotly_chart(figures.loss_curves(list(ckpt.history), best), config=PLOT_CONFIG,
                                key="active_history")

load_tab, train_tab = st.tabs([":material/folder_open: Load a checkpoint", ":material/model_training: Train a model"])

with load_tab:
    choices = state.checkpoint_choices()
    if choices:
        left, right = st.columns([3, 1], vertical_alignment="bottom")
        chosen = left.selectbox("Saved checkpoints", [str(p) for p in choices],
                                format_func=lambda p: p.rsplit("/", 1)[-1], key="ckpt_choice")
        if right.button("Load", icon=":material/upload_file:", key="ckpt_load"):
            source = "shipped" if chosen == str(session.default_checkpoint_path()) else "saved"
            activate(lambda: session.model_from_path(chosen, source=source))
    else:
        st.caption("No checkpoint files found.")
    models_table()
    upload = st.file_uploader("Or upload a checkpoint (.pt)", type=["pt"], key="ckpt_upload")
    if upload is not None and upload.file_id != st.session_state.get("ckpt_upload_id"):
        st.session_state["ckpt_upload_id"] = upload.file_id  # one attempt per uploaded file
        activate(lambda: session.model_from_bytes(upload.getvalue(), upload.name))

data = state.active_data()
job = st.session_state.get(state.JOB)
running = job is not None and not job.state().finished

with train_tab:
    st.caption(f"Trains on the normal beats of **{data.name}** (normal: {state.normal_names(data)}); "
               "15% of them are held back for early stopping and for honest metrics.")
    with st.form("train_form", border=False):
        name = st.text_input("Save as", value="my_model", help="file name in checkpoints/, letters/digits/_/-")
        d = session.TrainSettings()
        c1, c2, c3, c4, c5 = st.columns(5)
        embedding = c1.number_input("Embedding size", 1, 512, d.embedding_dim, help="size of the bottleneck vector")
        chunk = c2.number_input("Samples per step", 1, 64, d.chunk,
                                help="samples the LSTMs read and write per step: 10 is ~10x faster than 1, "
                                     "with the same held-out AUROC on ECG5000")
        epochs = c3.number_input("Epochs (at most)", 1, 1000, d.epochs, help="early stopping may end sooner")
        batch = c4.number_input("Batch size", 1, 4096, d.batch_size)
        lr = c5.number_input("Learning rate", 1e-5, 1.0, d.lr, format="%.4f", step=1e-4)
        sources = list(dict.fromkeys(data.data.sources.tolist()))
        s1, s2, s3 = st.columns(3)
        split_mode = s1.radio("Split", ["seed", "files"], horizontal=True, disabled=len(sources) < 2,
                              format_func={"seed": "Seeded 85/7.5/7.5 of all normals",
                                           "files": "Keep the files as given"}.get,
                              help="files: train on the normal beats of one file, evaluate on another (e.g. TRAIN "
                                   "and TEST); needs two files loaded together")
        train_file = s2.selectbox("Train on the normals of", sources, disabled=len(sources) < 2,
                                  index=next((i for i, f in enumerate(sources) if "TRAIN" in f.upper()), 0))
        test_file = s3.selectbox("Evaluate on", sources, disabled=len(sources) < 2,
                                 index=next((i for i, f in enumerate(sources) if "TEST" in f.upper()),
                                            min(1, len(sources) - 1)))
        c1, c2, c3, c4 = st.columns(4)
        loss = c1.selectbox("Loss", ["l1", "mse"], help="l1: absolute error summed over the beat; mse: mean squared")
        seed = c2.number_input("Seed", 0, 2**31 - 1, d.seed)
        device = c3.selectbox("Device", session.available_devices())
        patience = c4.number_input("Patience (epochs)", 1, 1000, d.patience, help="stop after this many epochs "
                                                                                  "without a better validation loss")
        submitted = st.form_submit_button("Start training", icon=":material/play_arrow:", disabled=running,
                                          type="primary")
    if submitted:
        settings = session.TrainSettings(embedding_dim=embedding, chunk=chunk, epochs=epochs, batch_size=batch, lr=lr,
                                         loss=loss, seed=seed, device=device, patience=patience,
                                         split_mode=split_mode if len(sources) >= 2 else "seed",
                                         train_file=train_file or "", test_file=test_file or "")
        try:
            new_job = session.start_training(data, st.session_state.get(state.NORMALS) or [], name.strip(),
                                             settings, directory=session.checkpoint_dir())
        except ValueError as exc:
            st.error(str(exc), icon=":material/error:")
        else:
            st.session_state[state.JOB] = new_job.start()
            st.session_state["job_adopted"] = False
            st.rerun()


@st.fragment(run_every=1.0)
@state.shows_errors
def progress() -> None:
    """Live view of the background job; polls its state every second while it runs."""
    job = st.session_state.get(state.JOB)
    s = job.state()
    if s.finished:
        # hand over to a full run, which adopts the model and shows the outcome
        st.rerun(scope="app")
    text = f"Epoch {s.epoch}/{s.epochs} · {format_seconds(s.elapsed_s)} elapsed · about {format_seconds(s.eta_s)} left"
    if job.cancel_requested:
        text = "Cancelling…"
    elif s.status == "finishing" or s.epoch >= s.epochs:
        text = "Scoring held-out beats and saving the checkpoint…"
    st.markdown(f"**Training {job.label}**")
    st.progress(s.progress, text=text)
    st.button("Cancel", on_click=job.cancel, disabled=job.cancel_requested, icon=":material/stop:",
              key="train_cancel")
    if s.history:
        st.plotly_chart(figures.loss_curves(list(s.history), s.best_epoch), config=PLOT_CONFIG, key="live_history")


if job is not None:
    with train_tab:
        s = job.state()
        if not s.finished:
            progress()
        elif s.status == DONE:
            result = job.result
            st.success(f"Training finished after {s.epoch} epochs in {format_seconds(s.elapsed_s)}; saved as "
                       f"{result.path.name if result and result.path else 'a checkpoint'}.",
                       icon=":material/check_circle:")
            st.plotly_chart(figures.loss_curves(list(s.history), s.best_epoch), config=PLOT_CONFIG,
                            key="job_history")
        elif s.status == CANCELLED:
            st.warning(f"Training {job.label} was cancelled after {s.epoch} epochs; nothing was saved.",
                       icon=":material/stop:")
        elif s.status == ERROR:
            st.error(f"Training {job.label} failed: {s.message}", icon=":material/error:")
