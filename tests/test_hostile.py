"""Hostile input and safety: every odd file and checkpoint has one outcome, the same in the library, CLI and app.

Each case is generated here. A file either fails with a DataError that names the problem and where it is
(the CLI prints exactly that message as one stderr line and exits 2; the Data page shows it with st.error and
keeps the previous data), or it loads, and then its warnings are printed by the CLI and shown on the page.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import io
import json
import os
import pickle
import shlex
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import streamlit as st
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from ecgviz.checkpoint.store import CheckpointError, load_checkpoint, save_checkpoint, to_dict
from ecgviz.cli.main import main
from ecgviz.dashboard import config, session
from ecgviz.dashboard.text import plain
from ecgviz.io.data import DataError, load_files, load_uploads
from ecgviz.pipeline.protocol import score_beats

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
TIMEOUT = 120
T = 24  # the tiny model's beat length, so every file that loads is scored by the CLI and the app too
LONG_T = 1600
HEAD = T + 3  # @relation, T samples, target, @data: data row r is on line HEAD + r
BIG = "big_100mb"
BIG_BYTES = 100 * 2**20 + 1


class Case(NamedTuple):
    id: str
    name: str  # file name
    outcome: str  # "error", "warn" or "ok"
    message: str  # the error message, or a text that one of the warnings contains
    content: bytes


def cells(n: int, t: int = T, seed: int = 0) -> list[list[str]]:
    """n beats of t samples (a noisy sine) as text cells, each row ending with a label 1 or 2."""
    rng = np.random.default_rng(seed)
    X = (np.sin(np.linspace(0, 2 * np.pi, t))[None] + 0.1 * rng.standard_normal((n, t))).astype(np.float32)
    return [[repr(float(v)) for v in row] + [str(1 + i % 2)] for i, row in enumerate(X)]


def arff(rows: list[list[str]] | list[str], *, t: int = T, attrs: list[str] | None = None,
         eol: str = "\n", before: str = "", data: bool = True, encoding: str = "utf-8") -> bytes:
    """ARFF bytes: @relation, t numeric attributes and a nominal target {1,2} (or `attrs`), @data, rows."""
    attrs = attrs if attrs is not None else [f"att{i + 1} numeric" for i in range(t)] + ["target {1,2}"]
    lines = ["@relation hostile", *(f"@attribute {a}" for a in attrs), *(["@data"] if data else [])]
    lines += [r if isinstance(r, str) else ",".join(r) for r in rows]
    return (before + eol.join(lines) + eol).encode(encoding)


def edited(n: int, row: int, col: int, value: str | None) -> list[list[str]]:
    """cells(n) with row/col (1-based; col T + 1 is the label) set to value, or dropped when value is None."""
    rows = cells(n)
    if value is None:
        del rows[row - 1][col - 1]
    else:
        rows[row - 1][col - 1] = value
    return rows


def _constant() -> list[list[str]]:
    rows = cells(4)
    rows[0][:T] = ["0.5"] * T
    rows[2][:T] = ["-1"] * T
    return rows


def _relational() -> bytes:
    return (b"@relation multi\n@attribute id {a,b}\n@attribute leads relational\n  @attribute v numeric\n"
            b"@end leads\n@attribute target {1,2}\n@data\na,'1\\n2\\n3',1\n")


ERROR, WARN, OK = "error", "warn", "ok"
CASES = [
    Case("empty", "empty.arff", ERROR, "empty.arff: the file is empty", b""),
    Case("no_data", "no_data.arff", ERROR, "no_data.arff: no @data line, so the file has no data section",
         arff([], data=False)),
    Case("no_rows", "no_rows.arff", ERROR, f"no_rows.arff: no data rows after @data (line {HEAD})", arff([])),
    Case("not_a_number", "nan_text.arff", ERROR,
         f"nan_text.arff, row 2 (line {HEAD + 2}), attribute att5: 'abc' is not a number",
         arff(edited(3, 2, 5, "abc"))),
    Case("missing_value", "missing.arff", ERROR,
         f"missing.arff, row 3 (line {HEAD + 3}), attribute att7: missing value '?' (beats must be complete: "
         "fill or remove the row)", arff(edited(3, 3, 7, "?"))),
    Case("short_row", "short.arff", ERROR,
         f"short.arff, row 2 (line {HEAD + 2}): {T} values, but {T + 1} columns are declared",
         arff(edited(3, 2, 3, None))),
    Case("undeclared_label", "label.arff", ERROR,
         f"label.arff, row 3 (line {HEAD + 3}), attribute target: label '7' is not one of the declared values {{1,2}}",
         arff(edited(3, 3, T + 1, "7"))),
    Case("string_and_date", "mixed.arff", WARN, "mixed.arff: ignored non-numeric attribute(s): id (string), "
         "taken (date)", arff([f"'patient, {i}',2024-03-0{i + 1}," + ",".join(r) for i, r in enumerate(cells(3))],
                              attrs=["id string", "taken date 'yyyy-MM-dd'"]
                              + [f"att{i + 1} numeric" for i in range(T)] + ["target {1,2}"])),
    Case("sparse", "sparse.arff", ERROR,
         f"sparse.arff, row 1 (line {HEAD + 1}): sparse ARFF rows ({{index value, ...}}) are not supported; "
         "save it dense", arff(["{0 0.5, 3 1.25, 24 1}"])),
    Case("binary_junk", "junk.arff", ERROR, "junk.arff: binary data, not an ARFF, CSV or TSV text file",
         np.random.default_rng(3).integers(0, 256, 8192, dtype=np.uint8).tobytes()),
    Case("csv_named_arff", "table.arff", WARN,
         "table.arff: no ARFF header; read as UCR-style text with the class label first",
         "".join(",".join([r[-1], *r[:-1]]) + "\n" for r in cells(3)).encode()),
    Case("nan", "nan.arff", ERROR, f"nan.arff, row 1 (line {HEAD + 1}), attribute att1: 'NaN' is not a finite number",
         arff(edited(2, 1, 1, "NaN"))),
    Case("inf", "inf.arff", ERROR, f"inf.arff, row 2 (line {HEAD + 2}), attribute att9: '-inf' is not a finite number",
         arff(edited(2, 2, 9, "-inf"))),
    Case("near_1e308", "huge.arff", ERROR,
         f"huge.arff, row 1 (line {HEAD + 1}), attribute att2: '1.7976931348623157e+308' is outside the float32 "
         "range (about ±3.4e38)", arff(edited(2, 1, 2, "1.7976931348623157e+308"))),
    Case("single_beat", "one.arff", OK, "", arff(cells(1))),
    Case("length_2", "two.arff", ERROR, "two.arff: only 2 numeric attribute(s); a beat needs at least 3 samples",
         arff([r[:2] + r[-1:] for r in cells(3)], t=2)),
    Case("latin1", "latin.arff", WARN, "latin.arff: not valid UTF-8 (first bad byte on line 1); read as Latin-1",
         arff(cells(3), before="% Ableitung II, Patient Müller, 25 °C\n", encoding="latin-1")),
    Case("windows_bom_comments", "windows.arff", OK, "",
         b"\xef\xbb\xbf" + arff([*cells(2)[:1], "% a comment between rows", "", *cells(2)[1:]],
                                before="% exported on Windows\r\n\r\n", eol="\r\n")),
    Case("duplicate_attribute", "dup.arff", ERROR,
         "dup.arff, line 3: duplicate attribute name: '@attribute att1 numeric'",
         arff(cells(2), attrs=["att1 numeric"] * 2 + [f"att{i + 3} numeric" for i in range(T - 2)] + ["target {1,2}"])),
    Case("relational", "multi.arff", ERROR,
         "multi.arff, line 3: relational (multi-instance) attribute leads is not supported; store one channel per file",
         _relational()),
    Case("constant_beats", "flat.arff", WARN, "flat.arff: 2 constant beat(s) (all samples equal), e.g. row 1, 3",
         arff(_constant())),
    Case("label_only", "labels.arff", ERROR,
         "labels.arff: no numeric sample attributes; a beat needs at least 3 samples",
         arff(["1", "2"], attrs=["target {1,2}"])),
    Case("long_series", "long.arff", OK, "", arff(cells(2, LONG_T), t=LONG_T)),
    Case(BIG, "big.arff", OK, "", b""),  # generated once, into tmp, by the `big` fixture
]
IDS = [c.id for c in CASES]


# --- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hostile")


@pytest.fixture(scope="module")
def big(folder) -> Path:
    """A valid ARFF file just over 100 MiB (222,000 beats of 24 samples), written once."""
    rows = "".join(",".join(r) + "\n" for r in cells(2000, seed=9)).encode()
    head = arff([])
    path = folder / "big.arff"
    with open(path, "wb") as fh:
        fh.write(head)
        size = len(head)
        while size < BIG_BYTES:
            fh.write(rows)
            size += len(rows)
    return path


@pytest.fixture(scope="module")
def written(folder) -> dict[str, Path]:
    """Every small case written to its own folder (so equal file names never meet)."""
    out = {}
    for case in CASES:
        if case.id != BIG:
            (folder / case.id).mkdir()
            out[case.id] = folder / case.id / case.name
            out[case.id].write_bytes(case.content)
    return out


def path_of(case: Case, request) -> Path:
    return request.getfixturevalue("big") if case.id == BIG else request.getfixturevalue("written")[case.id]


class Outcome(NamedTuple):
    error: str | None
    warnings: tuple[str, ...] = ()
    n_beats: int = 0
    length: int = 0


_OUTCOMES: dict[str, Outcome] = {}


def outcome(case: Case, request) -> Outcome:
    """What the library says about the case's file (computed once per case)."""
    if case.id not in _OUTCOMES:
        try:
            data = load_files([path_of(case, request)])
        except DataError as exc:
            _OUTCOMES[case.id] = Outcome(str(exc))
        else:
            _OUTCOMES[case.id] = Outcome(None, data.warnings, data.n_beats, data.length)
    return _OUTCOMES[case.id]


@pytest.fixture(scope="module")
def ckpts(tiny_ckpt, folder) -> dict[str, Path]:
    """The tiny model (24 samples) and the same weights declared for the long series (the LSTM fits any T)."""
    return {"tiny": save_checkpoint(tiny_ckpt, folder / "tiny.pt"),
            "long": save_checkpoint(dataclasses.replace(tiny_ckpt, seq_len=LONG_T), folder / "long.pt")}


@pytest.fixture
def app_env(monkeypatch, ckpts, folder):
    """Caches outlive an AppTest: start clean, with the tiny model as the start-up model."""
    st.cache_data.clear()
    st.cache_resource.clear()
    monkeypatch.setenv(config.CHECKPOINT_ENV, str(ckpts["tiny"]))
    monkeypatch.setenv(config.CHECKPOINT_DIR_ENV, str(folder))
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def start(tiny_data, page: str) -> AppTest:
    """The app on the tiny data set (80 beats of 24 samples), showing `page`."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["active_data"] = session.make_data(tiny_data, "tiny")
    at.run()
    at.switch_page(page).run()
    assert not at.exception and not at.error
    return at


def metric_values(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def upload_limit_mb() -> int:
    return tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]["maxUploadSize"]


def too_big(what: str, size: int, limit_mb: int) -> str:
    # as the page shows it: the message names files, so it is plain text (its backticks escaped)
    return plain(f"{what}: {size / 1e6:.2f} MB, but the dashboard loads at most {limit_mb} MB at once; "
                 "score larger data with `python -m ecgviz score`, which has no limit")


# --- no NaN on screen ------------------------------------------------------------------------------


def _numbers(value) -> np.ndarray | None:
    """A plotly JSON value (number, list or base64 typed array) as floats, None (a null) as NaN; None if not numeric."""
    if value is None:
        return None
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"])).astype(np.float64)
    flat = np.asarray(value if isinstance(value, list) else [value], dtype=object).ravel()
    if flat.size and all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in flat):
        return np.array([np.nan if v is None else v for v in flat], dtype=np.float64)
    return None


def assert_nothing_is_nan(at: AppTest) -> None:
    """Every metric and every number a chart draws is finite (NaN would show as 'nan' or a missing bar)."""
    for m in at.metric:
        for text in (m.value, m.delta):
            assert "nan" not in str(text).lower() and "inf" not in str(text).lower(), (m.label, text)
    charts = at.get("plotly_chart")
    assert charts
    for chart in charts:
        spec = json.loads(chart.proto.spec, parse_constant=lambda c: pytest.fail(f"{c} in a chart"))
        for trace in spec["data"]:
            for key in ("x", "y", "z", "width", "base"):
                values = _numbers(trace.get(key))
                assert values is None or np.isfinite(values).all(), (spec["layout"].get("title"), key)
        for shape in spec["layout"].get("shapes", []):
            assert all(np.isfinite(float(shape[k])) for k in ("x0", "x1") if isinstance(shape.get(k), int | float))
    for chart in [c for c in at.get("bidi_component") if c.key == "thr_chart"]:  # every number it draws is finite
        data = json.loads(chart.proto.json, parse_constant=lambda c: pytest.fail(f"{c} in the threshold chart"))[0]
        numbers = [data["threshold"], *data["range"].values(), *data["hist"]["edges"], *data["at"]]
        numbers += [c for series in data["hist"]["series"] for c in series["counts"]]
        numbers += [v for g in data["groups"] for v in g["above"]]
        if data["curves"]:
            numbers += data["curves"]["x"] + [y for series in data["curves"]["series"] for y in series["y"]]
        assert np.isfinite(np.asarray(numbers, dtype=np.float64)).all()


# --- 1. every odd file, through the library, the CLI and the Data page -----------------------------


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_library_outcome(case, request):
    path = path_of(case, request)
    got = outcome(case, request)
    if case.outcome == ERROR:
        assert got.error == case.message
        with pytest.raises(DataError) as info:  # bytes from a browser give the same message
            load_uploads([(case.name, path.read_bytes())])
        assert str(info.value) == case.message
        return
    assert got.error is None, got.error
    if case.outcome == WARN:
        assert any(case.message in w for w in got.warnings), got.warnings
    else:
        assert got.warnings == ()
    if case.id != BIG:  # one 100 MB parse is enough; the uploads path is the same code
        data = load_uploads([(case.name, path.read_bytes())])
        assert data.warnings == got.warnings and data.n_beats == got.n_beats
        assert np.isfinite(data.X).all() and data.X.dtype == np.float32


def test_expected_shapes_of_the_loadable_cases(request):
    shapes = {c.id: (outcome(c, request).n_beats, outcome(c, request).length) for c in CASES
              if c.outcome != ERROR and c.id != BIG}
    assert shapes == {"string_and_date": (3, T), "csv_named_arff": (3, T), "single_beat": (1, T), "latin1": (3, T),
                      "windows_bom_comments": (2, T), "constant_beats": (4, T), "long_series": (2, LONG_T)}


def test_the_100mb_file_is_one_big_valid_data_set(big, request):
    got = outcome(CASES[IDS.index(BIG)], request)
    assert big.stat().st_size > 100 * 2**20
    assert got == Outcome(None, (), 222_000, T)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_cli_outcome(case, request, ckpts, tmp_path, capsys):
    expected = outcome(case, request)
    out = tmp_path / "scores.csv"
    ckpt = ckpts["long" if case.id == "long_series" else "tiny"]
    rc = main(["score", "--checkpoint", str(ckpt), "--data", str(path_of(case, request)), "--out", str(out)])
    captured = capsys.readouterr()
    if expected.error is not None:
        assert rc == 2
        assert captured.err == f"ecgviz: error: {expected.error}\n"
        assert not out.exists()
        return
    assert rc == 0, captured.err
    assert captured.err == "".join(f"warning: {w}\n" for w in expected.warnings)
    assert captured.out.startswith(f"scored {expected.n_beats} beats")
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == expected.n_beats
    assert all(np.isfinite(float(r["error"])) for r in rows[:: max(1, len(rows) // 1000)])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_upload_page_outcome(case, request, app_env, tiny_data, ckpts):
    expected = outcome(case, request)
    at = start(tiny_data, "pages/data.py")
    path = path_of(case, request)
    limit = upload_limit_mb()
    assert at.file_uploader(key="data_upload").proto.max_upload_size_mb == limit
    at.file_uploader(key="data_upload").set_value((case.name, path.read_bytes(), "text/plain")).run()
    assert not at.exception, [e.message for e in at.exception]
    if path.stat().st_size > limit * 1e6:
        # the browser refuses a file over server.maxUploadSize (the limit the uploader announces) and the server
        # answers such an upload with 413; past both (as here), the page refuses it and keeps the previous data
        assert case.id == BIG
        assert [e.value for e in at.error] == [too_big(case.name, path.stat().st_size, limit)]
        assert at.session_state["active_data"].name == "tiny" and metric_values(at)["Beats"] == "80"
        return
    if expected.error is not None:
        assert [e.value for e in at.error] == [expected.error]
        assert at.session_state["active_data"].name == "tiny"  # the previous data stays active
        assert metric_values(at)["Beats"] == "80"
        return
    assert not at.error, [e.value for e in at.error]
    assert at.session_state["active_data"].name == case.name
    assert metric_values(at)["Beats"] == f"{expected.n_beats:,}"
    shown = [w.value for w in at.warning]
    assert all(w in shown for w in expected.warnings), shown
    assert_nothing_is_nan(at)  # the class previews
    if case.id == "long_series":  # the tiny model says it needs 24 samples; give it the long one
        assert any(f"{T} samples" in w for w in shown)
        at.switch_page("pages/model.py").run()
        long_ckpt = ("long.pt", ckpts["long"].read_bytes(), "application/octet-stream")
        at.file_uploader(key="ckpt_upload").set_value(long_ckpt).run()
        assert not at.error
    at.switch_page("pages/explorer.py").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert_nothing_is_nan(at)


_SEEDS = [c for c in CASES if c.content and c.id not in ("binary_junk", "long_series")]
_BYTES = [*b"@{}',\"\\%?-+eE.0123456789 \t\r\n", 0x00, 0xE9, 0xFF, 0xFE, 0xEF, 0xBB, 0xBF]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=hs.sampled_from(_SEEDS), suffix=hs.sampled_from([".arff", ".csv", ".tsv", ".txt"]),
       edits=hs.lists(hs.tuples(hs.floats(0, 1), hs.sampled_from(_BYTES) | hs.none()), min_size=1, max_size=6))
def test_any_mangled_file_loads_finite_beats_or_fails_with_a_data_error(case, suffix, edits):
    raw = bytearray(case.content)
    for where, byte in edits:  # insert a byte, or delete one
        i = int(where * len(raw))
        if byte is None:
            del raw[i : i + 1]
        else:
            raw.insert(i, byte)
    try:
        data = load_uploads([("mangled" + suffix, bytes(raw))])
    except DataError as exc:
        assert str(exc).startswith("mangled" + suffix)
        return
    assert np.isfinite(data.X).all() and data.length >= 3 and len(data.rows) == data.n_beats


def test_failed_upload_keeps_an_uploaded_data_set(request, app_env, tiny_data):
    good, bad = CASES[IDS.index("constant_beats")], CASES[IDS.index("nan")]
    at = start(tiny_data, "pages/data.py")
    at.file_uploader(key="data_upload").set_value((good.name, good.content, "text/plain")).run()
    assert at.session_state["active_data"].name == good.name
    at.file_uploader(key="data_upload").set_value((bad.name, bad.content, "text/plain")).run()
    assert not at.exception and [e.value for e in at.error] == [outcome(bad, request).error]
    assert at.session_state["active_data"].name == good.name and metric_values(at)["Beats"] == "4"
    assert any(c.value == f"Still using: {good.name}" for c in at.caption)


def test_upload_limit_counts_every_file_of_a_selection(app_env, tiny_data):
    """server.maxUploadSize is per file; the Data page holds a whole selection to it, as memory is per session."""
    parts = [("part_TRAIN.arff", arff(cells(1500, seed=1))), ("part_TEST.arff", arff(cells(1500, seed=2)))]
    sizes = [len(raw) for _, raw in parts]
    assert all(size < 2**20 for size in sizes) and sum(sizes) > 2**20
    at = start(tiny_data, "pages/data.py")
    previous = st_config.get_option("server.maxUploadSize")
    st_config.set_option("server.maxUploadSize", 1)
    try:
        at.file_uploader(key="data_upload").set_value([(n, raw, "text/plain") for n, raw in parts]).run()
    finally:
        st_config.set_option("server.maxUploadSize", previous)
    assert not at.exception
    assert [e.value for e in at.error] == [too_big("2 files", sum(sizes), 1)]
    assert at.session_state["active_data"].name == "tiny"


def test_real_processes_fail_with_one_line_and_status_2(request, ckpts, tmp_path):
    """The module entry point itself: no traceback, exit status 2, one line (a few cases, run side by side)."""
    runs = {}
    for cid in ("binary_junk", "latin1"):
        case = CASES[IDS.index(cid)]
        args = ["score", "--checkpoint", str(ckpts["tiny"]), "--data", str(path_of(case, request)),
                "--out", str(tmp_path / f"{cid}.csv")]
        runs[cid] = subprocess.Popen([sys.executable, "-m", "ecgviz", *args], cwd=tmp_path, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env={**os.environ, "PYTHONPATH": str(ROOT)})
    for cid, proc in runs.items():
        _, err = proc.communicate(timeout=TIMEOUT)
        expected = outcome(CASES[IDS.index(cid)], request)
        assert "Traceback" not in err
        if expected.error is not None:
            assert (proc.returncode, err) == (2, f"ecgviz: error: {expected.error}\n")
        else:
            assert proc.returncode == 0 and err == "".join(f"warning: {w}\n" for w in expected.warnings)


# --- 2. checkpoints never run code; misfits are named ----------------------------------------------


class _OpenFile:
    """Unpickling this creates (truncates) a file."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


class _Shell:
    """Unpickling this runs a shell command that creates a file."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(self.path)}",))


def _torch_bytes(obj, **kwargs) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, pickle_module=pickle, **kwargs)
    return buf.getvalue()


EVIL = ("payload_in_real_checkpoint", "zip_open", "legacy_format_shell", "bare_pickle_shell")


@pytest.fixture(scope="module")
def evil(folder, tiny_ckpt) -> dict[str, Path]:
    """Malicious checkpoints, each shown to create the marker file when unpickled the unsafe way."""
    marker = folder / "PWNED"
    d = to_dict(tiny_ckpt)
    blobs = {
        "payload_in_real_checkpoint": _torch_bytes({**d, "notes": _OpenFile(marker)}),
        "zip_open": _torch_bytes({"format": "ecgviz-checkpoint", "format_version": 1, "x": _OpenFile(marker)}),
        "legacy_format_shell": _torch_bytes({**d, "x": _Shell(marker)}, _use_new_zipfile_serialization=False),
        "bare_pickle_shell": pickle.dumps(_Shell(marker), protocol=2),
    }
    paths = {}
    for kind, blob in blobs.items():
        (folder / kind).mkdir()
        paths[kind] = folder / kind / "model.pt"
        paths[kind].write_bytes(blob)
        # the bait is live: a plain unpickler creates the marker
        loaded = pickle.loads(blob) if kind == "bare_pickle_shell" else torch.load(io.BytesIO(blob), weights_only=False)
        del loaded
        assert marker.exists(), kind
        marker.unlink()
    paths["marker"] = marker
    return paths


@pytest.mark.parametrize("kind", EVIL)
def test_malicious_checkpoint_refused_everywhere(kind, evil, written, tiny_data, app_env, tmp_path, capsys):
    path, marker = evil[kind], evil["marker"]
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert message.startswith("model.pt is not an ecgviz checkpoint: it refers to code ("), message
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="refers to code"):
        load_checkpoint(path.read_bytes(), name="model.pt")
    assert not marker.exists()

    good = written["single_beat"]
    for args in (["score", "--checkpoint", str(path), "--data", str(good), "--out", str(tmp_path / "o.csv")],
                 ["evaluate", "--checkpoint", str(path), "--data", str(good)]):
        assert main(args) == 2
        assert capsys.readouterr().err == f"ecgviz: error: {message}\n"
        assert not marker.exists()

    at = start(tiny_data, "pages/model.py")
    at.file_uploader(key="ckpt_upload").set_value(("model.pt", path.read_bytes(), "application/octet-stream")).run()
    assert not at.exception
    assert [e.value for e in at.error] == [message]
    assert at.session_state["active_model"].name == "tiny"
    assert not marker.exists()


def test_malicious_checkpoint_in_a_real_process(evil, written, tmp_path):
    args = ["score", "--checkpoint", str(evil["legacy_format_shell"]), "--data", str(written["single_beat"]),
            "--out", str(tmp_path / "o.csv")]
    proc = subprocess.run([sys.executable, "-m", "ecgviz", *args], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=TIMEOUT)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    assert "refers to code (posix.system)" in proc.stderr
    assert not evil["marker"].exists()


def _misfits(tiny_ckpt) -> dict[str, tuple[bytes, str]]:
    d = to_dict(tiny_ckpt)
    wide = {**d, "model_config": {**d["model_config"], "embedding_dim": 8}}
    huge = {**d, "model_config": {**d["model_config"], "embedding_dim": 2048}}
    longer = dataclasses.replace(tiny_ckpt, seq_len=30)
    return {
        "other_length": (_torch_bytes(to_dict(longer)),
                         "model 'tiny' was trained on beats of 30 samples, but the data has 24 samples per beat"),
        "other_shape": (_torch_bytes(wide), "misfit.pt is a damaged ecgviz checkpoint: weight "
                        "encoder.rnn1.weight_ih_l0 has shape (32, 10), but its model_config "
                        "(embedding 8, 1 feature(s)) needs (64, 10)"),
        # a config asking for a huge model is refused before gigabytes are allocated for it
        "huge_config": (_torch_bytes(huge), "misfit.pt is a damaged ecgviz checkpoint: weight "
                        "encoder.rnn1.weight_ih_l0 has shape (32, 10)"),
    }


@pytest.mark.parametrize("kind", ["other_length", "other_shape", "huge_config"])
def test_misfit_checkpoint_named_everywhere(kind, tiny_ckpt, tiny_data, written, app_env, tmp_path, capsys):
    blob, message = _misfits(tiny_ckpt)[kind]
    path = tmp_path / "misfit.pt"
    path.write_bytes(blob)
    started = time.perf_counter()
    with pytest.raises(CheckpointError) as info:
        score_beats(load_checkpoint(path), tiny_data.X)
    assert time.perf_counter() - started < 5
    assert str(info.value).startswith(message)
    message = str(info.value)

    args = ["score", "--checkpoint", str(path), "--data", str(written["single_beat"]), "--out", str(tmp_path / "o")]
    assert main(args) == 2
    assert capsys.readouterr().err == f"ecgviz: error: {message}\n"

    at = start(tiny_data, "pages/model.py")
    at.file_uploader(key="ckpt_upload").set_value(("misfit.pt", blob, "application/octet-stream")).run()
    assert not at.exception
    assert [e.value for e in at.error] == [message]
    assert at.session_state["active_model"].name == "tiny"


# --- 3. spreadsheet injection: CLI output and the Export page's download --------------------------

FORMULA_FILE = "=cmd|' -C calc'!A0.arff"  # the classic payload, with '-' for the '/' no file name can hold
FORMULA_LABELS = ("@SUM(1)", "=1+1", "+A1", "-2+3", "-1", "1")


def _formula_arff() -> bytes:
    rows = [[*r[:-1], FORMULA_LABELS[i % len(FORMULA_LABELS)]] for i, r in enumerate(cells(12, seed=4))]
    rows[0][0] = "-0.75"  # a negative sample: a number, to stay as it is
    declared = ",".join(f"'{label}'" for label in FORMULA_LABELS)
    return arff(rows, attrs=[f"att{i + 1} numeric" for i in range(T)] + [f"target {{{declared}}}"])


def _check_neutralised(csv_bytes: bytes, errors: np.ndarray, X: np.ndarray) -> None:
    rows = list(csv.reader(io.StringIO(csv_bytes.decode("utf-8"))))
    header, body = rows[0], rows[1:]
    assert header[:9] == ["source", "row", "label", "class_name", "error", "threshold", "flagged", "split_role",
                          "outcome"]
    assert len(body) == len(errors)
    for i, row in enumerate(body):
        label = FORMULA_LABELS[i % len(FORMULA_LABELS)]
        assert row[0] == "'" + FORMULA_FILE
        assert row[2] == (label if label in ("-1", "1") else "'" + label)  # plain numbers are not text to defuse
        assert row[3] == f"Class {label}"
        assert int(row[1]) == i + 1 and float(row[4]) == errors[i]  # numbers unchanged, exactly
        np.testing.assert_array_equal(np.array(row[9:], dtype=np.float64).astype(np.float32), X[i])
        assert not any(cell.startswith(("=", "+", "@")) for cell in row)
    assert body[0][9] == "-0.75"


def test_spreadsheet_injection_is_neutralised_in_cli_and_export(folder, ckpts, tiny_data, app_env, downloads,
                                                                 capsys):
    (folder / "formula").mkdir(exist_ok=True)
    path = folder / "formula" / FORMULA_FILE
    path.write_bytes(_formula_arff())
    data = load_files([path])
    errors = score_beats(load_checkpoint(ckpts["tiny"]), data.X)
    out = folder / "formula" / "scores.csv"
    assert main(["score", "--checkpoint", str(ckpts["tiny"]), "--data", str(path), "--out", str(out),
                 "--include-samples"]) == 0
    capsys.readouterr()
    _check_neutralised(out.read_bytes(), errors, data.X)

    at = start(tiny_data, "pages/data.py")
    at.file_uploader(key="data_upload").set_value((FORMULA_FILE, path.read_bytes(), "text/plain")).run()
    assert not at.exception and not at.error
    at.switch_page("pages/export.py").run()
    at.radio(key="export_rows").set_value("All beats").run()
    at.checkbox(key="export_samples").check().run()
    assert not at.exception and not at.error
    name = next(k for k in downloads if k.startswith("ecgviz_all") and k.endswith(".csv"))
    _check_neutralised(downloads[name], errors, data.X)
    assert downloads[name] == out.read_bytes()  # the page's file is the CLI's, byte for byte
