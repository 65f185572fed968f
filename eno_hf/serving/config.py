"""``ServeConfig``: limits and batching of ``eno serve`` (the ``serve:`` section of ``Settings``).

Set in YAML (``serve: {max_batch_size: 8}``) or with ``--set serve.max_wait_ms=5``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ServeConfig(BaseModel):
    """HTTP service settings.

    Batching (Triton-style dynamic batching: requests arriving within ``max_wait_ms`` of the first
    waiting one are run as one forward pass of at most ``max_batch_size`` clips) and input limits;
    an input outside a limit is refused with a 4xx JSON error before any model work.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_batch_size: int = Field(8, ge=1)
    """Clips per forward pass (1 = no batching)."""
    max_wait_ms: float = Field(10.0, ge=0.0)
    """How long the first queued clip waits for others to join its batch, in milliseconds."""
    max_upload_mb: float = Field(50.0, gt=0.0)
    """Largest accepted file (and, times ``max_files``, request body) in MiB; larger: HTTP 413."""
    max_duration_s: float = Field(900.0, gt=0.0)
    """Longest accepted audio in seconds (header duration, then decoded length); longer: 422."""
    min_duration_s: float = Field(0.5, ge=0.0)
    """Shortest accepted audio in seconds; shorter: 422 ``too_short``."""
    max_sample_rate_hz: int = Field(96_000, gt=0)
    """Highest accepted native sample rate (a 192 kHz upload is refused: 12x the decode work of 16 kHz)."""
    max_channels: int = Field(8, ge=1)
    """Most channels accepted (mixed down to mono)."""
    silence_peak_dbfs: float = -80.0
    """A clip whose sample peak is below this level is refused as ``silent`` (scores would be noise)."""
    max_files: int = Field(16, ge=1)
    """Most files in one ``/predict/batch`` request; more: 422 ``too_many_files``."""
    queue_size: int = Field(256, ge=1)
    """Clips waiting for the model at most; beyond that requests get 503 ``overloaded``."""
    torch_threads: int | None = None
    """``torch.set_num_threads`` for the inference thread (None = PyTorch's default)."""
