"""Model: load a checkpoint (shipped, saved or uploaded) or train a new autoencoder in the background."""

import pandas as pd
import streamlit as st

from ecgviz.checkpoint.store import CheckpointError, save_checkpoint
from ecgviz.dashboard import config, explore, figures, flagged, glossary, session, training
from ecgviz.dashboard.jobs import CANCELLED, DONE, ERROR, format_seconds
from ecgviz.dashboard.text import plain
from ecgviz.detectors.config import DEFAULT_PERCENTILE
from pages.common import caches, checkpoints, detectors, page, state, sync, training_progress
from pages.common.guard import shows_errors

PLOT_CONFIG = {"displaylogo": False}
LOAD_TAB, TRAIN_TAB = ":material/folder_open: Load a checkpoint", ":material/model_training: Train a model"


@st.cache_data(max_entries=64, show_spinner=False)
def _summary(path: str, mtime_ns: int) -> dict | None:
    try:
        return session.model_summary(session.model_from_path(path))
    except CheckpointError:
        return None


@shows_errors
def models_table() -> None:
    """Every saved model (any detector) and the baselines of this session, with their held-out metrics."""
    rows = [_summary(str(p), p.stat().st_mtime_ns) for p in checkpoints.offered() if p.is_file()]
    rows = [r for r in rows if r is not None]
    fitted = detectors.baselines()
    rows += [{**session.model_summary(b), "file": "(this session, not saved)"} for b in fitted]
    if rows:
        st.markdown("**Models and their held-out metrics** (at each model's own stored threshold)")
        table = pd.DataFrame(rows)
        # the interval beside its value, and numbers as text: a static table wraps long names and fits the page
        table["AUROC"] = [("—" if a is None or a != a else f"{a:.4f} {ci}") for a, ci in
                          zip(table["AUROC"], table.pop("AUROC 95% CI"), strict=True)]
        for key, fmt in (("AP", "{:.4f}"), ("balanced accuracy", "{:.4f}"), ("threshold", "{:.4g}")):
            table[key] = ["—" if v is None or v != v else fmt.format(v) for v in table[key]]
        page.table(table.set_index("name"), text_columns=("detector", "threshold rule", "split", "file"))
    if fitted and st.button("Save the baselines", key="save_baselines", icon=":material/save:",
                            help="to this workspace's models; share one to make it visible to everyone"):
        saved = []
        for b in fitted:
            name = session.safe_name(f"{b.ckpt.kind}_{b.name}_{state.active_data().fingerprint[:8]}")
            path = checkpoints.model_dir() / f"{name}.pt"
            try:
                save_checkpoint(b.ckpt, path, exclusive=True)
            except FileExistsError:
                pass  # the same baseline of the same data, saved before (by this session or another)
            saved.append(path.name)
        state.notify(f"Saved {', '.join(saved)}.")
        st.rerun()


def activate(load) -> None:
    """Load a model with `load()` and make it active, or say why not; the previous model stays otherwise."""
    try:
        model = load()
        state.set_model(model)
    except CheckpointError as exc:
        st.error(plain(exc), icon=":material/error:")
        return
    state.notify(f"Model '{model.name}' is active; the threshold is now its own ({model.card.threshold:.4g}).")
    st.rerun()


model = page.start("Model")
with st.container(border=True):
    if model is None:
        st.info("No model is loaded yet.", icon=":material/info:")
    else:
        ckpt = model.ckpt
        st.markdown(f"**Active model: {plain(model.name)}** ({model.source})")
        cols = st.columns(4)
        cols[0].metric("Detector", ckpt.detector.short_name,
                       help=plain(ckpt.description), border=True)
        cols[1].metric("Beat length", ckpt.seq_len, border=True)
        cols[2].metric("Split", ckpt.split.mode, help=plain(ckpt.split.describe()), border=True)
        cols[3].metric("Stored threshold", f"{ckpt.threshold:.4g}", help=plain(ckpt.threshold_rule), border=True)
        held_out = ckpt.metrics or {}
        stored = flagged.stored_counts(held_out)
        if stored is not None:
            # the explorer's count at the stored threshold, on the data the model was trained on
            st.markdown(f"**At its stored threshold, {stored[0]:,} of its {stored[1]:,} held-out beats are flagged as "
                        "abnormal.**")
        st.caption(f"{plain(glossary.score_definition(ckpt))} Split: {plain(ckpt.split.describe())}.")
        if held_out.get("auroc") is not None:
            st.caption(
                f"On its held-out beats: ROC AUC {held_out['auroc']:.4f}, normal beats passed "
                f"{explore.percent(held_out.get('normal_recall'))}, anomalies caught "
                f"{explore.percent(held_out.get('anomaly_recall'))} at the stored threshold."
            )
        quality = caches.model_quality(model)
        page.warn_if_degenerate(quality)
        tc = ckpt.train_config
        if tc.get("ended_by") == "user":
            st.caption(f"Stopped early by the user at epoch {len(ckpt.history)}; this is the best model up to then "
                       f"(epoch {tc.get('best_epoch')}).")
        if tc.get("still_improving"):
            why = "its epoch cap" if tc.get("ended_by") == "epoch cap" else "its time budget"
            st.warning(f"Validation loss was still falling when training reached {why} ({len(ckpt.history)} "
                       "epochs): it would probably improve with more training.", icon=":material/trending_down:")
        wants_more = (tc.get("still_improving") or tc.get("ended_by") == "user"
                      or (quality is not None and quality.degenerate))
        if wants_more and ckpt.train_state and session.same_data(model, state.active_data()):
            running_now = (st.session_state.get(state.JOB) is not None
                           and not st.session_state[state.JOB].state().finished)
            if st.button("Continue training", icon=":material/fast_forward:", key="resume_start",
                         disabled=running_now, help="from where it stopped: its weights, optimizer state and "
                                                    "split; the rest of its schedule if it was cut short, "
                                                    "else a new cycle as long as the last"):
                try:
                    sync.start_job(training.start_resume(model, state.active_data(),
                                                         directory=checkpoints.model_dir()))
                except ValueError as exc:
                    st.error(plain(exc), icon=":material/error:")
                else:
                    sync.remember_form(tab=TRAIN_TAB)
                    st.session_state["model_tab"] = TRAIN_TAB
                    st.rerun()
        checkpoints.data_provenance(model)
        if ckpt.history:
            with st.expander("Training history"):
                best = ckpt.train_config.get("best_epoch")
                st.plotly_chart(figures.loss_curves(list(ckpt.history), best), config=PLOT_CONFIG,
                                key="active_history")

# the open tab is kept (in the workspace) across page changes and reloads; a running job opens the training tab
job = st.session_state.get(state.JOB)
running = job is not None and not job.state().finished
if "model_tab" not in st.session_state:
    st.session_state["model_tab"] = TRAIN_TAB if running else sync.form_value("tab", LOAD_TAB)
load_tab, train_tab = st.tabs([LOAD_TAB, TRAIN_TAB], key="model_tab",
                              on_change=lambda: sync.remember_form(tab=st.session_state["model_tab"]))

with load_tab:
    choices = checkpoints.offered()
    if choices:
        left, right = st.columns([3, 1], vertical_alignment="bottom")
        chosen = left.selectbox("Saved checkpoints", [str(p) for p in choices],
                                format_func=lambda p: p.rsplit("/", 1)[-1], key="ckpt_choice")
        if right.button("Load", icon=":material/upload_file:", key="ckpt_load"):
            source = "shipped" if chosen == str(config.default_checkpoint_path()) else "saved"
            activate(lambda: session.model_from_path(chosen, source=source))
    else:
        st.caption("No checkpoint files found.")
    models_table()
    own = sync.workspace_of_session().model_files() if sync.workspace_of_session() is not None else []
    if own:
        left, right = st.columns([3, 1], vertical_alignment="bottom")
        shared = left.selectbox("Share a model of this workspace", [str(p) for p in own], key="share_choice",
                                format_func=lambda p: p.rsplit("/", 1)[-1],
                                help="copies it to checkpoints/, where every visitor of this server can load it")
        if right.button("Share", icon=":material/share:", key="share_model"):
            try:
                target = sync.workspace_of_session().share(shared, config.checkpoint_dir())
            except (ValueError, OSError) as exc:
                st.error(plain(exc), icon=":material/error:")
            else:
                state.notify(f"Shared {target.name}: every visitor can load it now.")
                st.rerun()
    upload = st.file_uploader("Or upload a checkpoint (.pt)", type=["pt"], key="ckpt_upload")
    if upload is not None and upload.file_id != st.session_state.get("ckpt_upload_id"):
        st.session_state["ckpt_upload_id"] = upload.file_id  # one attempt per uploaded file
        activate(lambda: session.model_from_bytes(upload.getvalue(), upload.name))

data = state.active_data()

with train_tab:
    st.caption(f"Trains on the normal beats of **{plain(data.name)}** (normal: {plain(state.normal_names(data))}); "
               "15% of them are held back for early stopping and for honest metrics.")
    d = training.TrainSettings()
    kept = sync.form_value
    with st.form("train_form", border=False):
        name = st.text_input("Save as", value=kept("name", "my_model"),
                             help="file name in this workspace's models, letters/digits/_/-; an existing name, or "
                                  "one another training is using, is refused")
        c1, c2, c3, c4, c5 = st.columns(5)
        embedding = c1.number_input("Embedding size", 1, 512, kept("embedding_dim", d.embedding_dim),
                                    help="size of the bottleneck vector")
        chunk = c2.number_input("Samples per step", 1, 64, kept("chunk", d.chunk),
                                help="samples the LSTMs read and write per step: 10 is ~10x faster than 1, "
                                     "with the same held-out AUROC on ECG5000")
        epochs = c3.number_input("Epochs (at most)", 1, 5000, kept("epochs", d.epochs), placeholder="auto",
                                 help="a safety cap: early stopping usually ends the run first. Empty: scaled to "
                                      "the data (40 on ECG5000, more on small sets)")
        batch = c4.number_input("Batch size", 1, 4096, kept("batch_size", d.batch_size))
        lr = c5.number_input("Learning rate", 1e-5, 1.0, kept("lr", d.lr), format="%.4f", step=1e-4)
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
        c1, c2, c3, c4, c5, c6 = st.columns(6)
        losses = ["l1", "mse"]
        loss = c1.selectbox("Loss", losses, index=losses.index(kept("loss", d.loss)) if kept("loss", d.loss) in losses
                            else 0, help="l1: absolute error summed over the beat; mse: mean squared")
        seed = c2.number_input("Seed", 0, 2**31 - 1, kept("seed", d.seed))
        devices = config.available_devices()
        device = c3.selectbox("Device", devices, index=devices.index(kept("device", d.device))
                              if kept("device", d.device) in devices else 0)
        patience = c4.number_input("Patience (epochs)", 1, 1000, kept("patience", d.patience), placeholder="auto",
                                   help="stop after this many epochs without a better validation loss; "
                                        "empty: a tenth of the cap, at least 10")
        minutes = c5.number_input("Time budget (min)", 0.1, 24 * 60.0, kept("max_minutes", d.max_minutes),
                                  placeholder="none", help="stop after the epoch that passes it; empty: no limit")
        percentile = c6.number_input("Threshold percentile", 50.0, 100.0, kept("percentile", DEFAULT_PERCENTILE),
                                     step=0.5, help="the stored threshold passes this share of the training normals")
        submitted = st.form_submit_button("Start training", icon=":material/play_arrow:", disabled=running,
                                          type="primary")
    if submitted:
        settings = training.TrainSettings(embedding_dim=embedding, chunk=chunk, epochs=epochs, batch_size=batch, lr=lr,
                                         loss=loss, seed=seed, device=device, patience=patience, max_minutes=minutes,
                                         percentile=percentile, split_mode=split_mode if len(sources) >= 2 else "seed",
                                         train_file=train_file or "", test_file=test_file or "")
        sync.remember_form(name=name, **{k: getattr(settings, k) for k in training.TrainSettings.__dataclass_fields__
                                          if k not in ("train_file", "test_file", "split_mode")})
        try:
            new_job = training.start_training(data, st.session_state.get(state.NORMALS) or [], name.strip(),
                                             settings, directory=checkpoints.model_dir())
        except ValueError as exc:
            st.error(plain(exc), icon=":material/error:")
        else:
            sync.start_job(new_job)
            st.rerun()


@st.fragment(run_every=1.0)
@shows_errors
def progress() -> None:
    """Live view of the background job; polls its state every second while it runs."""
    job = st.session_state.get(state.JOB)
    s = job.state()
    if s.finished:
        # hand over to a full run, which adopts the model and shows the outcome
        st.rerun(scope="app")
    est, shown = training_progress.estimate(job, s)
    text = f"{est.text()} · {format_seconds(s.elapsed_s)} elapsed"
    if job.keep_requested:
        text = "Stopping; scoring and saving the best model so far…"
    elif job.cancel_requested:
        text = "Cancelling…"
    elif s.status == "finishing" or s.epoch >= s.epochs:
        text = "Scoring held-out beats and saving the checkpoint…"
    st.markdown(f"**Training {plain(job.label)}**")
    st.progress(shown, text=text)
    with st.container(horizontal=True):
        st.button("Stop and keep the best", on_click=job.stop_and_keep, disabled=job.cancel_requested,
                  icon=":material/save:", key="train_keep",
                  help="stop now; the best model so far is saved, activated and marked as stopped early by you")
        st.button("Cancel and discard", on_click=job.cancel, disabled=job.cancel_requested, icon=":material/stop:",
                  key="train_cancel", help="stop now and save nothing")
    if s.history:
        st.plotly_chart(figures.loss_curves(list(s.history), s.best_epoch), config=PLOT_CONFIG, key="live_history")


def _renamed(job, result) -> str:
    """Why the model has another file name than the one asked for (a file appeared under it meanwhile)."""
    held = getattr(job, "reservation", None)
    if held is None or result is None or result.path is None or result.path == held.path:
        return ""
    return f" ({held.path.name} was written by something else while this trained)"


if job is not None:
    with train_tab:
        s = job.state()
        if not s.finished:
            progress()
        elif s.status == DONE:
            result = job.result
            how = "stopped early by you, best model kept" if s.kept else "finished"
            ended = (result.ckpt.train_config.get("ended_by") if result else None) or "the epoch cap"
            st.success(f"Training {how} after {s.epoch} epochs in {format_seconds(s.elapsed_s)} (ended by "
                       f"{'you' if s.kept else ended}); saved as "
                       f"{result.path.name if result and result.path else 'a checkpoint'}{_renamed(job, result)}.",
                       icon=":material/check_circle:")
            st.plotly_chart(figures.loss_curves(list(s.history), s.best_epoch), config=PLOT_CONFIG,
                            key="job_history")
        elif s.status == CANCELLED:
            st.warning(f"Training {plain(job.label)} was cancelled after {s.epoch} epochs; nothing was saved.",
                       icon=":material/stop:")
        elif s.status == ERROR:
            st.error(f"Training {plain(job.label)} failed: {plain(s.message)}", icon=":material/error:")
