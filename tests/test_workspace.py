"""Server-side workspaces: found again by id, restored by a new server process, expired when idle, bounded."""

import os

import numpy as np

from ecgviz.checkpoint.store import save_checkpoint
from ecgviz.dashboard import session, workspace, workspace_files
from ecgviz.dashboard.workspace import WorkspaceStore
from tests.helpers import synthetic_beats, write_arff


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


def upload(tmp_path, name="mine.arff", n=30, seed=0):
    X, labels = synthetic_beats(n_normal=n - 10, n_anomaly=10, length=24, seed=seed)
    path = write_arff(tmp_path / name, X, labels)
    return [(name, path.read_bytes())]


def test_a_workspace_is_found_by_its_id_and_only_by_it(tmp_path):
    store = WorkspaceStore(tmp_path / "ws")
    a, b = store.new(), store.new()
    assert a.id != b.id and len(a.id) >= 24
    assert store.get(a.id) is a and store.get(b.id) is b
    for bad in (None, "", "nope", "../" + a.id, a.id + "/x"):
        assert store.get(bad) is None


def test_uploads_model_threshold_and_form_survive_a_new_server_process(tmp_path, tiny_ckpt):
    files = upload(tmp_path)
    data = session.data_from_uploads(files)
    ckpt_path = save_checkpoint(tiny_ckpt, tmp_path / "tiny.pt")
    store = WorkspaceStore(tmp_path / "ws")
    ws = store.new()
    ws.set_data(data, files)
    ws.set_model(session.model_from_path(ckpt_path))
    ws.update(threshold=1.25, normals=["1"], form={"tab": "train", "epochs": 80})
    uploaded = session.model_from_bytes(ckpt_path.read_bytes(), "up.pt")

    again = WorkspaceStore(tmp_path / "ws").get(ws.id)  # another process: nothing in memory
    assert again is not ws and again.revision > 0  # a session reads it instead of overwriting it
    assert again.data.fingerprint == data.fingerprint and again.data.name == "mine.arff"
    assert np.array_equal(again.data.data.X, data.data.X)
    assert again.model.path == ckpt_path and again.threshold == 1.25 and again.normals == ["1"]
    assert again.form == {"tab": "train", "epochs": 80}
    ws.set_model(uploaded)  # an uploaded checkpoint exists nowhere else: its bytes are kept
    assert WorkspaceStore(tmp_path / "ws").get(ws.id).model.id == uploaded.id


def test_idle_workspaces_expire_and_busy_ones_stay(tmp_path):
    clock = Clock()
    store = WorkspaceStore(tmp_path / "ws", idle_s=3600, clock=clock)
    old, busy = store.new(), store.new()

    class Running:
        def state(self):
            return type("S", (), {"finished": False})()

    busy.job = Running()
    clock.now += 3601
    fresh = store.new()  # a visit sweeps nothing: the janitor does, off the page's run
    assert (tmp_path / "ws" / old.id).exists()
    assert store.sweep_if_due() == [old.id] and store.sweep_if_due() == []  # at most every SWEEP_EVERY_S
    assert store.get(old.id) is None and not (tmp_path / "ws" / old.id).exists()
    assert store.get(busy.id) is busy and store.get(fresh.id) is fresh


def test_disk_use_is_bounded_per_workspace_and_in_all(tmp_path):
    files = upload(tmp_path, n=60)
    size = len(files[0][1])
    store = WorkspaceStore(tmp_path / "ws", max_bytes_each=size // 2, max_bytes_total=10 * size)
    ws = store.new()
    ws.set_data(session.data_from_uploads(files), files)
    assert ws.data is not None and ws.data_files(ws.data.fingerprint) is None  # active, not kept
    assert "is loaded, but not kept on disk: a workspace keeps at most" in ws.note and ws.disk_bytes() < size

    clock = Clock()
    store = WorkspaceStore(tmp_path / "ws2", max_bytes_each=10 * size, max_bytes_total=int(2.5 * size), clock=clock)
    made = []
    for i in range(4):
        clock.now += 10
        w = store.new()
        w.touch(clock.now)
        files_i = upload(tmp_path, f"f{i}.arff", n=60)
        w.set_data(session.data_from_uploads(files_i), files_i)
        w.last_used = clock.now
        made.append(w)
    store.sweep()
    kept = [w.id for w in made if (tmp_path / "ws2" / w.id).exists()]
    assert kept == [w.id for w in made[-2:]]  # the least recently used went first
    assert sum(workspace_files.du(tmp_path / "ws2" / k) for k in kept) <= 2.5 * size


def test_data_offers_name_the_builtin_set_and_kept_uploads(tmp_path):
    store = WorkspaceStore(tmp_path / "ws")
    ws = store.new()
    files = upload(tmp_path)
    data = session.data_from_uploads(files)
    ws.set_data(data, files)
    builtin = session.builtin_data()
    assert [label for label, _ in workspace.data_offers(ws, builtin.fingerprint)] == [session.BUILTIN_NAME]
    offers = workspace.data_offers(ws, data.fingerprint)
    assert [label for label, _ in offers] == ["mine.arff (kept in this workspace)"]
    loaded, raw = offers[0][1]()
    assert loaded.fingerprint == data.fingerprint and raw == files
    assert workspace.data_offers(store.new(), data.fingerprint) == []  # another workspace's files are not offered


def test_only_one_tab_adopts_a_finished_job(tmp_path):
    ws = WorkspaceStore(tmp_path / "ws").new()
    ws.update(job=object(), job_adopted=False)
    assert ws.adopt_job() and not ws.adopt_job()


def test_a_new_upload_makes_room_by_forgetting_the_oldest_kept_one(tmp_path):
    sets = [upload(tmp_path, f"s{i}.arff", n=40, seed=i) for i in range(3)]
    size = len(sets[0][0][1])
    ws = WorkspaceStore(tmp_path / "ws", max_bytes_each=int(2.5 * size)).new()
    datas = [session.data_from_uploads(f) for f in sets]
    for i, (d, f) in enumerate(zip(datas, sets, strict=True)):
        ws.set_data(d, f)
        os.utime(ws.dir / "data" / d.fingerprint[:32], (1000 + i, 1000 + i))
    kept = ws.kept_data()
    assert sorted(kept.values()) == [["s1.arff"], ["s2.arff"]] and not ws.note
    assert ws.disk_bytes() <= 2.5 * size
