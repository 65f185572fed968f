"""The one input validator of eno: the same checks, reason codes and messages in ``eno build``,
``eno tag`` and the HTTP service.

Three layers, each usable alone:

- ``confine(raw, roots)``: a path from metadata, a path template, a folder walk or a request
  resolves (``Path.resolve``: ``..`` and symlinks followed) inside one of ``roots``, else
  ``RejectedInput(resolved, "outside_root")``. Nothing is opened or even ``stat``-ed outside.
- ``check_file(path)``: exists (``missing_file``), is not a directory and has a supported suffix
  (``unsupported``), is readable (``io_error``), is not zero bytes (``empty``).
- ``check_signal(samples, sample_rate, cfg)``: decoded mono signal is not empty (``empty``), all
  finite (``nan_inf``), at least ``cfg.min_duration_s`` long (``too_short``), not digital silence
  (``silent``: RMS below ``cfg.silence_threshold_dbfs``; ``check_loudness``: every BS.1770 block
  below the -70 LUFS gate).

``validate_audio(source, filename=..., cfg=..., roots=...)`` runs all three plus decoding
(``eno_hf.audio.io.load_audio``: undecodable / empty files, MIDI rendered with FluidSynth) and
returns a ``ValidatedAudio``; ``source`` is a path or the bytes of an upload (written to a private
temporary file named only by the upload's suffix, removed afterwards). The build uses the same
functions: ``eno_hf.data.sources`` calls ``confine`` and the suffix checks, ``load_audio`` calls
``check_file``, ``eno_hf.audio.conditioning.condition`` calls ``check_signal``/``check_loudness``.

Example (the HTTP service)::

    >>> from eno_hf.audio.validate import validate_audio
    >>> from eno_hf.errors import RejectedInput
    >>> try:
    ...     v = validate_audio(request_bytes, filename="song.mp3", sample_rate=16000)
    ... except RejectedInput as exc:
    ...     return 422, exc.to_dict()          # {"path", "reason", "detail"}
    >>> v.samples.shape, v.samples.dtype, v.sample_rate, v.info.duration_s
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from eno_hf.config import AudioConfig, SourceConfig
from eno_hf.errors import RejectedInput

__all__ = ["ValidatedAudio", "SourceInfo", "supported_extensions", "is_supported", "confine",
           "check_file", "check_signal", "check_loudness", "validate_audio"]

_MIDI_SUFFIXES = (".mid", ".midi")


def supported_extensions(extensions: Iterable[str] | None = None) -> frozenset[str]:
    """Lower-case suffixes (with the dot) eno decodes: ``extensions`` (default: the dataset
    source default list, ``SourceConfig().extensions``) plus ``.mid``/``.midi``."""
    exts = SourceConfig().extensions if extensions is None else extensions
    out = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in exts}
    return frozenset(out | set(_MIDI_SUFFIXES))


def is_supported(path: str | Path, extensions: Iterable[str] | None = None) -> bool:
    """Whether ``path``'s suffix (case-insensitive) is one eno decodes."""
    return Path(path).suffix.lower() in supported_extensions(extensions)


def _resolved_roots(roots: Iterable[str | Path]) -> list[Path]:
    return [Path(r).expanduser().resolve() for r in roots]


def confine(raw: str | Path, roots: Sequence[str | Path], base: str | Path | None = None) -> Path:
    """``raw`` as an absolute path, checked to resolve inside one of ``roots``.

    Args:
        raw: a path from metadata / a template / a walk; relative paths are joined to ``base``
            (default: the first root).
        roots: allowed folders (the audio root first, then ``SourceConfig.allowed_roots``); an
            empty sequence allows nothing.
        base: folder relative paths are relative to.

    Returns:
        The lexical absolute path (``base / raw`` or ``raw``; symlinks not replaced, so dataset
        ``path`` columns keep the names users gave).

    Raises:
        RejectedInput: ``outside_root`` naming the resolved path; nothing is opened.
    """
    p = Path(raw).expanduser()
    if not p.is_absolute():
        if base is None and not roots:
            raise RejectedInput(p, "outside_root", "relative path and no audio root configured")
        p = Path(base if base is not None else roots[0]).expanduser().absolute() / p
    resolved = p.resolve()
    allowed = _resolved_roots(roots)
    if not any(resolved == r or resolved.is_relative_to(r) for r in allowed):
        shown = ", ".join(str(r) for r in allowed) or "(none)"
        raise RejectedInput(resolved, "outside_root",
                            f"{raw} resolves to {resolved}, outside the audio root(s) {shown}; "
                            "add its folder to dataset.source.allowed_roots to allow it")
    return p


def check_file(path: str | Path, extensions: Iterable[str] | None = None,
               check_suffix: bool = False) -> Path:
    """Cheap checks before decoding (one ``stat`` and one ``access``; the file is not read).

    Raises:
        RejectedInput: ``missing_file`` (does not exist), ``unsupported`` (a directory, or
            ``check_suffix`` and the suffix is not supported), ``io_error`` (not readable by this
            user), ``empty`` (zero bytes).
    """
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise RejectedInput(path, "missing_file", "file not found") from None
    except OSError as exc:
        raise RejectedInput(path, "io_error", f"cannot stat: {exc.strerror or exc}") from exc
    if path.is_dir():
        raise RejectedInput(path, "unsupported", "a directory, not an audio file")
    if not path.is_file():
        raise RejectedInput(path, "unsupported", "not a regular file")
    if check_suffix and not is_supported(path, extensions):
        raise RejectedInput(path, "unsupported",
                            f"suffix {path.suffix or '(none)'!r} is not a supported audio/MIDI "
                            f"format ({', '.join(sorted(supported_extensions(extensions)))})")
    if not os.access(path, os.R_OK):
        raise RejectedInput(path, "io_error", "permission denied (not readable by this user)")
    if st.st_size == 0:
        raise RejectedInput(path, "empty", "zero-byte file")
    return path


def check_signal(samples: np.ndarray, sample_rate: int, cfg: AudioConfig,
                 path: str | Path | None = None) -> None:
    """Reject a decoded mono signal that cannot be used.

    Args:
        samples: ``(n,)`` float mono signal at ``sample_rate`` Hz (before loudness gain).
        cfg: ``min_duration_s`` (s), ``silence_threshold_dbfs`` (dBFS RMS).
        path: names the file in the error.

    Raises:
        RejectedInput: ``empty`` (no samples), ``nan_inf`` (any NaN/Inf sample), ``too_short``
            (< ``cfg.min_duration_s``), ``silent`` (RMS < ``cfg.silence_threshold_dbfs``).
    """
    x = np.asarray(samples)
    if x.size == 0:
        raise RejectedInput(path, "empty", "no samples")
    finite = np.isfinite(x)
    if not finite.all():
        bad = int(np.count_nonzero(~finite))
        raise RejectedInput(path, "nan_inf", f"{bad} non-finite samples")
    duration_s = x.shape[0] / sample_rate
    if duration_s < cfg.min_duration_s:
        raise RejectedInput(path, "too_short",
                            f"{duration_s:.3f} s < min_duration_s={cfg.min_duration_s}")
    ms = float(np.mean(np.square(x, dtype=np.float64)))
    rms = 10.0 * np.log10(max(ms, 1e-24))
    if rms < cfg.silence_threshold_dbfs:
        raise RejectedInput(path, "silent", f"RMS {rms:.1f} dBFS < silence_threshold_dbfs="
                                            f"{cfg.silence_threshold_dbfs}")


def check_loudness(lufs: float, path: str | Path | None = None) -> None:
    """Reject a signal whose integrated loudness (BS.1770) is undefined (``-inf``: every block below
    the -70 LUFS absolute gate). Raises ``RejectedInput("silent")``."""
    if not np.isfinite(lufs):
        raise RejectedInput(path, "silent", "all loudness blocks below the -70 LUFS gate")


@dataclass(frozen=True)
class SourceInfo:
    """Facts about the input before resampling/mix-down.

    Attributes:
        sample_rate: native rate (Hz); MIDI: the rendering rate.
        channels: channel count of the source.
        duration_s: decoded duration at the output rate (s).
        format: codec/container (``"mp3"``, ``"wav"``, ``"midi"``, ...).
        size_bytes: file size.
    """

    sample_rate: int
    channels: int
    duration_s: float
    format: str
    size_bytes: int


@dataclass
class ValidatedAudio:
    """A decoded input that passed every check.

    Attributes:
        samples: ``(n,)`` float32 mono at ``sample_rate``, finite, as decoded (not loudness
            normalized; see ``eno_hf.audio.conditioning.condition``).
        sample_rate: Hz.
        info: ``SourceInfo``.
        path: the file decoded (for uploads: the given filename).
        loudness_lufs: integrated loudness (BS.1770-4, pyloudnorm).
        warnings: decoder notes (e.g. mpg123 "Illegal Audio-MPEG-Header", partial decode).
    """

    samples: np.ndarray
    sample_rate: int
    info: SourceInfo
    path: str
    loudness_lufs: float
    warnings: list[str] = field(default_factory=list)


def _upload_suffix(filename: str | None, extensions: Iterable[str] | None) -> str:
    name = Path(filename or "")
    if not is_supported(name, extensions):
        raise RejectedInput(filename, "unsupported",
                            f"suffix {name.suffix or '(none)'!r} is not a supported audio/MIDI "
                            f"format ({', '.join(sorted(supported_extensions(extensions)))})")
    return name.suffix.lower()


def validate_audio(source: str | Path | bytes | bytearray | memoryview, *,
                   filename: str | None = None, cfg: AudioConfig | None = None,
                   sample_rate: int | None = None, roots: Sequence[str | Path] | None = None,
                   extensions: Iterable[str] | None = None) -> ValidatedAudio:
    """Check, decode and check again one input; the shared entry point of tag and serve.

    Args:
        source: a file path, or the bytes of an uploaded file (then ``filename`` is required:
            its suffix chooses the decoder; the bytes go to a private temporary file).
        filename: the upload's name (only its suffix is used; it names the input in errors).
        cfg: ``AudioConfig`` thresholds (``min_duration_s``, ``silence_threshold_dbfs``,
            ``block_s``, ``resample_quality``); default ``AudioConfig()``.
        sample_rate: output rate in Hz (default ``cfg.sample_rate``).
        roots: when given, a path ``source`` must resolve inside one of them (``confine``).
        extensions: supported suffixes (default ``supported_extensions()``).

    Returns:
        ``ValidatedAudio`` (mono float32 samples at ``sample_rate``).

    Raises:
        RejectedInput: ``outside_root``, ``missing_file``, ``unsupported``, ``io_error``,
            ``empty``, ``undecodable``, ``nan_inf``, ``too_short``, ``silent`` (see
            ``eno_hf.errors.REASON_DESCRIPTIONS``).
    """
    cfg = cfg or AudioConfig()
    rate = int(sample_rate or cfg.sample_rate)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        suffix = _upload_suffix(filename, extensions)
        name = filename or f"upload{suffix}"
        if not data:
            raise RejectedInput(name, "empty", "zero-byte upload")
        with tempfile.TemporaryDirectory(prefix="eno-upload-") as tmp:
            tmp_path = Path(tmp) / f"upload{suffix}"
            tmp_path.write_bytes(data)
            out = _validate_file(tmp_path, cfg, rate, extensions, shown=name)
        return out
    path = Path(source)
    if roots is not None:
        path = confine(path, roots, base=Path.cwd())
    return _validate_file(path, cfg, rate, extensions, shown=str(source))


def _validate_file(path: Path, cfg: AudioConfig, rate: int, extensions: Iterable[str] | None,
                   shown: str) -> ValidatedAudio:
    from eno_hf.audio.conditioning import integrated_loudness
    from eno_hf.audio.io import audio_info, decoder_notes, load_audio

    try:
        check_file(path, extensions, check_suffix=True)
        info = audio_info(path)
        with decoder_notes() as notes:
            samples, sr = load_audio(path, sample_rate=rate, mono=True, block_s=cfg.block_s,
                                     quality=cfg.resample_quality,
                                     midi=cfg.midi.render_settings(rate))
        check_signal(samples, sr, cfg, path=shown)
        lufs = integrated_loudness(samples, sr)
        check_loudness(lufs, path=shown)
    except RejectedInput as exc:
        raise RejectedInput(shown, exc.reason, exc.detail) from exc
    except OSError as exc:
        raise RejectedInput(shown, "io_error", f"{type(exc).__name__}: {exc}") from exc
    src = SourceInfo(sample_rate=info.sample_rate, channels=info.channels,
                     duration_s=samples.shape[0] / sr, format=info.format,
                     size_bytes=path.stat().st_size)
    return ValidatedAudio(samples=np.asarray(samples, dtype=np.float32), sample_rate=sr,
                          info=src, path=shown, loudness_lufs=float(lufs), warnings=list(notes))
