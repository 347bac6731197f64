"""Beat packs and the server's data folder: what goes in comes back, and nothing else gets in."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from ecgviz.cli.main import main
from ecgviz.dashboard import config, session
from ecgviz.io.data import DataError, load_files, load_uploads
from ecgviz.io.pack import FORMAT, write_pack
from tests.helpers import synthetic_beats, write_arff


@pytest.fixture
def beats():
    return synthetic_beats(n_normal=30, n_anomaly=10, length=24)


def test_a_pack_reads_back_exactly_from_a_path_and_from_bytes(beats, tmp_path):
    X, labels = beats
    path = write_pack(tmp_path / "b.npz", X, labels)
    for data in (load_files([path]), load_uploads([("b.npz", path.read_bytes())])):
        np.testing.assert_array_equal(data.X, X)
        assert data.labels.tolist() == labels.tolist()
        assert data.rows.tolist() == list(range(1, 41)) and set(data.sources) == {"b.npz"}
    unlabelled = load_files([write_pack(tmp_path / "u.npz", X)])
    assert unlabelled.labels is None and unlabelled.n_beats == 40


def test_cli_pack_equals_the_text_files(beats, tmp_path, capsys):
    X, labels = beats
    src = write_arff(tmp_path / "a.arff", X, labels)
    assert main(["pack", "--data", str(src), "--out", str(tmp_path / "a.npz")]) == 0
    assert "packed 40 beats of 24 samples" in capsys.readouterr().out
    packed, text = load_files([tmp_path / "a.npz"]), load_files([src])
    np.testing.assert_array_equal(packed.X, text.X)
    assert packed.labels.tolist() == text.labels.tolist()


def _npz(**members) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **members)
    return buf.getvalue()


@pytest.mark.parametrize(("members", "message"), [
    ({"X": np.zeros((2, 24), np.float32)}, "not an ecgviz beat pack"),
    ({"format": np.array(FORMAT), "X": np.zeros((2, 24), np.float64)}, "X must be float32"),
    ({"format": np.array(FORMAT), "X": np.full((2, 24), np.nan, np.float32)}, "beat 1: a sample is NaN"),
    ({"format": np.array(FORMAT), "X": np.zeros((2, 24), np.float32), "label_codes": np.array([0, 5], np.int32),
      "label_names": np.array(["a"])}, "beat 2: label code out of range"),
    ({"format": np.array(FORMAT), "X": np.zeros((2, 24), np.float32), "label_codes": np.array([0, 0], np.int32),
      "label_names": np.array(["x" * 500])}, r"label_names\[0\]: a label of 500 characters.*at most 100"),
    ({"format": np.array(FORMAT), "X": np.array([None, 1], dtype=object)}, "cannot read the beat pack"),
])
def test_bad_packs_are_refused_by_name(members, message):
    with pytest.raises(DataError, match=message) as info:
        load_uploads([("bad.npz", _npz(**members))])
    assert str(info.value).startswith("bad.npz")


def test_a_compressed_pack_is_refused_before_it_is_unpacked():
    buf = io.BytesIO()
    np.savez_compressed(buf, format=np.array(FORMAT), X=np.zeros((20_000, 140), np.float32))
    assert len(buf.getvalue()) < 100_000  # 11 MB of beats in a few kB: the shape of a zip bomb
    with pytest.raises(DataError, match="compressed"):
        load_uploads([("bomb.npz", buf.getvalue())])
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in z.infolist())


def test_the_data_folder_lists_only_its_own_data_files(tmp_path, monkeypatch, beats):
    folder, outside = tmp_path / "served", tmp_path / "private"
    folder.mkdir(), outside.mkdir()
    write_pack(folder / "big.npz", *beats)
    write_arff(outside / "secret.arff", *beats)
    (folder / "notes.md").write_text("x")
    (folder / "leak.arff").symlink_to(outside / "secret.arff")
    monkeypatch.setenv(config.DATA_DIR_ENV, str(folder))
    assert config.folder_files() == ["big.npz"]
    assert session.data_from_folder("big.npz").data.n_beats == 40
    for name in ("leak.arff", "../private/secret.arff", "notes.md"):
        with pytest.raises(DataError, match="not a data file in the server's data folder"):
            session.data_from_folder(name)
    monkeypatch.setenv(config.DATA_DIR_ENV, str(tmp_path / "missing"))
    assert config.folder_files() == []


def test_the_beat_viewer_reconstructs_on_demand_what_scoring_all_gives(tiny_ckpt, tiny_data):
    model = session.ActiveModel(ckpt=tiny_ckpt, id="t", name="tiny", source="trained")
    data = session.make_data(tiny_data, "tiny")
    recon = tiny_ckpt.detector.reconstruct(tiny_data.X)
    for i in (0, 17, tiny_data.n_beats - 1):
        np.testing.assert_allclose(session.reconstruction(model, data, i), recon[i], rtol=1e-4, atol=1e-5)


def test_the_data_page_loads_from_the_folder(tmp_path, monkeypatch, beats):
    folder = tmp_path / "served"
    folder.mkdir()
    write_pack(folder / "big.npz", *beats)
    monkeypatch.setenv(config.DATA_DIR_ENV, str(folder))
    monkeypatch.setenv(config.CHECKPOINT_DIR_ENV, str(tmp_path))
    at = AppTest.from_file("../app.py", default_timeout=120).run()
    at.switch_page("pages/data.py").run()
    assert at.selectbox(key="folder_file").options == ["big.npz"]
    at.button(key="folder_load").click().run()
    assert not at.exception
    assert at.session_state["active_data"].name == "big.npz"
    assert at.session_state["active_data"].data.n_beats == 40
