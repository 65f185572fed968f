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

Long inputs (``eno tag``) are checked without holding them: ``scan_audio(path, cfg, ...)``
streams the decoded blocks (``eno_hf.audio.io.iter_audio``) through ``SignalStats``, which keeps
only counts, the sample peak, the sum of squares and the BS.1770 block energies (the K-weighting
filters run block by block with their state carried over, so the integrated loudness equals
pyloudnorm's on the whole signal), and applies the same checks with the same messages. Every
decode stops at ``cfg.max_duration_s`` (and a service's ``Limits.max_duration_s``) measured on the
decoded audio, not on the header: longer inputs are ``too_long``.

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

import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from eno_hf.audio import midi
from eno_hf.audio.files import check_file, confine, is_supported, supported_extensions
from eno_hf.audio.loudness import integrated_loudness
from eno_hf.audio.midi import RenderSettings
from eno_hf.config import AudioConfig
from eno_hf.errors import RejectedInput, rejected_as

if TYPE_CHECKING:  # annotations only (this module imports io inside the functions that decode)
    from eno_hf.audio.io import AudioInfo

__all__ = ["ValidatedAudio", "SourceInfo", "Limits", "SignalStats", "ScannedAudio",
           "supported_extensions", "is_supported", "confine", "check_file", "check_signal",
           "check_loudness", "validate_audio", "scan_audio", "max_duration"]

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

    @classmethod
    def measured(cls, info: AudioInfo, duration_s: float, path: Path) -> SourceInfo:
        """From the header facts (``io.audio_info``), the duration decoded (s) and the file's size.

        Raises:
            OSError: the file is gone (its size cannot be read).
        """
        return cls(sample_rate=info.sample_rate, channels=info.channels, duration_s=float(duration_s),
                   format=info.format, size_bytes=path.stat().st_size)


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


@dataclass(frozen=True)
class Limits:
    """Optional service limits (the HTTP service; ``None`` = no limit).

    Attributes:
        max_duration_s: longer inputs are ``too_long`` (header duration, then decoded duration).
        max_channels / max_sample_rate_hz: larger sources are ``unsupported_format`` (checked on
            the header before decoding; not applied to MIDI, which is rendered).
    """

    max_duration_s: float | None = None
    max_channels: int | None = None
    max_sample_rate_hz: int | None = None


def _check_limits(info: object, duration_s: float, limits: Limits, shown: str) -> None:
    if limits.max_duration_s is not None and duration_s > limits.max_duration_s:
        raise RejectedInput(shown, "too_long",
                            f"{duration_s:.1f} s > max_duration_s={limits.max_duration_s}")
    if getattr(info, "format", "") == "midi":
        return
    ch, sr = int(getattr(info, "channels", 0)), int(getattr(info, "sample_rate", 0))
    if (limits.max_channels is not None and ch > limits.max_channels) or \
            (limits.max_sample_rate_hz is not None and sr > limits.max_sample_rate_hz):
        raise RejectedInput(shown, "unsupported_format",
                            f"{ch} channels at {sr} Hz; limits: {limits.max_channels} channels, "
                            f"{limits.max_sample_rate_hz} Hz")


def validate_audio(source: str | Path | bytes | bytearray | memoryview, *,
                   filename: str | None = None, cfg: AudioConfig | None = None,
                   sample_rate: int | None = None, roots: Sequence[str | Path] | None = None,
                   extensions: Iterable[str] | None = None,
                   limits: Limits | None = None) -> ValidatedAudio:
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
        limits: service limits (``Limits``: ``too_long``, ``unsupported_format``).

    Returns:
        ``ValidatedAudio`` (mono float32 samples at ``sample_rate``).

    Raises:
        RejectedInput: ``outside_root``, ``missing_file``, ``unsupported``, ``io_error``,
            ``empty``, ``undecodable``, ``nan_inf``, ``too_short``, ``silent``, and with
            ``limits`` ``too_long`` / ``unsupported_format`` (see
            ``eno_hf.errors.REASON_DESCRIPTIONS``).
    """
    cfg = cfg or AudioConfig()
    limits = limits or Limits()
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
            out = _validate_file(tmp_path, cfg, rate, extensions, shown=name, limits=limits)
        return out
    path = Path(source)
    if roots is not None:
        path = confine(path, roots, base=Path.cwd())
    return _validate_file(path, cfg, rate, extensions, shown=str(source), limits=limits)


def max_duration(cfg: AudioConfig, limits: Limits | None = None) -> float:
    """The length limit (s) a decode stops at: ``cfg.max_duration_s``, or a service's smaller
    ``limits.max_duration_s``."""
    limit = float(cfg.max_duration_s)
    if limits is not None and limits.max_duration_s is not None:
        limit = min(limit, float(limits.max_duration_s))
    return limit


def _discard_midi_render(path: Path, cfg: AudioConfig, rate: int) -> None:
    """An input rejected after its MIDI rendering: remove the rendering from the cache."""
    if midi.is_midi(path):
        midi.discard_render(path, RenderSettings.from_config(cfg.midi, rate))


def _validate_file(path: Path, cfg: AudioConfig, rate: int, extensions: Iterable[str] | None,
                   shown: str, limits: Limits) -> ValidatedAudio:
    from eno_hf.audio.io import audio_info, decoder_notes, load_audio

    with rejected_as(shown):
        check_file(path, extensions, check_suffix=True)
        info = audio_info(path)
        _check_limits(info, info.duration_s, limits, shown)
        with decoder_notes() as notes:
            samples, sr = load_audio(path, sample_rate=rate, mono=True, block_s=cfg.block_s,
                                     quality=cfg.resample_quality,
                                     midi=RenderSettings.from_config(cfg.midi, rate),
                                     max_duration_s=max_duration(cfg, limits))
        try:
            check_signal(samples, sr, cfg, path=shown)
            _check_limits(info, samples.shape[0] / sr, limits, shown)
            lufs = integrated_loudness(samples, sr)
            check_loudness(lufs, path=shown)
        except RejectedInput:
            _discard_midi_render(path, cfg, rate)
            raise
    return ValidatedAudio(samples=np.asarray(samples, dtype=np.float32), sample_rate=sr,
                          info=SourceInfo.measured(info, samples.shape[0] / sr, path), path=shown,
                          loudness_lufs=float(lufs), warnings=list(notes))


class SignalStats:
    """Streaming measurements of a mono signal fed block by block (memory: O(duration / 100 ms)
    floats for the loudness blocks, nothing per sample).

    ``add(block)`` takes ``(n,)`` float32 blocks at ``sample_rate``; afterwards ``n`` (samples),
    ``peak`` (max |x|), ``nonfinite`` (count), ``mean_square`` (float64) and
    ``integrated_loudness()`` (LUFS, ITU-R BS.1770-4 exactly as
    ``eno_hf.audio.conditioning.integrated_loudness`` on the concatenated signal: pyloudnorm's
    K-weighting coefficients run through ``scipy.signal.lfilter`` with the state carried between
    blocks, the same 400 ms / 75 % overlap blocks, the same gates). ``check(cfg, path)`` raises
    what ``check_signal`` + ``check_loudness`` raise on the whole signal.
    """

    def __init__(self, sample_rate: int) -> None:
        import pyloudnorm

        meter = pyloudnorm.Meter(sample_rate)
        self.sample_rate = int(sample_rate)
        self._block_s = float(meter.block_size)
        self._step = 1.0 - float(meter.overlap)
        self._stages = [(np.asarray(f.b, dtype=np.float64), np.asarray(f.a, dtype=np.float64),
                         f.passband_gain) for f in meter._filters.values()]
        self._zi = [np.zeros(max(len(b), len(a)) - 1) for b, a, _ in self._stages]
        self._buf = np.zeros(0, dtype=np.float32)  # K-weighted samples from self._off on
        self._off = 0
        self._j = 0
        self._z: list[float] = []
        self._head: list[np.ndarray] = []  # raw samples while shorter than one gating block
        self.n = 0
        self.peak = 0.0
        self.nonfinite = 0
        self._sumsq = 0.0

    def _bounds(self, j: int) -> tuple[int, int]:
        t_g, step, rate = self._block_s, self._step, self.sample_rate
        return int(t_g * (j * step) * rate), int(t_g * (j * step + 1) * rate)

    def add(self, block: np.ndarray) -> None:
        """Feed the next ``(n,)`` float32 samples."""
        from scipy.signal import lfilter

        x = np.asarray(block, dtype=np.float32).reshape(-1)
        if x.size == 0:
            return
        finite = np.isfinite(x)
        if not finite.all():
            self.nonfinite += int(np.count_nonzero(~finite))
        self.n += x.shape[0]
        if self.nonfinite:
            return  # rejected as nan_inf anyway; the filters would only carry NaN
        self.peak = max(self.peak, float(np.max(np.abs(x))))
        self._sumsq += float(np.sum(np.square(x, dtype=np.float64)))
        if self.n <= self._block_s * self.sample_rate:
            self._head.append(x.copy())
        else:
            self._head = []
        y = x
        for k, (b, a, gain) in enumerate(self._stages):
            out, self._zi[k] = lfilter(b, a, y, zi=self._zi[k])
            y = (gain * out).astype(np.float32)
        self._buf = np.concatenate([self._buf, y])
        scale = 1.0 / (self._block_s * self.sample_rate)
        while True:
            lo, hi = self._bounds(self._j)
            if hi > self.n:
                break
            # float32 product stored as float64, as pyloudnorm's z array
            self._z.append(float(scale * np.sum(np.square(self._buf[lo - self._off:hi - self._off]))))
            self._j += 1
        lo, _ = self._bounds(self._j)
        if lo > self._off:
            self._buf = self._buf[lo - self._off:].copy()
            self._off = lo

    @property
    def mean_square(self) -> float:
        """Mean of the squared samples (float64 accumulation)."""
        return self._sumsq / self.n if self.n else 0.0

    @property
    def duration_s(self) -> float:
        """Samples fed, in seconds."""
        return self.n / self.sample_rate

    def integrated_loudness(self) -> float:
        """Integrated loudness (LUFS) of everything fed; ``-inf`` when every block is gated."""
        import warnings

        if self.n == 0 or self.nonfinite:
            return float("-inf")
        if self.n < self._block_s * self.sample_rate:  # as conditioning: one shortened block
        
            return integrated_loudness(np.concatenate(self._head), self.sample_rate)
        t_g, step = self._block_s, self._step
        num_blocks = int(np.round(((self.n / self.sample_rate - t_g) / (t_g * step)))) + 1
        scale = 1.0 / (t_g * self.sample_rate)
        z = list(self._z[:num_blocks])
        for j in range(len(z), num_blocks):  # blocks reaching past the end: truncated, as pyloudnorm
            lo, hi = self._bounds(j)
            z.append(float(scale * np.sum(np.square(self._buf[max(lo - self._off, 0):hi - self._off]))))
        gamma_a = -70.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=RuntimeWarning)
            loud = [-0.691 + 10.0 * np.log10(np.sum([1.0 * zj])) for zj in z]
            j_g = [j for j, l_j in enumerate(loud) if l_j >= gamma_a]
            z_avg = np.mean([z[j] for j in j_g])
            gamma_r = -0.691 + 10.0 * np.log10(np.sum([1.0 * z_avg])) - 10.0
            j_g = [j for j, l_j in enumerate(loud) if (l_j > gamma_r and l_j > gamma_a)]
            z_avg = np.nan_to_num(np.array([np.mean([z[j] for j in j_g])]))
            with np.errstate(divide="ignore"):
                lufs = float(-0.691 + 10.0 * np.log10(np.sum([1.0 * z_avg[0]])))
        return lufs if np.isfinite(lufs) else float("-inf")

    def check(self, cfg: AudioConfig, path: str | Path | None = None) -> float:
        """The checks of ``check_signal`` and ``check_loudness`` (same reasons, same messages) on
        everything fed. Returns the integrated loudness (LUFS).

        Raises:
            RejectedInput: ``empty``, ``nan_inf``, ``too_short``, ``silent``.
        """
        if self.n == 0:
            raise RejectedInput(path, "empty", "no samples")
        if self.nonfinite:
            raise RejectedInput(path, "nan_inf", f"{self.nonfinite} non-finite samples")
        if self.duration_s < cfg.min_duration_s:
            raise RejectedInput(path, "too_short",
                                f"{self.duration_s:.3f} s < min_duration_s={cfg.min_duration_s}")
        rms = 10.0 * np.log10(max(self.mean_square, 1e-24))
        if rms < cfg.silence_threshold_dbfs:
            raise RejectedInput(path, "silent", f"RMS {rms:.1f} dBFS < silence_threshold_dbfs="
                                                f"{cfg.silence_threshold_dbfs}")
        lufs = self.integrated_loudness()
        check_loudness(lufs, path=path)
        return lufs


@dataclass
class ScannedAudio:
    """An input checked by one streamed decoding pass (``scan_audio``).

    Attributes:
        path: the file.
        sample_rate: Hz of the decoded signal.
        info: ``SourceInfo`` (``duration_s`` measured by decoding).
        stats: the ``SignalStats`` of the pass (``n``, ``peak``, ``integrated_loudness()``).
        loudness_lufs: integrated loudness (LUFS).
        samples: the whole ``(n,)`` float32 signal when it was at most ``keep_s`` seconds long
            (no second decode needed), else None (decode again with ``blocks()``).
        warnings: decoder notes.
    """

    path: Path
    sample_rate: int
    info: SourceInfo
    stats: SignalStats
    loudness_lufs: float
    samples: np.ndarray | None
    warnings: list[str] = field(default_factory=list)
    _decode: dict = field(default_factory=dict, repr=False)

    def blocks(self) -> Iterable[np.ndarray]:
        """The decoded ``(n,)`` float32 blocks again (the kept signal, or a second streamed
        decode with the same settings)."""
        if self.samples is not None:
            yield self.samples
            return
        from eno_hf.audio.io import iter_audio

        yield from iter_audio(self.path, **self._decode)


def scan_audio(path: str | Path, cfg: AudioConfig | None = None, sample_rate: int | None = None,
               extensions: Iterable[str] | None = None, limits: Limits | None = None,
               keep_s: float = 600.0) -> ScannedAudio:
    """``validate_audio`` for a file of any length, in bounded memory: one streamed decode
    (``iter_audio``) measured by ``SignalStats``, the same checks, reasons and messages.

    Args:
        path: the file (taken as given: no confinement).
        cfg: ``AudioConfig`` (``min_duration_s``, ``silence_threshold_dbfs``, ``block_s``,
            ``resample_quality``, ``max_duration_s``, ``midi``).
        sample_rate: output rate in Hz (default ``cfg.sample_rate``).
        extensions: supported suffixes.
        limits: service limits (``too_long`` also on the header, ``unsupported_format``).
        keep_s: inputs up to this long (s) are kept in memory (``ScannedAudio.samples``), so
            the caller need not decode them twice; longer ones are not kept.

    Returns:
        ``ScannedAudio``.

    Raises:
        RejectedInput: the reasons of ``validate_audio``; ``too_long`` as soon as more than
            ``max_duration`` seconds were decoded (the rest is never decoded).
    """
    from eno_hf.audio.io import audio_info, decoder_notes, iter_audio

    cfg = cfg or AudioConfig()
    limits = limits or Limits()
    rate = int(sample_rate or cfg.sample_rate)
    path = Path(path)
    shown = str(path)
    decode = dict(sample_rate=rate, mono=True, block_s=cfg.block_s, quality=cfg.resample_quality,
                  midi=RenderSettings.from_config(cfg.midi, rate), max_duration_s=max_duration(cfg, limits))
    stats = SignalStats(rate)
    kept: list[np.ndarray] | None = []
    keep_n = int(keep_s * rate)
    with rejected_as(shown):
        check_file(path, extensions, check_suffix=True)
        info = audio_info(path)
        _check_limits(info, info.duration_s, limits, shown)
        with decoder_notes() as notes:
            for block in iter_audio(path, **decode):
                stats.add(block)
                if kept is not None:
                    kept.append(block)
                    if stats.n > keep_n:
                        kept = None
        try:
            lufs = stats.check(cfg, path=shown)
            _check_limits(info, stats.duration_s, limits, shown)
        except RejectedInput:
            _discard_midi_render(path, cfg, rate)
            raise
    src = SourceInfo.measured(info, stats.duration_s, path)
    samples = None
    if kept is not None:
        samples = kept[0] if len(kept) == 1 else np.concatenate(kept)
    return ScannedAudio(path=path, sample_rate=rate, info=src, stats=stats, loudness_lufs=lufs,
                        samples=samples, warnings=list(notes), _decode=decode)
