"""Scoring over HTTP: ``python -m ecgviz serve``. The model loads once; every request scores like ``ecgviz score``."""

from __future__ import annotations

import logging
import math
import platform
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import Message
from typing import Annotated

import numpy as np
from fastapi import Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ecgviz import __version__
from ecgviz.checkpoint.store import Checkpoint, CheckpointError
from ecgviz.io.data import BeatData, DataError, load_uploads
from ecgviz.pipeline import protocol
from ecgviz.pipeline.export import _json_safe

log = logging.getLogger("ecgviz.service.app")


@dataclass(frozen=True)
class Limits:
    """What one request may ask for; each bound keeps one client from taking the server's memory."""

    max_beats: int = 10_000  # beats per request: 1.4 M samples at ECG5000's 140, a few MB as float32
    # 10,000 beats of 140 samples as JSON: ~14 MB with 8 significant digits, ~28 MB as full float64 reprs
    max_body_bytes: int = 32 * 2**20


class BeatsRequest(BaseModel):
    """Beats to score, each a list of samples as long as the model's beats."""

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


async def _body(request: Request) -> bytes:
    """The raw body (read within BodyLimit's bound), for endpoints that parse it themselves."""
    return await request.body()


def _require_multipart(request: Request) -> None:
    if _content_type(request) != ("multipart", "form-data"):
        got = request.headers.get("content-type") or "no content type"
        raise HTTPException(415, f"send files as multipart/form-data in a field named 'file' (got {got}); "
                                 "JSON beats go to /score")


class BodyLimit:
    """ASGI middleware: refuse a body over `max_bytes` by its Content-Length, or as soon as a streamed one passes it."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    def _too_large(self) -> str:
        return f"request body is larger than {self.max_bytes:,} bytes; send fewer beats per request"

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit():
                return await JSONResponse({"detail": "Content-Length is not a number"}, 400)(scope, receive, send)
            if int(length) > self.max_bytes:
                return await JSONResponse({"detail": self._too_large()}, 413)(scope, receive, send)
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:  # chunked bodies carry no length: count what arrives
                raise HTTPException(413, self._too_large())
            return message

        await self.app(scope, limited_receive, send)


def _where(loc: Sequence) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    text = ""
    for p in parts:
        text += f"[{p}]" if p.isdigit() else (f".{p}" if text else p)
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


def beats_array(beats: list[list[float]], seq_len: int, limits: Limits) -> np.ndarray:
    """Check request beats (count, equal lengths, the model's length, finite as float32) and stack them (n, T)."""
    if not beats:
        raise HTTPException(422, "beats: no beats given")
    if len(beats) > limits.max_beats:
        raise HTTPException(413, f"beats: {len(beats):,} beats in one request; at most {limits.max_beats:,}")
    for i, beat in enumerate(beats):
        if len(beat) != seq_len:
            raise HTTPException(422, f"beats[{i}]: has {len(beat)} samples, but the model was trained on beats "
                                     f"of {seq_len} samples")
    X = np.asarray(beats, dtype=np.float64)
    bad = ~np.isfinite(X.astype(np.float32))
    if bad.any():
        i, j = map(int, np.argwhere(bad)[0])
        what = "NaN" if math.isnan(X[i, j]) else "infinite or too large for float32"
        raise HTTPException(422, f"beats[{i}][{j}]: sample is {what}; every sample must be a finite number")
    return X.astype(np.float32)


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


def create_app(ckpt: Checkpoint, limits: Limits | None = None) -> FastAPI:
    """The service around one loaded checkpoint."""
    limits = limits or Limits()
    app = FastAPI(title="ecgviz scoring service", version=__version__,
                  description="Reconstruction errors and verdicts for ECG beats from one LSTM autoencoder "
                              f"('{ckpt.name}', beats of {ckpt.seq_len} samples).")
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
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

    @app.get("/health", summary="Is the service up (and which model it serves)")
    def health() -> dict:
        return {"status": "ok", "model": ckpt.name}

    @app.get("/model", summary="The model: configuration, beat length, stored threshold and its rule, metrics")
    def model_info() -> dict:
        return info

    @app.post("/score", response_model=ScoreResponse, response_model_exclude_none=True,
              dependencies=[Depends(_require_json)], summary="Score beats sent as JSON",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": BeatsRequest.model_json_schema()}}}},
              responses={400: {"description": "not JSON"}, 413: {"description": "too many beats or body too large"},
                         415: {"description": "not application/json"}, 422: {"description": "invalid beats"}})
    def score_beats(body: Annotated[bytes, Depends(_body)]) -> ScoreResponse:
        try:  # pydantic's own JSON parser: ~6x faster than json.loads and then validating the objects
            request = BeatsRequest.model_validate_json(body)
        except ValidationError as exc:
            raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None
        X = beats_array(request.beats, ckpt.seq_len, limits)
        _threshold(ckpt, request.threshold)  # refuse a bad threshold before spending time on scoring
        return _response(ckpt, protocol.score_beats(ckpt, X), request.threshold)

    @app.post("/score/file", response_model=ScoreResponse, response_model_exclude_none=True,
              dependencies=[Depends(_require_multipart)], summary="Score beats in uploaded ARFF/TSV/CSV files",
              responses={413: {"description": "too many beats or body too large"},
                         415: {"description": "not multipart/form-data"}, 422: {"description": "unreadable file"}})
    def score_files(file: Annotated[list[UploadFile], File(description="one or more ARFF/TSV/CSV files")],
                    threshold: Annotated[float | None, Form()] = None) -> ScoreResponse:
        _threshold(ckpt, threshold)
        try:
            data = read_uploads([(f.filename or "upload", f.file.read()) for f in file])
            if data.n_beats > limits.max_beats:
                raise HTTPException(413, f"file: {data.n_beats:,} beats in one request; at most {limits.max_beats:,}")
            errors = protocol.score_beats(ckpt, data.X)
        except (DataError, CheckpointError) as exc:
            raise HTTPException(422, f"file: {exc}") from None
        return _response(ckpt, errors, threshold, data)

    return app


def serve(ckpt: Checkpoint, host: str = "127.0.0.1", port: int = 8000, limits: Limits | None = None,
          log_level: str = "info") -> None:
    """Run the service with uvicorn until interrupted; a port that cannot be had raises OSError first."""
    import uvicorn

    try:  # uvicorn would log the reason and exit with its own status: say it as every other CLI error is said
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    uvicorn.run(create_app(ckpt, limits), host=host, port=port, log_level=log_level)
