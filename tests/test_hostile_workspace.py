"""Hostile use of workspaces and training slots: one visitor must not fill the disk, delete others' open work or
hold every training slot; uploads are private; a write killed half-way leaves nothing that counts."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from ecgviz.checkpoint.store import save_checkpoint
from ecgviz.dashboard import jobs, session, training, workspace_files
from ecgviz.dashboard.jobs import JobRefused, JobSlots, TrainingJob
from ecgviz.dashboard.workspace import WorkspaceStore
from ecgviz.errors import NameInUse, UserError
from tests.helpers import synthetic_beats, write_arff


def upload(tmp_path: Path, name: str, seed: int = 0) -> list[tuple[str, bytes]]:
    X, labels = synthetic_beats(n_normal=40, n_anomaly=10, length=24, seed=seed)
    return [(name, write_arff(tmp_path / name, X, labels).read_bytes())]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_total_cap_holds_at_every_write_and_open_workspaces_are_never_deleted(tmp_path):
    files = [upload(tmp_path, f"u{i}.arff", seed=i) for i in range(6)]
    size = len(files[0][0][1])
    cap = int(3.5 * size)
    store = WorkspaceStore(tmp_path / "ws", max_bytes_each=10 * size, max_bytes_total=cap)
    made = []
    for i, f in enumerate(files):  # one visitor opens six tabs; each tab's page is live and uploads a file
        ws = store.new()
        store.attach(ws, f"tab-{i}")
        ws.set_data(session.data_from_uploads(f), f)
        made.append(ws)
        assert workspace_files.du(store.root) <= cap  # at every write, not at the next sweep
    assert all(ws.dir.is_dir() for ws in made)  # nothing open was deleted to make room
    kept = [ws for ws in made if ws.data_files(ws.data.fingerprint)]
    assert kept == made[:3]
    refused = made[3]
    assert refused.data is not None  # loaded for its page, only not kept
    assert refused.note.startswith("u3.arff is loaded, but not kept on disk: the server's workspaces hold ")
    assert "all of it in use by open pages" in refused.note
    store.sweep()
    assert all(ws.dir.is_dir() for ws in made)


def test_room_is_made_by_evicting_workspaces_no_open_page_uses_least_recently_used_first(tmp_path):
    files = [upload(tmp_path, f"u{i}.arff", seed=i) for i in range(4)]
    size = len(files[0][0][1])
    store = WorkspaceStore(tmp_path / "ws", max_bytes_each=10 * size, max_bytes_total=int(2.5 * size))
    idle, live = store.new(), store.new()
    store.attach(live, "tab-live")
    for ws, f, used in ((idle, files[0], 2000.0), (live, files[1], 1000.0)):
        ws.set_data(session.data_from_uploads(f), f)
        ws.last_used = used  # the live one was used longer ago: being open is what protects it
    writer = store.new()
    store.attach(writer, "tab-writer")
    writer.set_data(session.data_from_uploads(files[2]), files[2])
    assert writer.data_files(writer.data.fingerprint) and not writer.note
    assert not idle.dir.exists() and live.dir.is_dir()
    last = store.new()
    store.attach(last, "tab-last")
    last.set_data(session.data_from_uploads(files[3]), files[3])  # only open workspaces are left: not kept
    assert last.data_files(last.data.fingerprint) is None and "in use by open pages" in last.note
    assert live.dir.is_dir() and writer.dir.is_dir() and workspace_files.du(store.root) <= 2.5 * size


def test_an_idle_workspace_that_a_live_page_still_shows_is_not_expired(tmp_path):
    class Clock:
        now = 1_000_000.0

        def __call__(self):
            return self.now

    clock = Clock()
    store = WorkspaceStore(tmp_path / "ws", idle_s=3600, clock=clock)
    shown, closed = store.new(), store.new()
    store.attach(shown, "tab-open")
    clock.now += 7200
    store.sweep()
    assert shown.dir.is_dir() and not closed.dir.exists()


def test_uploads_and_records_are_private(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    os.chmod(root, 0o755)  # as an earlier version made it
    store = WorkspaceStore(root)
    ws = store.new()
    files = upload(tmp_path, "mine.arff")
    ws.set_data(session.data_from_uploads(files), files)
    assert mode(root) == 0o700 and mode(ws.dir) == 0o700  # were 0755: any local user could list and read
    kept = next((ws.dir / "data").glob("*"))
    assert mode(ws.dir / "data") == 0o700 and mode(kept) == 0o700
    assert {mode(p) for p in kept.iterdir()} == {0o600} and mode(ws.dir / "state.json") == 0o600  # were 0644
    assert mode(ws.model_dir()) == 0o700


def test_a_workspace_root_that_is_a_link_is_refused(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "ws").symlink_to(target)
    with pytest.raises(UserError, match="is not a folder; set ECGVIZ_WORKSPACE_DIR"):
        WorkspaceStore(tmp_path / "ws")


def test_what_a_killed_write_leaves_is_neither_counted_nor_kept(tmp_path, monkeypatch):
    store = WorkspaceStore(tmp_path / "ws")
    ws = store.new()
    files = upload(tmp_path, "mine.arff")
    held = ws.disk_bytes()

    def killed(*args):
        raise KeyboardInterrupt  # the process stops between writing the files and renaming their folder

    monkeypatch.setattr(workspace_files.os, "rename", killed)
    with pytest.raises(KeyboardInterrupt):
        workspace_files.write_folder(ws.dir / "data" / "abc", [("00", files[0][1]), ("order.json", b'["x"]')])
    monkeypatch.undo()
    assert not (ws.dir / "data" / "abc").exists() and ws.kept_data() == {}
    # a kill past any clean-up (SIGKILL) leaves temporaries: they are not counted, and go once they are old
    orphan = ws.dir / "data" / ".abc.0badf00d.tmp"
    orphan.mkdir()
    (orphan / "00").write_bytes(files[0][1])
    loose = ws.dir / ".state.json.0badf00d.tmp"
    loose.write_bytes(files[0][1])
    assert ws.disk_bytes() == held  # they counted against the workspace's cap until it expired
    assert workspace_files.clean_orphans(store.root) == 0  # recent: a write may still be going on
    old = os.path.getmtime(orphan) - workspace_files.ORPHAN_AGE_S - 1
    for p in (orphan, loose):
        os.utime(p, (old, old))
    store.sweep()
    assert not orphan.exists() and not loose.exists()


def test_models_have_a_workspace_area_and_sharing_is_explicit(tmp_path, tiny_ckpt):
    store = WorkspaceStore(tmp_path / "ws")
    ws, other = store.new(), store.new()
    shared = tmp_path / "checkpoints"
    mine = save_checkpoint(tiny_ckpt, ws.model_dir() / "mine.pt")
    assert ws.model_files() == [mine] and other.model_files() == [] and not shared.exists()
    assert ws.model_dir().parent == ws.dir  # goes with the workspace: deleted when it expires
    copy = ws.share(mine, shared)
    assert copy == shared / "mine.pt" and copy.read_bytes() == mine.read_bytes()
    with pytest.raises(NameInUse, match=r"mine\.pt exists in .* already; rename the model before sharing it"):
        ws.share(mine, shared)  # never replaces what another visitor shared
    theirs = save_checkpoint(tiny_ckpt, other.model_dir() / "theirs.pt")
    for path in (theirs, ws.model_dir() / ".." / "state.json", tmp_path / "nowhere.pt"):
        with pytest.raises(UserError, match="is not a model of this workspace"):
            ws.share(path, shared)
    assert sorted(p.name for p in shared.iterdir()) == ["mine.pt"]


# -- training slots --------------------------------------------------------------------------------------------------
def waiting_job(release: threading.Event) -> TrainingJob:
    def run(on_epoch, stop):
        while not stop.is_set() and not release.is_set():
            stop.wait(0.01)
        return "trained"

    return TrainingJob(run, epochs=5, label="waiting: a fake loop")


@pytest.fixture
def release():
    gate = threading.Event()
    yield gate
    gate.set()


def test_one_visitor_with_two_tabs_holds_at_most_half_the_slots(release):
    slots = JobSlots(max_total=2)
    assert slots.max_per_client == 1
    first = slots.start("ws-tab-1", waiting_job(release), client="203.0.113.7")
    with pytest.raises(JobRefused, match=r"your other tabs already train 1 model, as many as one visitor may "
                                         r"\(ECGVIZ_MAX_TRAINING_JOBS_PER_CLIENT=1\)"):
        slots.start("ws-tab-2", waiting_job(release), client="203.0.113.7")  # took both slots before
    other = slots.start("ws-else", waiting_job(release), client="198.51.100.2")
    assert slots.running() == [first, other]
    for job in (first, other):
        job.cancel()
        assert job.join(10)


def test_the_per_client_cap_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(jobs.PER_CLIENT_ENV, "3")
    assert JobSlots(max_total=8).max_per_client == 3
    monkeypatch.setenv(jobs.PER_CLIENT_ENV, "nonsense")
    assert JobSlots(max_total=8).max_per_client == 4 and JobSlots(max_total=1).max_per_client == 1


def test_dashboard_training_gets_a_time_budget_by_default(monkeypatch, tmp_path, tiny_data):
    assert jobs.time_budget_s() == 60 * 60 and jobs.time_budget_s(5) == 5 * 60
    assert jobs.time_budget_s(10_000) == 60 * 60  # at most the server's
    monkeypatch.setenv(jobs.BUDGET_ENV, "2")
    assert jobs.time_budget_s() == 120 and jobs.time_budget_s(1) == 60
    for bad in ("0", "-1", "inf", "nan", "x"):
        monkeypatch.setenv(jobs.BUDGET_ENV, bad)
        assert jobs.time_budget_s() == jobs.DEFAULT_BUDGET_MIN * 60
    monkeypatch.delenv(jobs.BUDGET_ENV)
    seen = {}

    def fit_fn(data, normals, model_config, train_config, **kwargs):
        seen["max_seconds"] = train_config.max_seconds
        raise RuntimeError("enough")

    data = session.make_data(tiny_data, "tiny")
    job = training.start_training(data, ["1"], "budgeted", training.TrainSettings(device="cpu"), directory=tmp_path,
                                 fit_fn=fit_fn).start()
    assert job.join(30)
    assert seen["max_seconds"] == 60 * 60  # none asked for: the server's (there was none: up to 2,000 epochs)
