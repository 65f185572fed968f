"""Errors shared across eno. Every rejected input carries the file and a short reason code.

The reason codes (``REASONS``, described in ``REASON_DESCRIPTIONS`` and in ``docs/errors.md``) are
the same in ``eno build`` (QC report ``rejected``), ``eno tag`` (``{"error": {"reason", ...}}``
records) and the HTTP service: they all go through ``eno_hf.audio.validate``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["RejectedInput", "AudioDecodeError", "MetadataError", "NoUsableInput", "rejected_as",
           "REASON_DESCRIPTIONS"]

REASON_DESCRIPTIONS: dict[str, str] = {
    "missing_file": "the file does not exist (or a metadata row names no file)",
    "empty": "zero bytes, or a valid header with no audio frame / no samples",
    "undecodable": "no decoder can read it: truncated, garbage, text/image renamed to audio, "
                   "corrupt MIDI",
    "unsupported": "not an audio/MIDI file by its suffix, a directory named like one, or not a "
                   "regular file (FIFO, socket, device; never opened)",
    "io_error": "the file exists but cannot be read (permission denied, I/O error), or a folder "
                "the walk cannot list",
    "outside_root": "the path resolves (after symlinks) outside the configured audio root(s) and "
                    "allowed roots; the file is not opened",
    "too_short": "shorter than audio.min_duration_s, or too short for one segment",
    "silent": "RMS below audio.silence_threshold_dbfs, or every loudness block below -70 LUFS",
    "nan_inf": "the decoded signal contains NaN or infinite samples",
    "duplicate_content": "the same audio bytes (and crop) as an earlier recording id",
    "no_metadata": "an audio file under the audio root that no metadata row names",
    "bad_metadata": "a metadata row that cannot be parsed (bad field count, number, encoding, "
                    "duplicate id) or a metadata file unusable as a whole",
    "internal_error": "an unexpected error while processing this input (a bug: please report it)",
    # embeddings-only inputs (``eno_hf.embeddings``: .pt/.npy tensors + metadata.jsonl)
    "bad_shape": "an embedding tensor whose shape is not (frames, dim) / (dim,) with the dataset's dim",
    "bad_dtype": "an embedding tensor that is not floating point (or cannot be read without unpickling)",
    # service limits (``validate.Limits``, the HTTP service)
    "too_long": "longer than audio.max_duration_s or the service's max_duration_s (measured while "
                "decoding, not from the header); a MIDI file beyond audio.midi.max_duration_s / "
                "max_notes (checked before rendering)",
    "unsupported_format": "more channels or a higher sample rate than the service accepts",
    # HTTP requests only (``eno serve``; see docs/serving.md)
    "too_large": "the upload is larger than the service's max_upload_mb",
    "unsupported_media_type": "the multipart part's content type is not audio/MIDI",
    "bad_request": "the request is malformed (missing field, invalid base64, ...)",
    "too_many_files": "more files in one request than the service's max_files",
    "overloaded": "the service's queue or its budget of bytes / audio seconds in flight is full; "
                  "retry later (HTTP 503 with Retry-After)",
    "unauthorized": "the service needs an API key and the request carries none or a wrong one (HTTP 401)",
}
"""Reason code -> meaning (the table of ``docs/errors.md``)."""


class RejectedInput(ValueError):
    """An input that cannot be used; batch runs record it in the QC report and go on.

    Attributes:
        path: the offending file (or metadata file), as given or as resolved.
        reason: short machine-readable code, one of ``REASONS``.
        detail: human-readable explanation.
    """

    REASONS = tuple(REASON_DESCRIPTIONS)

    def __init__(self, path: str | Path | None, reason: str, detail: str = "") -> None:
        self.path = str(path) if path is not None else None
        self.reason = reason
        self.detail = detail
        super().__init__(f"{self.path}: {reason}" + (f" ({detail})" if detail else ""))

    def to_dict(self) -> dict[str, str | None]:
        """``{"path", "reason", "detail"}`` (the record shape of tag/serve errors)."""
        return {"path": self.path, "reason": self.reason, "detail": self.detail}


@contextmanager
def rejected_as(shown: str | Path | None) -> Iterator[None]:
    """Name every rejection raised inside after the input as the caller knows it.

    A ``RejectedInput`` (any subclass) is raised again as ``RejectedInput(shown, reason, detail)``;
    an ``OSError`` as ``RejectedInput(shown, "io_error", "{type}: {message}")``; the original is
    chained (``__cause__``). Anything else passes through.

    Example:
        >>> with rejected_as("upload.wav"):
        ...     check_file(tmp_path)   # doctest: +SKIP
    """
    try:
        yield
    except RejectedInput as exc:
        raise RejectedInput(shown, exc.reason, exc.detail) from exc
    except OSError as exc:
        raise RejectedInput(shown, "io_error", f"{type(exc).__name__}: {exc}") from exc


class AudioDecodeError(RejectedInput):
    """The file could not be decoded as audio (zero bytes, truncated, not audio, unsupported)."""

    def __init__(self, path: str | Path, detail: str = "", reason: str = "undecodable") -> None:
        super().__init__(path, reason, detail)


class MetadataError(RejectedInput):
    """A metadata file unusable as a whole (reason ``bad_metadata`` or ``missing_file``).

    The message is one line naming the file, the 1-based line and the column (when known), e.g.
    ``meta.csv:1: column 'Song': configured id_column not in header [...]``. The CLI prints it and
    exits with status 2.

    Attributes:
        line: 1-based line number (None when not applicable).
        column: column name (CSV) or 1-based character column (JSON), or None.
    """

    def __init__(self, path: str | Path | None, detail: str, line: int | None = None,
                 column: str | int | None = None, reason: str = "bad_metadata") -> None:
        self.line = line
        self.column = column
        super().__init__(path, reason, detail)

    def one_line(self) -> str:
        """``{file}:{line}: column {column}: {detail}`` on one line."""
        where = str(self.path)
        if self.line is not None:
            where += f":{self.line}"
        col = f" column {self.column!r}:" if self.column is not None else ""
        return f"{where}:{col} {self.detail}".replace("\n", " ")

    def __str__(self) -> str:
        return self.one_line()


class NoUsableInput(ValueError):
    """A build found no usable recording at all (every input rejected, or none given)."""
