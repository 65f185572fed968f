"""Uploaded bytes -> mono float32 waveform, or ``RejectedInput`` with a reason code.

``decode_upload`` is the ONE place ``eno serve`` (and the ClearML Serving preprocess) turns an
upload into audio; ``REASON_STATUS`` is the ONE table from a rejection reason to an HTTP status.
The signal checks are the shared ones of build and tag (``eno_hf.audio.validate``); the service
adds its own limits on the upload (content type, size, channels, rate, duration).

Uploads are written to a private temporary file (only the client's *extension*, from an allow-list,
is kept, so soundfile/FFmpeg/the MIDI renderer pick the right decoder) and decoded with
``eno_hf.audio.io.load_audio`` (streamed, mixed down, resampled with soxr), the same decoder as
``eno tag``. No path from the request is ever opened.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from eno_hf.audio.validate import check_loudness, check_signal
from eno_hf.config import AudioConfig, SourceConfig
from eno_hf.errors import RejectedInput
from eno_hf.serving.config import ServeConfig

MIDI_EXTENSIONS = (".mid", ".midi")
ALLOWED_EXTENSIONS = tuple(sorted({*SourceConfig().extensions, *MIDI_EXTENSIONS, ".aif", ".aiff", ".wma"}))
"""Client file extensions kept on the temporary file (anything else: no extension, content sniffed)."""

MIN_BYTES_PER_S = 1000.0
"""Bytes per second of the most compressed audio expected (8 kb/s): an upload whose header tells no
duration reserves ``size / MIN_BYTES_PER_S`` seconds of the in-flight budget (at most ``max_duration_s``)."""

MIDI_CONTENT_TYPES = ("audio/midi", "audio/x-midi", "audio/mid", "application/x-midi", "audio/sp-midi")
GENERIC_CONTENT_TYPES = ("", "application/octet-stream", "binary/octet-stream", "video/mp4", "video/ogg",
                         "video/webm", "application/ogg")
"""Part content types accepted besides ``audio/*`` (clients send these for audio files)."""

REASON_STATUS: dict[str, int] = {
    "bad_request": 400,
    "missing_file": 400,
    "too_large": 413,
    "unsupported_media_type": 415,
    "empty": 422,
    "undecodable": 422,
    "too_short": 422,
    "too_long": 422,
    "silent": 422,
    "nan_inf": 422,
    "unsupported_format": 422,
    "unsupported": 415,
    "outside_root": 400,
    "too_many_files": 422,
    "overloaded": 503,
    "unauthorized": 401,
    "io_error": 500,
}
"""HTTP status per ``RejectedInput.reason`` (unknown reasons: 422)."""


def http_status(reason: str) -> int:
    """The HTTP status for a rejection ``reason`` (``REASON_STATUS``, default 422)."""
    return REASON_STATUS.get(reason, 422)


def check_content_type(content_type: str | None, filename: str | None) -> None:
    """Refuse a multipart part whose declared type is clearly not audio/MIDI.

    Accepted: missing, ``audio/*``, MIDI types, ``application/octet-stream`` and the container
    types in ``GENERIC_CONTENT_TYPES``.

    Raises:
        RejectedInput: reason ``unsupported_media_type`` (HTTP 415).
    """
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    if ctype.startswith("audio/") or ctype in MIDI_CONTENT_TYPES or ctype in GENERIC_CONTENT_TYPES:
        return
    raise RejectedInput(filename, "unsupported_media_type",
                        f"content type {ctype!r} is not audio (send audio/* or application/octet-stream)")


def _suffix(filename: str | None) -> str:
    suffix = Path(filename or "").suffix.lower()
    return suffix if suffix in ALLOWED_EXTENSIONS else ""


def decode_upload(data: bytes | BinaryIO, filename: str | None, sample_rate: int, limits: ServeConfig | None = None,
                  content_type: str | None = None, reserve: Callable[[float], None] | None = None) -> np.ndarray:
    """Decode an uploaded audio or MIDI file and check it against the service limits.

    The length is measured before anything is expanded: the header duration of audio, the playing
    time of MIDI (``eno_hf.audio.io.audio_info``, nothing rendered); over ``max_duration_s`` the
    upload is refused before decoding or rendering.

    Args:
        data: the file's bytes, or a readable binary file object (copied to the temporary file in
            1-MiB chunks, never read whole into memory).
        filename: the client's file name (only its extension is used; it names the file in errors).
        sample_rate: output rate in Hz (the model's).
        limits: ``ServeConfig`` (size, duration, rate, channels, silence); default ``ServeConfig()``.
        content_type: the part's declared content type (checked by ``check_content_type``).
        reserve: called once with the measured duration in seconds (when the header tells none:
            ``size / MIN_BYTES_PER_S``, at most ``max_duration_s``) before decoding; it may refuse by raising (e.g. ``RejectedInput``
            ``overloaded`` from the in-flight budget).

    Returns:
        ``(samples,)`` float32 mono at ``sample_rate``, finite, not silent.

    Raises:
        RejectedInput: ``unsupported_media_type``, ``empty`` (no bytes, or no audio frame),
            ``too_large`` (over ``max_upload_mb``), ``undecodable`` (garbage, text, truncated header),
            ``unsupported_format`` (over ``max_channels`` / ``max_sample_rate_hz``), ``too_long`` /
            ``too_short`` (duration limits), ``nan_inf`` (non-finite samples), ``silent`` (the
            shared silence check), ``io_error`` (the temporary file could not be written), or what
            ``reserve`` raised.
    """
    from eno_hf.audio.io import audio_info, load_audio

    cfg = limits or ServeConfig()
    name = filename or "upload"
    check_content_type(content_type, name)
    limit = int(cfg.max_upload_mb * 2**20)
    if isinstance(data, (bytes, bytearray, memoryview)) and len(data) > limit:
        raise RejectedInput(name, "too_large", f"{len(data)} bytes > max_upload_mb={cfg.max_upload_mb}")
    suffix = _suffix(filename)
    fd, tmp = tempfile.mkstemp(prefix="eno-upload-", suffix=suffix)
    try:
        try:
            with os.fdopen(fd, "wb") as fh:
                if isinstance(data, (bytes, bytearray, memoryview)):
                    fh.write(data)
                else:
                    shutil.copyfileobj(data, fh, 1 << 20)
                size = fh.tell()
        except OSError as exc:
            raise RejectedInput(name, "io_error", f"could not buffer the upload: {exc}") from exc
        if not size:
            raise RejectedInput(name, "empty", "the upload has no bytes")
        if size > limit:
            raise RejectedInput(name, "too_large", f"{size} bytes > max_upload_mb={cfg.max_upload_mb}")
        try:
            info = audio_info(tmp)
        except RejectedInput:
            info = None  # load_audio below gives the precise reason
        if info is not None:
            if info.format != "midi" and (info.channels > cfg.max_channels
                                          or info.sample_rate > cfg.max_sample_rate_hz):
                raise RejectedInput(name, "unsupported_format",
                                    f"{info.channels} channels at {info.sample_rate} Hz; limits: "
                                    f"{cfg.max_channels} channels, {cfg.max_sample_rate_hz} Hz")
            if info.duration_s > cfg.max_duration_s:
                raise RejectedInput(name, "too_long",
                                    f"{info.duration_s:.1f} s > max_duration_s={cfg.max_duration_s}")
        if reserve is not None:
            known = info is not None and info.duration_s > 0
            # no header duration: what the file could hold at 8 kb/s (the lowest common MP3/Opus rate)
            guess = min(float(cfg.max_duration_s), size / MIN_BYTES_PER_S)
            reserve(float(info.duration_s) if known else guess)
        try:
            samples, _ = load_audio(tmp, sample_rate=sample_rate, mono=True,
                                    max_duration_s=cfg.max_duration_s)  # measured, not the header
        except RejectedInput as exc:
            raise RejectedInput(name, exc.reason, exc.detail.replace(tmp, name)) from exc
        except Exception as exc:  # noqa: BLE001 - any decoder failure is the upload's fault
            raise RejectedInput(name, "undecodable", f"{type(exc).__name__}: {exc}".replace(tmp, name)) from exc
    finally:
        Path(tmp).unlink(missing_ok=True)
    return check_waveform(samples, sample_rate, name, cfg)


def check_waveform(samples: np.ndarray, sample_rate: int, name: str, limits: ServeConfig) -> np.ndarray:
    """Check decoded mono audio ``(samples,)`` at ``sample_rate`` Hz: the shared signal checks of
    build and tag (``eno_hf.audio.validate.check_signal`` / ``check_loudness``: same reasons, same
    messages; minimum duration ``serve.min_duration_s``, silence below
    ``AudioConfig.silence_threshold_dbfs`` RMS or every BS.1770 block gated), then the service's own
    ``max_duration_s``.

    Returns:
        ``samples`` (float32) unchanged.

    Raises:
        RejectedInput: ``empty``, ``nan_inf``, ``too_short``, ``silent`` or ``too_long``.
    """
    from eno_hf.audio.conditioning import integrated_loudness

    samples = np.asarray(samples, dtype=np.float32)
    check_signal(samples, sample_rate, AudioConfig(min_duration_s=limits.min_duration_s), path=name)
    check_loudness(integrated_loudness(samples, sample_rate), path=name)
    duration = samples.shape[0] / float(sample_rate)
    if duration > limits.max_duration_s:
        raise RejectedInput(name, "too_long", f"{duration:.1f} s > max_duration_s={limits.max_duration_s}")
    return samples
