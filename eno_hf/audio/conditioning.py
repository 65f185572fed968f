"""Conditioning: loudness measurement and normalization of a decoded mono signal.

Loudness follows ITU-R BS.1770-4 (K-weighting, 400 ms blocks, 75 % overlap, absolute gate -70 LUFS
and relative gate -10 LU) as implemented by ``pyloudnorm.Meter.integrated_loudness``. Loudness range
(LRA) follows EBU Tech 3342 (3 s short-term K-weighted loudness at 10 Hz, absolute gate -70 LUFS,
relative gate -20 LU, 95th minus 10th percentile) as implemented by
``pyloudnorm.Meter.loudness_range`` (pyloudnorm >= 0.2). Peaks are *sample* peaks (no oversampled
true-peak).

Normalization applies one linear gain so the integrated loudness reaches ``cfg.target_lufs``; if that
gain would lift the sample peak above ``cfg.peak_ceiling_dbfs`` the gain is lowered to land the peak
exactly on the ceiling and ``clipping_prevented`` is set. The output sample peak therefore never
exceeds the ceiling, even when that means attenuating a recording that is already quieter than, or
only slightly louder than, the target (e.g. a -17 LUFS master peaking at +0.3 dBFS ends at -18.3). Because the gain is linear, the loudness
reached is ``lufs_before + gain_db`` (BS.1770 is scale-equivariant; only the fixed -70 LUFS absolute
gate could differ, for programmes with blocks within a few dB of it).

Signals shorter than the 400 ms gating block are measured as one ungated block (mean-square of the
K-weighted signal) instead of crashing; LRA is 0.0 when undefined (shorter than one 3 s block after
EBU's 1.5 s silence padding, or every block gated out).

Memory: pyloudnorm filters whole arrays (and its LRA pads and upcasts to float64), so conditioning
holds a few copies of the 16 kHz mono signal: about 270 MB peak for a 10-minute recording.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from eno_hf.audio.io import audio_info, load_audio
from eno_hf.audio.loudness import integrated_loudness, loudness_range, peak_dbfs, rms_dbfs  # noqa: F401  (re-exported)
from eno_hf.audio.midi import RenderSettings
from eno_hf.audio.validate import check_loudness, check_signal
from eno_hf.config import AudioConfig

__all__ = ["ConditioningStats", "condition", "normalization_gain", "load_and_condition",
           "integrated_loudness", "loudness_range", "peak_dbfs", "rms_dbfs"]


@dataclass
class ConditioningStats:
    """What conditioning measured and did to one recording.

    Attributes:
        lufs_before: integrated loudness of the decoded mono signal (LUFS, BS.1770-4).
        lufs_after: integrated loudness after the gain (LUFS).
        gain_db: gain applied (dB); 0 when normalization is disabled.
        peak_before_dbfs / peak_after_dbfs: sample peak before/after (dBFS).
        loudness_range_lu: EBU Tech 3342 loudness range (LU); 0.0 when undefined.
        clipping_prevented: the peak ceiling lowered the gain below what the target asked for.
        duration_s: duration of the conditioned signal (s).
        source_sample_rate / source_channels: of the file before resampling/mix-down
            (equal to the input rate and 1 when ``condition`` is called on an array).
    """

    lufs_before: float
    lufs_after: float
    gain_db: float
    peak_before_dbfs: float
    peak_after_dbfs: float
    loudness_range_lu: float
    clipping_prevented: bool
    duration_s: float
    source_sample_rate: int
    source_channels: int

    def to_dict(self) -> dict[str, float | int | bool]:
        """Plain-JSON dict of the fields (floats rounded to 4 decimals)."""
        return {k: (round(float(v), 4) if isinstance(v, float) else v)
                for k, v in asdict(self).items()}


def normalization_gain(lufs_before: float, peak_before_dbfs: float, target_lufs: float,
                       peak_ceiling_dbfs: float) -> tuple[float, bool]:
    """Gain (dB) that brings ``lufs_before`` to ``target_lufs``, lowered by the clip guard.

    Returns:
        ``(gain_db, clipping_prevented)``: when ``peak_before_dbfs + gain`` would exceed
        ``peak_ceiling_dbfs`` the gain is ``peak_ceiling_dbfs - peak_before_dbfs`` and the flag is set.
    """
    gain_db = target_lufs - lufs_before
    if peak_before_dbfs + gain_db > peak_ceiling_dbfs:
        return peak_ceiling_dbfs - peak_before_dbfs, True
    return gain_db, False


def condition(samples: np.ndarray, sample_rate: int, cfg: AudioConfig,
              path: str | Path | None = None, source_sample_rate: int | None = None,
              source_channels: int = 1) -> tuple[np.ndarray, ConditioningStats]:
    """Validate, measure and loudness-normalize a mono signal.

    Args:
        samples: ``(n,)`` float mono signal at ``sample_rate``.
        sample_rate: Hz.
        cfg: ``target_lufs`` (None = measure only), ``peak_ceiling_dbfs``, ``min_duration_s``,
            ``silence_threshold_dbfs``.
        path: only used to name the file in errors.
        source_sample_rate / source_channels: recorded in the stats (default: this signal's).

    Returns:
        ``(conditioned (n,) float32, ConditioningStats)``.

    Raises:
        RejectedInput: ``empty`` (no samples), ``nan_inf`` (non-finite samples), ``too_short``
            (< ``min_duration_s``), ``silent`` (RMS < ``silence_threshold_dbfs`` or loudness
            entirely below the -70 LUFS gate).
    """
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"condition expects mono (n,) samples, got shape {x.shape}")
    check_signal(x, sample_rate, cfg, path)  # empty / nan_inf / too_short / silent (shared)
    duration_s = x.shape[0] / sample_rate
    lufs_before = integrated_loudness(x, sample_rate)
    check_loudness(lufs_before, path)
    peak_before = peak_dbfs(x)
    lra = loudness_range(x, sample_rate)

    gain_db, prevented = 0.0, False
    if cfg.target_lufs is not None:
        gain_db, prevented = normalization_gain(lufs_before, peak_before, cfg.target_lufs,
                                                cfg.peak_ceiling_dbfs)
    out = x if gain_db == 0.0 else (x * np.float32(10.0 ** (gain_db / 20.0))).astype(np.float32)
    stats = ConditioningStats(
        lufs_before=lufs_before,
        lufs_after=lufs_before + gain_db,
        gain_db=float(gain_db),
        peak_before_dbfs=peak_before,
        peak_after_dbfs=peak_dbfs(out),
        loudness_range_lu=lra,
        clipping_prevented=prevented,
        duration_s=duration_s,
        source_sample_rate=int(source_sample_rate or sample_rate),
        source_channels=int(source_channels),
    )
    return out, stats


def load_and_condition(path: str | Path, cfg: AudioConfig) -> tuple[np.ndarray, ConditioningStats]:
    """Decode (mono, ``cfg.sample_rate``, streamed, soxr ``cfg.resample_quality``) and condition.

    Returns:
        ``(samples (n,) float32 at cfg.sample_rate, ConditioningStats)``.

    Raises:
        AudioDecodeError: undecodable/empty/missing file (see ``load_audio``).
        RejectedInput: the reasons of ``condition``, naming ``path``; ``too_long`` when more than
            ``cfg.max_duration_s`` seconds decode (the header is not trusted).
    """
    info = audio_info(path)
    samples, sr = load_audio(path, sample_rate=cfg.sample_rate, mono=True, block_s=cfg.block_s,
                             quality=cfg.resample_quality,
                             midi=RenderSettings.from_config(cfg.midi, cfg.sample_rate),
                             max_duration_s=cfg.max_duration_s)  # measured while decoding
    return condition(samples, sr, cfg, path=path, source_sample_rate=info.sample_rate,
                     source_channels=info.channels)
