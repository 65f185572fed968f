"""``ServeConfig``: limits, timeouts and batching of ``eno serve`` (the ``serve:`` section of ``Settings``).

Set in YAML (``serve: {max_batch_size: 8}``) or with ``--set serve.max_wait_ms=5``. Every number must
be finite and inside its bounds: ``serve.max_wait_ms=.inf`` is refused when the configuration loads
(exit 2 naming the key), as is any value outside the ranges below.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class ServeConfig(BaseModel):
    """HTTP service settings.

    Batching (Triton-style dynamic batching: requests arriving within ``max_wait_ms`` of the first
    waiting one are run as one forward pass of at most ``max_batch_size`` clips) and input limits;
    an input outside a limit is refused with a 4xx JSON error before any model work. The connection
    settings (timeouts, connection cap) are applied by ``eno_hf.serving.server``; the in-flight budget
    (bytes and decoded seconds across all requests) answers 503 ``overloaded`` beyond it.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_batch_size: int = Field(8, ge=1, le=1024)
    """Clips per forward pass (1 = no batching)."""
    max_wait_ms: float = Field(10.0, ge=0.0, le=10_000.0)
    """How long the first queued clip waits for others to join its batch, in milliseconds."""
    max_upload_mb: float = Field(50.0, gt=0.0, le=4096.0)
    """Largest accepted file (and, times ``max_files``, request body) in MiB; larger: HTTP 413."""
    max_duration_s: float = Field(900.0, gt=0.0, le=86_400.0)
    """Longest accepted audio in seconds (header duration, then decoded length); longer: 422."""
    min_duration_s: float = Field(1.0, ge=0.0, le=3600.0)
    """Shortest accepted audio in seconds; shorter: 422 ``too_short``. The default is the build's
    (``dataset.audio.min_duration_s``), so a clip the dataset build would take is served too."""
    max_sample_rate_hz: int = Field(96_000, gt=0, le=768_000)
    """Highest accepted native sample rate (a 192 kHz upload is refused: 12x the decode work of 16 kHz).
    A service limit: ``eno build`` and ``eno tag`` read any rate (their inputs are the user's own files)."""
    max_channels: int = Field(8, ge=1, le=64)
    """Most channels accepted (mixed down to mono)."""

    max_files: int = Field(16, ge=1, le=1024)
    """Most files in one ``/predict/batch`` request; more: 422 ``too_many_files``."""
    queue_size: int = Field(256, ge=1, le=100_000)
    """Clips waiting for the model at most; beyond that requests get 503 ``overloaded``."""
    torch_threads: int | None = Field(None, ge=1, le=1024)
    """``torch.set_num_threads`` for the inference thread (None = PyTorch's default)."""

    # --- global budget of work in flight (all requests together) ---
    max_inflight_mb: float = Field(1024.0, gt=0.0, le=65_536.0)
    """Request bodies being received or held, all requests together, in MiB; a request that would go
    beyond it gets 503 ``overloaded`` (with ``Retry-After``). Must hold one largest request
    (``max_files x max_upload_mb``) for that request to ever be accepted."""
    max_inflight_audio_s: float = Field(7200.0, gt=0.0, le=864_000.0)
    """Seconds of audio being decoded or waiting for / in inference, all requests together (each file
    reserves its length measured before decoding: header duration, MIDI length); beyond it: 503
    ``overloaded``. Should be at least ``max_duration_s`` (else a longest file is always refused)."""
    decode_workers: int = Field(2, ge=1, le=256)
    """Files decoded at the same time, all requests together (each holds a thread, the GIL at times,
    and its decoded samples); the others wait their turn. About the number of CPU cores."""
    retry_after_s: int = Field(5, ge=1, le=3600)
    """``Retry-After`` header (seconds) on 503 ``overloaded`` answers."""

    # --- connections (eno_hf.serving.server; uvicorn settings where uvicorn has them) ---
    header_timeout_s: float = Field(10.0, gt=0.0, le=300.0)
    """A connection must deliver a complete request line + headers within this many seconds of
    opening (or of its previous response); otherwise it is closed. Trickled bytes do not extend it."""
    body_timeout_s: float = Field(120.0, gt=0.0, le=3600.0)
    """A request body must be received completely within this many seconds of its headers;
    otherwise the connection is closed (a 1-byte/s upload is cut off)."""
    keep_alive_s: int = Field(5, ge=1, le=300)
    """Idle keep-alive connections are closed after this many seconds (uvicorn ``timeout_keep_alive``)."""
    max_connections: int = Field(256, ge=1, le=65_536)
    """Open connections at most: beyond it new connections are closed at once, and uvicorn's
    ``limit_concurrency`` answers 503 when it is reached."""
    max_header_bytes: int = Field(16_384, ge=1024, le=1_048_576)
    """Largest request line + headers in bytes (uvicorn ``h11_max_incomplete_event_size``); larger: 400."""
    graceful_shutdown_s: int = Field(30, ge=1, le=3600)
    """On SIGTERM, requests in progress get this many seconds to finish (uvicorn ``timeout_graceful_shutdown``)."""

    # --- access ---
    api_key_file: Path | None = None
    """File holding the API key (first line, stripped); when set, every route except ``/health``
    needs ``Authorization: Bearer <key>`` or ``X-API-Key: <key>`` (else 401 ``unauthorized``).
    Also ``eno serve --api-key-file`` or the ``ENO_API_KEY_FILE`` environment variable."""
    docs: bool = False
    """Serve the Swagger UI at ``/docs``. Off by default: its assets must come from
    ``docs_assets_dir`` or the installed ``swagger-ui-bundle`` package, never from a CDN."""
    docs_assets_dir: Path | None = None
    """Folder holding ``swagger-ui-bundle.js`` and ``swagger-ui.css`` for ``/docs``."""
