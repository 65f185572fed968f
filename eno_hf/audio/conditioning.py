"""Conditioning: loudness measurement and normalization of a decoded mono signal.

Loudness follows ITU-R BS.1770-4 (K-weighting, 400 ms blocks, 75 % overlap, absolute gate -70 LUFS
and relative gate -10 LU) as implemented by ``pyloudnorm.Meter.integrated_loudness``. Loudness range
(LRA) follows EBU Tech 3342 (3 s short-term K-weighted loudness at 10 Hz, absolute gate -70 LUFS,
relative gate -20 LU, 95th minus 10th percentile) as implemented by
``pyloudnorm.Meter.loudness_range`` (pyloudnorm >= 0.2). Both are computed here with pyloudnorm's
K-weighting coefficients and block bounds but vectorised: one filter pass (``scipy.signal.sosfilt``)
and cumulative sums of the K-weighted energy give every gating block of both measurements, instead
of pyloudnorm's two filter passes and Python loop per block (~5x faster). Equal to pyloudnorm within
1e-5 LU (tested; ~1e-7 measured: pyloudnorm rounds the filtered signal to float32 for the
integrated measure, this code keeps float64). Peaks are *sample* peaks (no oversampled true-peak).

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

Memory: loudness needs one float64 copy of the signal (the K-weighted energy, squared and summed in
place): 77 MB for a 10-minute recording at 16 kHz, on top of the float32 signal.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyloudnorm
import scipy.signal

from eno_hf.audio.io import audio_info, load_audio
from eno_hf.config import AudioConfig
from eno_hf.errors import RejectedInput

__all__ = ["ConditioningStats", "condition", "load_and_condition", "integrated_loudness",
           "loudness_range", "loudness_stats", "peak_dbfs", "rms_dbfs"]

_EPS = 1e-12
_BLOCK_S, _BLOCK_OVERLAP = 0.400, 0.75  # BS.1770-4 gating blocks
_LRA_BLOCK_S, _LRA_OVERLAP, _LRA_SILENCE_S = 3.0, 0.97, 1.5  # pyloudnorm's EBU 3342 settings
_ABS_GATE_LUFS = -70.0


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


def peak_dbfs(samples: np.ndarray) -> float:
    """Sample peak of ``samples`` in dBFS (``-inf``-safe: floor at -240 dBFS)."""
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    return 20.0 * np.log10(max(peak, _EPS))


def rms_dbfs(samples: np.ndarray) -> float:
    """RMS level of ``samples`` in dBFS (full-scale square wave = 0 dBFS), floor -240 dBFS."""
    if samples.size == 0:
        return 20.0 * np.log10(_EPS)
    ms = float(np.mean(np.square(samples, dtype=np.float64)))
    return 10.0 * np.log10(max(ms, _EPS**2))


@lru_cache(maxsize=16)
def _k_weighting_sos(sample_rate: int) -> np.ndarray:
    """pyloudnorm's BS.1770 K-weighting (high shelf, then high pass) as second-order sections.

    The coefficients and passband gains are read from ``pyloudnorm.Meter(rate)``'s own filter
    stages, so the cascade is the filter pyloudnorm applies with two ``lfilter`` calls.
    """
    stages = list(pyloudnorm.Meter(sample_rate)._filters.values())  # noqa: SLF001
    sos = np.array([np.concatenate([st.b, st.a]) for st in stages], dtype=np.float64)
    sos[0, :3] *= np.prod([st.passband_gain for st in stages])
    return sos


def _block_bounds(n_samples: int, sample_rate: int, block_s: float, overlap: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Sample bounds ``[l, u)`` of the gating blocks, computed with pyloudnorm's expressions."""
    step = 1.0 - overlap
    duration_s = n_samples / sample_rate
    n_blocks = int(np.round(((duration_s - block_s) / (block_s * step)))) + 1
    j = np.arange(0, max(n_blocks, 0))
    lo = (block_s * (j * step) * sample_rate).astype(np.int64)
    hi = (block_s * (j * step + 1) * sample_rate).astype(np.int64)
    return np.minimum(lo, n_samples), np.minimum(hi, n_samples)


class _KWeightedEnergy:
    """Cumulative energy of the K-weighted signal, optionally followed by 1.5 s of silence.

    ``sum(k[l:u] ** 2)`` for any block is ``cum[u] - cum[l]``: all gating blocks of both
    BS.1770 (400 ms) and EBU 3342 (3 s) measurements come from ONE filtering pass, without the
    per-block Python loop of ``pyloudnorm.Meter.integrated_loudness``. Memory: one float64 copy
    of the signal (the filter output, squared and summed in place).
    """

    def __init__(self, samples: np.ndarray, sample_rate: int, tail_s: float = 0.0) -> None:
        sos = _k_weighting_sos(int(sample_rate))
        zi = np.zeros((sos.shape[0], 2))
        k, zf = scipy.signal.sosfilt(sos, samples, zi=zi)
        k = np.asarray(k, dtype=np.float64)
        np.square(k, out=k)
        self.main = np.cumsum(k, out=k)
        self.n = int(samples.shape[0])
        n_tail = int(tail_s * sample_rate)
        tail = scipy.signal.sosfilt(sos, np.zeros(n_tail), zi=zf)[0] if n_tail else np.zeros(0)
        self.tail = np.cumsum(np.square(tail))

    def block_sums(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """``sum(k[l:u] ** 2)`` per block (bounds within signal + tail)."""
        return self._at(hi) - self._at(lo)

    def _at(self, idx: np.ndarray) -> np.ndarray:
        out = np.zeros(idx.shape, dtype=np.float64)
        in_main = (idx >= 1) & (idx <= self.n)
        out[in_main] = self.main[idx[in_main] - 1]
        in_tail = idx > self.n
        if np.any(in_tail):
            base = self.main[-1] if self.n else 0.0
            out[in_tail] = base + self.tail[idx[in_tail] - self.n - 1]
        return out


def _block_loudness(energy: _KWeightedEnergy, n_samples: int, sample_rate: int, block_s: float,
                    overlap: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean square ``z_j`` and loudness ``-0.691 + 10 log10 z_j`` of each gating block."""
    lo, hi = _block_bounds(n_samples, sample_rate, block_s, overlap)
    z = energy.block_sums(lo, hi) * (1.0 / (block_s * sample_rate))
    with np.errstate(divide="ignore"):
        return z, -0.691 + 10.0 * np.log10(z)


def _gated_lufs(z: np.ndarray, level: np.ndarray) -> float:
    """BS.1770-4 gating (absolute -70 LUFS, relative -10 LU) as in pyloudnorm; -inf if all gated."""
    above = level >= _ABS_GATE_LUFS
    if not np.any(above):
        return float("-inf")
    rel_gate = -0.691 + 10.0 * np.log10(np.mean(z[above])) - 10.0
    keep = (level > rel_gate) & (level > _ABS_GATE_LUFS)
    if not np.any(keep):
        return float("-inf")
    mean_sq = float(np.mean(z[keep]))
    return -0.691 + 10.0 * np.log10(mean_sq) if mean_sq > 0 else float("-inf")


def _lra(level: np.ndarray) -> float:
    """EBU Tech 3342 LRA from short-term loudness, gated as ``pyloudnorm.Meter.loudness_range``."""
    st = level[level >= _ABS_GATE_LUFS]
    if st.size == 0:
        return 0.0
    integrated = 10.0 * np.log10(np.sum(np.power(10.0, st / 10.0)) / st.size)
    st = st[st >= integrated - 20.0]
    if st.size == 0:
        return 0.0
    lra = float(np.percentile(st, 95) - np.percentile(st, 10))
    return lra if np.isfinite(lra) else 0.0


def _integrated_block_s(n_samples: int, sample_rate: int) -> float:
    return min(_BLOCK_S, n_samples / sample_rate)


def loudness_stats(samples: np.ndarray, sample_rate: int) -> tuple[float, float]:
    """Integrated loudness (LUFS) and loudness range (LU) from one K-weighting pass.

    Same results as ``integrated_loudness`` and ``loudness_range`` (see those), about 5x faster
    than calling pyloudnorm twice (one filter pass and cumulative sums instead of two filter
    passes and a Python loop per gating block).

    Args:
        samples: ``(n,)`` mono float signal, ``n >= 1``.
        sample_rate: Hz.

    Returns:
        ``(lufs, lra)``: ``lufs`` is ``-inf`` when every block is gated out; ``lra`` is 0.0 when
        undefined.
    """
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    n = x.shape[0]
    energy = _KWeightedEnergy(x, sample_rate, tail_s=_LRA_SILENCE_S)
    z, level = _block_loudness(energy, n, sample_rate, _integrated_block_s(n, sample_rate),
                               _BLOCK_OVERLAP)
    lufs = _gated_lufs(z, level)
    if n + _LRA_SILENCE_S * sample_rate < _LRA_BLOCK_S * sample_rate:
        return lufs, 0.0
    n_padded = n + int(_LRA_SILENCE_S * sample_rate)
    _, st_level = _block_loudness(energy, n_padded, sample_rate, _LRA_BLOCK_S, _LRA_OVERLAP)
    return lufs, _lra(st_level)


def integrated_loudness(samples: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness in LUFS (ITU-R BS.1770-4), mono ``(n,)`` float input.

    The algorithm and block bounds of ``pyloudnorm.Meter.integrated_loudness`` (K-weighting,
    400 ms blocks, 75 % overlap, absolute gate -70 LUFS, relative gate -10 LU), vectorised over
    blocks with cumulative sums of the K-weighted energy; agrees with pyloudnorm within 1e-5 LU
    (tested). Shorter than 400 ms: a single ungated block over the whole signal. Returns
    ``-inf`` when every block is below the absolute gate.
    """
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    if x.shape[0] == 0:
        return float("-inf")
    energy = _KWeightedEnergy(x, sample_rate)
    z, level = _block_loudness(energy, x.shape[0], sample_rate,
                               _integrated_block_s(x.shape[0], sample_rate), _BLOCK_OVERLAP)
    return _gated_lufs(z, level)


def loudness_range(samples: np.ndarray, sample_rate: int) -> float:
    """EBU Tech 3342 loudness range in LU; 0.0 when undefined.

    ``pyloudnorm.Meter.loudness_range``'s algorithm (1.5 s of appended silence, 3 s blocks at
    97 % overlap, absolute gate -70 LUFS, relative gate -20 LU, 95th - 10th percentile),
    vectorised like ``integrated_loudness``.
    """
    return loudness_stats(samples, sample_rate)[1] if np.asarray(samples).size else 0.0


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
    if x.size == 0:
        raise RejectedInput(path, "empty", "no samples")
    if not np.all(np.isfinite(x)):
        bad = int(np.count_nonzero(~np.isfinite(x)))
        raise RejectedInput(path, "nan_inf", f"{bad} non-finite samples")
    duration_s = x.shape[0] / sample_rate
    if duration_s < cfg.min_duration_s:
        raise RejectedInput(path, "too_short",
                            f"{duration_s:.3f} s < min_duration_s={cfg.min_duration_s}")
    rms = rms_dbfs(x)
    if rms < cfg.silence_threshold_dbfs:
        raise RejectedInput(path, "silent",
                            f"RMS {rms:.1f} dBFS < silence_threshold_dbfs={cfg.silence_threshold_dbfs}")
    lufs_before, lra = loudness_stats(x, sample_rate)
    if not np.isfinite(lufs_before):
        raise RejectedInput(path, "silent", "all loudness blocks below the -70 LUFS gate")
    peak_before = peak_dbfs(x)

    gain_db, prevented = 0.0, False
    if cfg.target_lufs is not None:
        gain_db = cfg.target_lufs - lufs_before
        if peak_before + gain_db > cfg.peak_ceiling_dbfs:
            gain_db = cfg.peak_ceiling_dbfs - peak_before
            prevented = True
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
        RejectedInput: the reasons of ``condition``, naming ``path``.
    """
    info = audio_info(path)
    samples, sr = load_audio(path, sample_rate=cfg.sample_rate, mono=True, block_s=cfg.block_s,
                             quality=cfg.resample_quality)
    return condition(samples, sr, cfg, path=path, source_sample_rate=info.sample_rate,
                     source_channels=info.channels)
