"""The ``eno serve`` HTTP API (FastAPI on uvicorn).

Endpoints: ``POST /predict`` (multipart field ``file``: one audio or MIDI file), ``POST
/predict/batch`` (multipart field ``files``, repeated), ``GET /health`` (liveness + readiness),
``GET /model`` (labels, thresholds, version, dataset lineage), OpenAPI at ``/docs`` and
``/openapi.json``.

Request path: a pure-ASGI guard refuses non-multipart bodies (415) and bodies over the size limit
(413, counted while streaming, with or without ``Content-Length``); each file is decoded on a
thread (``decode.decode_upload``), its waveform goes through ``DynamicBatcher`` to the model's one
inference thread, and the scores come back with the labels above the tuned thresholds. Every
refusal is ``{"error": {"reason", "detail", "file"}}`` with the status of ``decode.REASON_STATUS``.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
from fastapi import FastAPI, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from eno_hf.errors import RejectedInput
from eno_hf.serving.batching import DynamicBatcher, Overloaded
from eno_hf.serving.config import ServeConfig
from eno_hf.serving.decode import decode_upload, http_status
from eno_hf.serving.predictor import Predictor

log = logging.getLogger(__name__)

MULTIPART_OVERHEAD = 64 * 1024
"""Bytes of multipart framing allowed on top of the file size limits."""


# ----------------------------------------------------------------------------- schemas
class ErrorBody(BaseModel):
    reason: str = Field(description="machine-readable code, e.g. undecodable, silent, too_large")
    detail: str = ""
    file: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class ModelRef(BaseModel):
    name: str
    version: str | None = None
    backend: str


class Timing(BaseModel):
    decode_ms: float = Field(description="reading + decoding + resampling the upload")
    queue_ms: float = Field(description="waiting for the clip's batch to start")
    inference_ms: float = Field(description="the batch's forward pass (shared by batch_size clips)")
    total_ms: float
    batch_size: int


class Prediction(BaseModel):
    file: str | None
    model: ModelRef
    duration_s: float = Field(description="decoded duration in seconds")
    heads: dict[str, dict[str, float]] = Field(description="head -> label -> score (regression: {'value': x})")
    tags: dict[str, list[str]] = Field(description="head -> labels at/above the tuned thresholds (single-label: arg-max)")
    timing: Timing


class BatchItem(BaseModel):
    file: str | None
    prediction: Prediction | None = None
    error: ErrorBody | None = None


class BatchResponse(BaseModel):
    model: ModelRef
    results: list[BatchItem]
    total_ms: float


class Health(BaseModel):
    live: bool
    ready: bool
    pid: int
    uptime_s: float
    model: ModelRef
    batching: dict[str, Any]


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 413, 415, 422, 503)
}


# ----------------------------------------------------------------------------- helpers
def _error(reason: str, detail: str = "", file: str | None = None, status: int | None = None) -> JSONResponse:
    body = {"error": {"reason": reason, "detail": detail, "file": file}}
    return JSONResponse(body, status_code=status or http_status(reason))


class _TooLarge(Exception):
    pass


class BodyGuard:
    """ASGI middleware for the ``/predict`` routes: 415 for a non-multipart request, 413 once the
    body passes ``limit_bytes(path)`` (streamed count, so chunked uploads are bounded too)."""

    def __init__(self, app: Any, cfg: ServeConfig) -> None:
        self.app = app
        self.cfg = cfg

    def limit(self, path: str) -> int:
        files = self.cfg.max_files if path.rstrip("/").endswith("/batch") else 1
        return int(files * self.cfg.max_upload_mb * 2**20) + MULTIPART_OVERHEAD

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith("/predict"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        limit = self.limit(scope["path"])
        ctype = headers.get("content-type", "").lower()
        if not ctype.startswith("multipart/form-data"):
            await _error("unsupported_media_type", f"expected multipart/form-data, got {ctype or 'no content type'!r}"
                         )(scope, receive, send)
            return
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await _error("too_large", f"request body of {length} bytes > {limit} bytes")(scope, receive, send)
            return
        seen = 0
        exceeded = False
        replaced = False

        async def counting_receive() -> dict:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    exceeded = True
                    raise _TooLarge(f"request body over {limit} bytes")
            return message

        async def guarded_send(message: dict) -> None:
            # the framework may turn our exception into its own 400: answer 413 instead
            nonlocal replaced
            if exceeded:
                if message["type"] == "http.response.start" and not replaced:
                    replaced = True
                    await _error("too_large", f"request body over {limit} bytes")(scope, _no_body, send)
                return
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _TooLarge:
            if not replaced:
                await _error("too_large", f"request body over {limit} bytes")(scope, _no_body, send)


async def _no_body() -> dict:
    return {"type": "http.request", "body": b"", "more_body": False}


# ----------------------------------------------------------------------------- app
def create_app(predictor: Predictor, cfg: ServeConfig | None = None) -> FastAPI:
    """The FastAPI app serving ``predictor`` with the limits and batching of ``cfg``.

    The model must already be loaded (``predictor``); the batcher's worker thread starts with the
    app (lifespan) and stops with it.
    """
    cfg = cfg or ServeConfig()
    info = predictor.info()
    ref = ModelRef(name=str(info.get("name")), version=info.get("version"), backend=predictor.backend)
    started_at = time.time()

    def thread_init() -> None:
        if cfg.torch_threads:
            import torch

            torch.set_num_threads(int(cfg.torch_threads))

    batcher: DynamicBatcher[np.ndarray, Any] = DynamicBatcher(
        predictor.predict, max_batch_size=cfg.max_batch_size, max_wait_s=cfg.max_wait_ms / 1000.0,
        queue_size=cfg.queue_size, thread_init=thread_init)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(title="eno", version="1", lifespan=lifespan,
                  description=f"Audio tagging with the eno model {ref.name} ({ref.version or 'unregistered'}).")
    app.state.batcher = batcher
    app.state.predictor = predictor
    app.state.config = cfg

    @app.exception_handler(RejectedInput)
    async def _rejected(_: Request, exc: RejectedInput) -> JSONResponse:
        return _error(exc.reason, exc.detail, exc.path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        missing = [".".join(str(x) for x in e.get("loc", ())) for e in exc.errors()]
        return _error("bad_request", f"invalid request: {'; '.join(missing)} "
                      "(send multipart/form-data with the audio in field 'file', or 'files' for /predict/batch)")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error({404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error"),
                      str(exc.detail), status=exc.status_code)

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error")
        return _error("internal_error", f"{type(exc).__name__}", status=500)

    async def _predict_one(upload: UploadFile) -> Prediction:
        t0 = time.perf_counter()
        name = upload.filename or "upload"
        size = upload.size
        if size is not None and size > cfg.max_upload_mb * 2**20:
            raise RejectedInput(name, "too_large", f"{size} bytes > max_upload_mb={cfg.max_upload_mb}")
        data = await upload.read(int(cfg.max_upload_mb * 2**20) + 1)
        samples = await run_in_threadpool(decode_upload, data, name, predictor.sample_rate, cfg,
                                          upload.content_type)
        t1 = time.perf_counter()
        try:
            scores, timing = await batcher.submit(samples)
        except Overloaded as exc:
            raise RejectedInput(name, "overloaded", str(exc)) from exc
        except ValueError as exc:  # the feature extractor refused the waveform
            raise RejectedInput(name, "undecodable", str(exc)) from exc
        total = (time.perf_counter() - t0) * 1000.0
        return Prediction(
            file=name, model=ref, duration_s=round(len(samples) / predictor.sample_rate, 3),
            heads=scores, tags=predictor.tags(scores),
            timing=Timing(decode_ms=(t1 - t0) * 1000.0, queue_ms=timing.queue_ms,
                          inference_ms=timing.inference_ms, total_ms=total, batch_size=timing.batch_size))

    @app.post("/predict", response_model=Prediction, responses=ERRORS,
              summary="Tag one audio or MIDI file (multipart field 'file')")
    async def predict(file: UploadFile = File(..., description="audio (wav/flac/mp3/ogg/opus/m4a...) or MIDI")
                      ) -> Prediction:
        return await _predict_one(file)

    @app.post("/predict/batch", response_model=BatchResponse, responses=ERRORS,
              summary="Tag several files (multipart field 'files', repeated); bad files get per-item errors")
    async def predict_batch(files: list[UploadFile] = File(..., description="audio or MIDI files")
                            ) -> BatchResponse:
        import asyncio

        t0 = time.perf_counter()
        if len(files) > cfg.max_files:
            raise RejectedInput(None, "too_many_files", f"{len(files)} files > max_files={cfg.max_files}")

        async def one(upload: UploadFile) -> BatchItem:
            try:
                return BatchItem(file=upload.filename, prediction=await _predict_one(upload))
            except RejectedInput as exc:
                if exc.reason == "overloaded":
                    raise
                return BatchItem(file=upload.filename, error=ErrorBody(reason=exc.reason, detail=exc.detail,
                                                                       file=upload.filename))

        results = await asyncio.gather(*(one(f) for f in files))
        return BatchResponse(model=ref, results=list(results), total_ms=(time.perf_counter() - t0) * 1000.0)

    @app.get("/health", response_model=Health, responses={503: {"model": Health}},
             summary="Liveness (answers at all) and readiness (model loaded, inference thread running)")
    async def health() -> JSONResponse:
        await batcher.start()  # no-op when running; restarts the worker if it died
        body = Health(live=True, ready=batcher.running, pid=os.getpid(), uptime_s=time.time() - started_at,
                      model=ref, batching={**batcher.stats.as_dict(), "max_batch_size": cfg.max_batch_size,
                                           "max_wait_ms": cfg.max_wait_ms})
        return JSONResponse(body.model_dump(), status_code=200 if batcher.running else 503)

    @app.get("/model", summary="Labels, thresholds, version and dataset lineage of the served model")
    async def model() -> dict[str, Any]:
        return {**info, "limits": cfg.model_dump(exclude={"host", "port"})}

    app.add_middleware(BodyGuard, cfg=cfg)
    return app
