"""The ``eno serve`` HTTP API (FastAPI on uvicorn).

Endpoints: ``POST /predict`` (multipart field ``file``: one audio or MIDI file), ``POST
/predict/batch`` (multipart field ``files``, repeated), ``GET /health`` (liveness + readiness),
``GET /model`` (labels, thresholds, version, dataset lineage), the OpenAPI schema at
``/openapi.json`` and, when ``serve.docs`` is on, the Swagger UI at ``/docs`` from local assets.

Request path: ``ApiKeyGuard`` (when an API key is configured: 401 without it, ``/health`` open);
``BodyGuard`` refuses non-multipart bodies (415), bodies over the size limit (413, counted while
streaming, with or without ``Content-Length``) and bodies that do not fit the global in-flight byte
budget (503 ``overloaded`` with ``Retry-After``); each file is copied to a temporary file and
measured before it is decoded on a thread (``decode.decode_upload``), reserving its seconds of audio
in the same budget; its waveform goes through ``DynamicBatcher`` to the model's one inference
thread, and the scores come back with the labels above the tuned thresholds. Every refusal is
``{"error": {"reason", "detail", "file"}}`` with the status of ``decode.REASON_STATUS``.
Connection timeouts and the connection cap live in ``eno_hf.serving.server``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from eno_hf.errors import RejectedInput
from eno_hf.serving.batching import DynamicBatcher, InflightBudget, Overloaded
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
    uptime_s: float
    model: ModelRef
    batching: dict[str, Any]
    inflight: dict[str, Any] = Field(description="the global budget: bytes and audio seconds in flight, "
                                                 "limits, peaks, refusals")


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 413, 415, 422, 503)
}


# ----------------------------------------------------------------------------- helpers
def _error(reason: str, detail: str = "", file: str | None = None, status: int | None = None,
           retry_after_s: int = 5) -> JSONResponse:
    body = {"error": {"reason": reason, "detail": detail, "file": file}}
    headers = {}
    if reason == "overloaded":
        headers["Retry-After"] = str(int(retry_after_s))
    elif reason == "unauthorized":
        headers["WWW-Authenticate"] = 'Bearer realm="eno"'
    return JSONResponse(body, status_code=status or http_status(reason), headers=headers)


def load_api_key(path: str | Path) -> str:
    """The API key in ``path``: its first line, stripped of whitespace.

    Raises:
        ValueError: the file cannot be read, or its first line is empty (message names the file).
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the API key file ({exc})") from exc
    key = lines[0].strip() if lines else ""
    if not key:
        raise ValueError(f"{path}: the API key file is empty (put the key on its first line)")
    return key


class ApiKeyGuard:
    """ASGI middleware: every HTTP request except ``GET /health`` must carry the API key as
    ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``; otherwise 401 ``unauthorized``.
    Compared with ``hmac.compare_digest`` (constant time)."""

    OPEN_PATHS = ("/health",)

    def __init__(self, app: Any, key: str) -> None:
        self.app = app
        self.key = key.encode("utf-8")

    def authorized(self, headers: list[tuple[bytes, bytes]]) -> bool:
        """True when one of ``headers`` carries the key."""
        ok = False
        for name, value in headers:
            name = name.lower()
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                ok |= hmac.compare_digest(value[7:].strip(), self.key)
            elif name == b"x-api-key":
                ok |= hmac.compare_digest(value.strip(), self.key)
        return ok

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in self.OPEN_PATHS or self.authorized(scope.get("headers", [])):
            await self.app(scope, receive, send)
            return
        await _error("unauthorized", "send the API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
                     )(scope, receive, send)


class _TooLarge(Exception):
    pass


class _OverBudget(Exception):
    pass


class BodyGuard:
    """ASGI middleware for the ``/predict`` routes: 415 for a non-multipart request, 413 once the
    body passes ``limit_bytes(path)`` (streamed count, so chunked uploads are bounded too), 503
    ``overloaded`` when the body does not fit ``budget`` (reserved from ``Content-Length`` before
    reading, or chunk by chunk as it streams; released when the request ends)."""

    def __init__(self, app: Any, cfg: ServeConfig, budget: InflightBudget) -> None:
        self.app = app
        self.cfg = cfg
        self.budget = budget

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
        retry = self.cfg.retry_after_s
        reserved = 0
        if length is not None and length.isdigit():
            try:
                self.budget.reserve_bytes(int(length))
                reserved = int(length)
            except Overloaded as exc:
                await _error("overloaded", str(exc), retry_after_s=retry)(scope, receive, send)
                return
        seen = 0
        failure: tuple[str, str] | None = None
        replaced = False

        async def counting_receive() -> dict:
            nonlocal seen, failure, reserved
            message = await receive()
            if message["type"] == "http.request":
                chunk = len(message.get("body", b""))
                seen += chunk
                if seen > limit:
                    failure = ("too_large", f"request body over {limit} bytes")
                    raise _TooLarge(failure[1])
                if seen > reserved:  # no (or a wrong) Content-Length: reserve as it streams
                    try:
                        self.budget.reserve_bytes(seen - reserved)
                    except Overloaded as exc:
                        failure = ("overloaded", str(exc))
                        raise _OverBudget(failure[1]) from exc
                    reserved = seen
            return message

        async def guarded_send(message: dict) -> None:
            # the framework may turn our exception into its own 400: answer 413 / 503 instead
            nonlocal replaced
            if failure is not None:
                if message["type"] == "http.response.start" and not replaced:
                    replaced = True
                    await _error(*failure, retry_after_s=retry)(scope, _no_body, send)
                return
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except (_TooLarge, _OverBudget):
            if not replaced and failure is not None:
                await _error(*failure, retry_after_s=retry)(scope, _no_body, send)
        finally:
            self.budget.release_bytes(reserved)


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

    budget = InflightBudget(int(cfg.max_inflight_mb * 2**20), cfg.max_inflight_audio_s)
    decode_slots = asyncio.Semaphore(cfg.decode_workers)
    api_key = load_api_key(cfg.api_key_file) if cfg.api_key_file is not None else None
    assets = docs_assets(cfg) if cfg.docs else None
    app = FastAPI(title="eno", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description=f"Audio tagging with the eno model {ref.name} ({ref.version or 'unregistered'}).")
    app.state.batcher = batcher
    app.state.budget = budget
    app.state.predictor = predictor
    app.state.config = cfg

    @app.exception_handler(RejectedInput)
    async def _rejected(_: Request, exc: RejectedInput) -> JSONResponse:
        return _error(exc.reason, exc.detail, exc.path, retry_after_s=cfg.retry_after_s)

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
        reserved = 0.0

        def reserve(seconds: float) -> None:  # on the decoding thread, before decoding
            nonlocal reserved
            try:
                budget.reserve_seconds(seconds)
            except Overloaded as exc:
                raise RejectedInput(name, "overloaded", str(exc)) from exc
            reserved = seconds

        try:
            await upload.seek(0)
            async with decode_slots:
                samples = await run_in_threadpool(decode_upload, upload.file, name, predictor.sample_rate, cfg,
                                                  upload.content_type, reserve)
            actual = len(samples) / predictor.sample_rate
            if actual > reserved:  # the header understated the length: account for what was decoded
                budget.reserve_seconds(actual - reserved, force=True)
                reserved = actual
            t1 = time.perf_counter()
            try:
                scores, timing = await batcher.submit(samples)
            except Overloaded as exc:
                raise RejectedInput(name, "overloaded", str(exc)) from exc
            except ValueError as exc:  # the feature extractor refused the waveform
                raise RejectedInput(name, "undecodable", str(exc)) from exc
        finally:
            budget.release_seconds(reserved)
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
        body = Health(live=True, ready=batcher.running, uptime_s=time.time() - started_at,
                      model=ref, batching={**batcher.stats.as_dict(), "max_batch_size": cfg.max_batch_size,
                                           "max_wait_ms": cfg.max_wait_ms}, inflight=budget.as_dict())
        return JSONResponse(body.model_dump(), status_code=200 if batcher.running else 503)

    @app.get("/model", summary="Labels, thresholds, version and dataset lineage of the served model")
    async def model() -> dict[str, Any]:
        return {**info, "limits": cfg.model_dump(mode="json", exclude={"host", "port", "api_key_file",
                                                                       "docs_assets_dir"})}

    if assets is not None:
        from fastapi.openapi.docs import get_swagger_ui_html
        from starlette.staticfiles import StaticFiles

        app.mount("/docs-assets", StaticFiles(directory=str(assets)), name="docs-assets")

        @app.get("/docs", include_in_schema=False)
        async def docs() -> Any:
            return get_swagger_ui_html(openapi_url="/openapi.json", title="eno - API",
                                       swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                       swagger_css_url="/docs-assets/swagger-ui.css", swagger_favicon_url="data:,")

    app.add_middleware(BodyGuard, cfg=cfg, budget=budget)
    if api_key is not None:
        app.add_middleware(ApiKeyGuard, key=api_key)  # added last: runs first
    return app


SWAGGER_FILES = ("swagger-ui-bundle.js", "swagger-ui.css")


def docs_assets(cfg: ServeConfig) -> Path:
    """The folder with the Swagger UI assets for ``/docs``: ``cfg.docs_assets_dir``, else the one of
    the installed ``swagger-ui-bundle`` package. Nothing is ever loaded from a CDN.

    Raises:
        ValueError: no folder holding ``swagger-ui-bundle.js`` and ``swagger-ui.css`` (names what is missing).
    """
    candidates: list[Path] = []
    if cfg.docs_assets_dir is not None:
        candidates.append(Path(cfg.docs_assets_dir))
    else:
        try:
            import swagger_ui_bundle  # type: ignore[import-not-found]

            candidates.append(Path(getattr(swagger_ui_bundle, "swagger_ui_path")))
        except (ImportError, AttributeError):
            pass
    for folder in candidates:
        if all((folder / f).is_file() for f in SWAGGER_FILES):
            return folder
    where = str(candidates[0]) if candidates else "no serve.docs_assets_dir and no swagger-ui-bundle package"
    raise ValueError(f"serve.docs: Swagger UI assets {', '.join(SWAGGER_FILES)} not found ({where}); "
                     "set serve.docs_assets_dir or turn serve.docs off")
