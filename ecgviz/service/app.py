"""Scoring over HTTP: ``python -m ecgviz serve``. The model loads once; every request scores like ``ecgviz score``."""

from __future__ import annotations

import logging
import math
import platform
import re
import socket
from collections.abc import Callable, Sequence
from email.message import Message
from typing import Annotated

import numpy as np
from fastapi import Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field

from ecgviz import __version__
from ecgviz.checkpoint.store import Checkpoint, CheckpointError
from ecgviz.io.data import BeatData, DataError, load_uploads
from ecgviz.pipeline import protocol
from ecgviz.pipeline.export import _json_safe
from ecgviz.service import transport
from ecgviz.service.beats_json import FIELDS, BeatsReader, Refused
from ecgviz.service.transport import BodyLimit, Limits

log = logging.getLogger("ecgviz.service.app")


class BeatsRequest(BaseModel):
    """Beats to score, each a list of samples as long as the model's beats (the schema /docs shows; requests are
    read by beats_json.BeatsReader, which checks the same rules as the body arrives)."""

    model_config = ConfigDict(extra="forbid")
    beats: list[list[float]] = Field(description="beats (n, T): one list of T samples per beat",
                                     examples=[[[0.1, -0.2, 0.4]]])
    threshold: float | None = Field(None, description="flag beats with a higher error; default: the model's own")


class BeatScore(BaseModel):
    """One beat's error and verdict; file uploads also say where the beat came from."""

    index: int = Field(description="position in the request (0-based)")
    error: float = Field(description="reconstruction error, in the units of the threshold")
    flagged: bool = Field(description="error > threshold")
    source: str | None = Field(None, description="file name (uploads only)")
    row: int | None = Field(None, description="row in that file (uploads only)")
    label: str | None = Field(None, description="the file's label for the beat, if it has one")


class ScoreResponse(BaseModel):
    """Per-beat errors and verdicts at one threshold."""

    threshold: float
    threshold_source: str = Field(description="'request' when the request gave one, else 'model'")
    threshold_rule: str
    n_beats: int
    n_flagged: int
    beats: list[BeatScore]
    warnings: list[str] = Field(default_factory=list, description="what the file reader noticed (uploads only)")


Files = Sequence[tuple[str, bytes]]  # uploaded (file name, bytes) pairs
# How uploads become beats: the first (accepts, read) pair whose accepts(files) is true reads them. A reader for
# whole recordings (signal files cut into beats) goes before the tabular one, which takes anything.
UPLOAD_READERS: list[tuple[Callable[[Files], bool], Callable[[Files], BeatData]]] = [(lambda files: True, load_uploads)]


def read_uploads(files: Files) -> BeatData:
    """Beats from uploaded (file name, bytes) pairs, through the first reader that accepts them."""
    for accepts, read in UPLOAD_READERS:
        if accepts(files):
            return read(files)
    raise DataError("no reader accepts these files")


def _service_versions() -> dict:
    import fastapi
    import torch
    import uvicorn

    return {"ecgviz": __version__, "torch": str(torch.__version__), "numpy": np.__version__,
            "fastapi": fastapi.__version__, "uvicorn": uvicorn.__version__, "python": platform.python_version()}


def _content_type(request: Request) -> tuple[str, str]:
    message = Message()
    message["content-type"] = request.headers.get("content-type", "")
    return message.get_content_maintype(), message.get_content_subtype()


def _require_json(request: Request) -> None:
    main, sub = _content_type(request)
    if not (main == "application" and (sub == "json" or sub.endswith("+json"))):
        got = request.headers.get("content-type") or "no content type"
        raise HTTPException(415, f"send beats as application/json (got {got}); "
                                 "files go to /score/file as multipart/form-data")


def _require_multipart(request: Request) -> None:
    if _content_type(request) != ("multipart", "form-data"):
        got = request.headers.get("content-type") or "no content type"
        raise HTTPException(415, f"send files as multipart/form-data in a field named 'file' (got {got}); "
                                 "JSON beats go to /score")


def _where(loc: Sequence) -> str:
    # only the request's own field names and indices: a key the client made up is never repeated back
    text = ""
    for p in (str(p) for p in loc if p != "body"):
        if p.isdigit():
            text += f"[{p}]"
        elif p in (*FIELDS, "file"):
            text += f".{p}" if text else p
        else:
            return text or "body"
    return text or "body"


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """One readable line (the first problem and where), plus the list; never the input echoed back."""
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        first = next(e for e in errors if e.get("type") == "json_invalid")
        why = first.get("ctx", {}).get("error", "parse error")  # says where: "... at line 1 column 22"
        return JSONResponse({"detail": f"body is not valid JSON: {why}"}, 400)
    listed = [{"where": _where(e.get("loc", ())), "problem": e.get("msg", "")} for e in errors[:20]]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return JSONResponse({"detail": f"{listed[0]['where']}: {listed[0]['problem']}{more}", "errors": listed}, 422)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("error while answering %s %s", request.method, request.url.path)
    return JSONResponse({"detail": "internal error; the server log has the details"}, 500)


def _threshold(ckpt: Checkpoint, requested: float | None) -> tuple[float, str]:
    if requested is None:
        return ckpt.threshold, "model"
    if not math.isfinite(requested):
        raise HTTPException(422, "threshold: must be a finite number")
    return float(requested), "request"


def _response(ckpt: Checkpoint, errors: np.ndarray, requested: float | None, data: BeatData | None = None,
              ) -> ScoreResponse:
    threshold, source = _threshold(ckpt, requested)
    flagged = errors > threshold
    beats = [BeatScore(index=i, error=float(e), flagged=bool(f)) for i, (e, f) in enumerate(zip(errors, flagged,
                                                                                              strict=True))]
    if data is not None:
        # lists of shared strings: one str object per distinct label or file, not one per beat
        labels = None if data.labels is None else data.labels.tolist()
        sources = data.sources.tolist()
        for i, beat in enumerate(beats):
            beat.source, beat.row = sources[i], int(data.rows[i])
            beat.label = None if labels is None else str(labels[i])
    return ScoreResponse(threshold=threshold, threshold_source=source, threshold_rule=(
        ckpt.threshold_rule if source == "model" else "given with the request"), n_beats=len(errors),
        n_flagged=int(flagged.sum()), beats=beats, warnings=list(data.warnings) if data is not None else [])


def _answer(ckpt: Checkpoint, X: np.ndarray, requested: float | None, data: BeatData | None = None) -> Response:
    """Score and serialise (in a worker thread: this is the request's heavy part)."""
    body = _response(ckpt, protocol.score_beats(ckpt, X), requested, data).model_dump_json(exclude_none=True)
    return Response(body, media_type="application/json")


# A text line that can hold a beat: not blank, not a comment (% or #), not an ARFF header line (@...).
_ROW_LINE = re.compile(rb"^[ \t]*[^\s%#@]", re.M)


def rows_at_most(files: Files) -> int:
    """An upper bound on the beats in uploaded beat files (ARFF/TSV/CSV), counted in their bytes before parsing.

    Every beat is one line; a CSV/TSV may have one header line. Beat packs (binary) count 0 here: their beats
    cost their own size in memory and are counted once read.
    """
    from ecgviz.io.pack import is_pack

    return sum(0 if is_pack(name, raw[:4]) else sum(1 for _ in _ROW_LINE.finditer(raw)) for name, raw in files)


def create_app(ckpt: Checkpoint, limits: Limits | None = None) -> FastAPI:
    """The service around one loaded checkpoint."""
    limits = limits or Limits()
    # the API docs (/docs, /redoc) from files shipped with the package: they work without internet access
    app = FastAPIOffline(title="ecgviz scoring service", version=__version__,
                         description="Reconstruction errors and verdicts for ECG beats from one LSTM autoencoder "
                                     f"('{ckpt.name}', beats of {ckpt.seq_len} samples).")
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes, idle_s=limits.body_idle_s)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _internal_error)
    config = ckpt.detector.get_params().get("model_config")  # the autoencoder's shape; the baselines have none
    info = _json_safe({
        "name": ckpt.name, "created": ckpt.created, "beat_length": ckpt.seq_len,
        "detector": ckpt.description, "kind": ckpt.kind,
        "model_config": config.to_dict() if config is not None else None, "loss": ckpt.loss,
        "normalisation": list(ckpt.detector.normalisation_), "threshold": ckpt.threshold,
        "threshold_rule": ckpt.threshold_rule,
        "metrics": ckpt.metrics, "train_config": ckpt.train_config, "class_names": ckpt.class_names,
        "versions": {"trained_with": ckpt.versions, "serving": _service_versions()},
        "limits": {"max_beats": limits.max_beats, "max_body_bytes": limits.max_body_bytes},
    })  # a hand-made checkpoint may hold NaN, which JSON cannot

    # /health and /model are coroutines: they answer on the event loop, never waiting for a worker thread
    @app.get("/health", summary="Is the service up (and which model it serves)")
    async def health() -> dict:
        return {"status": "ok", "model": ckpt.name}

    @app.get("/model", summary="The model: configuration, beat length, stored threshold and its rule, metrics")
    async def model_info() -> dict:
        return info

    @app.post("/score", response_model=ScoreResponse, response_model_exclude_none=True,
              dependencies=[Depends(_require_json)], summary="Score beats sent as JSON",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": BeatsRequest.model_json_schema()}}}},
              responses={400: {"description": "not JSON"}, 413: {"description": "too many beats or body too large"},
                         415: {"description": "not application/json"}, 422: {"description": "invalid beats"}})
    async def score_beats(request: Request) -> Response:
        reader = BeatsReader(ckpt.seq_len, limits.max_beats)
        try:
            async for chunk in request.stream():  # each piece is read (and checked) in a worker thread
                if chunk:
                    await run_in_threadpool(reader.feed, chunk)
            X, threshold = reader.close()
        except Refused as exc:
            # answered at once; the server reads and drops what the client still sends
            raise HTTPException(exc.status, exc.detail) from None
        _threshold(ckpt, threshold)  # refuse a bad threshold before spending time on scoring
        return await run_in_threadpool(_answer, ckpt, X, threshold)

    @app.post("/score/file", response_model=ScoreResponse, response_model_exclude_none=True,
              dependencies=[Depends(_require_multipart)], summary="Score beats in uploaded ARFF/TSV/CSV files",
              responses={413: {"description": "too many beats or body too large"},
                         415: {"description": "not multipart/form-data"}, 422: {"description": "unreadable file"}})
    def score_files(file: Annotated[list[UploadFile], File(description="one or more ARFF/TSV/CSV files")],
                    threshold: Annotated[float | None, Form()] = None) -> Response:
        _threshold(ckpt, threshold)
        files = [(f.filename or "upload", f.file.read()) for f in file]
        rows = rows_at_most(files)
        if rows > limits.max_beats + len(files):  # beyond any header lines: refused before parsing
            raise HTTPException(413, f"file: {rows:,} lines of beats in one request; at most {limits.max_beats:,} "
                                     "beats")
        try:
            data = read_uploads(files)
            del files
            if data.n_beats > limits.max_beats:
                raise HTTPException(413, f"file: {data.n_beats:,} beats in one request; at most {limits.max_beats:,}")
            return _answer(ckpt, data.X, threshold, data)
        except (DataError, CheckpointError) as exc:
            raise HTTPException(422, f"file: {exc}") from None

    return app


def serve(ckpt: Checkpoint, host: str = "127.0.0.1", port: int = 8000, limits: Limits | None = None,
          log_level: str = "info") -> None:
    """Run the service with uvicorn until interrupted; a port that cannot be had raises OSError first."""
    limits = limits or Limits()
    try:  # uvicorn would log the reason and exit with its own status: say it as every other CLI error is said
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    transport.run(create_app(ckpt, limits), host, port, limits, log_level)
