"""Errors shared across eno. Every rejected input carries the file and a short reason code."""

from __future__ import annotations

from pathlib import Path


class RejectedInput(ValueError):
    """An input that cannot be used; batch runs record it in the QC report and go on.

    Attributes:
        path: the offending file (or metadata file), as given.
        reason: short machine-readable code, one of ``REASONS``.
        detail: human-readable explanation.
    """

    REASONS = (
        "undecodable", "empty", "too_short", "silent", "nan_inf", "duplicate_content",
        "missing_file", "no_metadata", "bad_metadata", "io_error", "bad_shape", "bad_dtype",
    )

    def __init__(self, path: str | Path | None, reason: str, detail: str = "") -> None:
        self.path = str(path) if path is not None else None
        self.reason = reason
        self.detail = detail
        super().__init__(f"{self.path}: {reason}" + (f" ({detail})" if detail else ""))


class AudioDecodeError(RejectedInput):
    """The file could not be decoded as audio (zero bytes, truncated, not audio, unsupported)."""

    def __init__(self, path: str | Path, detail: str = "", reason: str = "undecodable") -> None:
        super().__init__(path, reason, detail)
