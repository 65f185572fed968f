"""Loudness and level measurements of a decoded mono signal: sample peak and RMS in dBFS, integrated
loudness (ITU-R BS.1770-4) and loudness range (EBU Tech 3342), as implemented by ``pyloudnorm``.

See ``eno_hf.audio.conditioning`` (which re-exports these names) for how normalization uses them.
Signals shorter than the 400 ms gating block are measured as one ungated block; LRA is 0.0 when
undefined.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["peak_dbfs", "rms_dbfs", "integrated_loudness", "loudness_range"]

_EPS = 1e-12


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


def integrated_loudness(samples: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness in LUFS (ITU-R BS.1770-4 via pyloudnorm), mono ``(n,)`` float input.

    Shorter than 400 ms: a single ungated block over the whole signal. Returns ``-inf`` when
    every block is below the absolute gate.
    """
    x = np.asarray(samples, dtype=np.float32)  # float32 halves memory on long files
    import pyloudnorm  # here, not at import: it pulls in scipy.signal (~2 s of `eno tag` start-up)

    meter = pyloudnorm.Meter(sample_rate)
    block = meter.block_size
    if x.shape[0] < block * sample_rate:
        meter.block_size = x.shape[0] / sample_rate
        # n / sr * sr can round above n (e.g. 8000 / 22050), which pyloudnorm rejects
        while meter.block_size * sample_rate > x.shape[0]:
            meter.block_size = float(np.nextafter(meter.block_size, 0.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lufs = float(meter.integrated_loudness(x))
    return lufs if np.isfinite(lufs) else float("-inf")


def loudness_range(samples: np.ndarray, sample_rate: int) -> float:
    """EBU Tech 3342 loudness range in LU (pyloudnorm); 0.0 when undefined."""
    x = np.asarray(samples, dtype=np.float32)  # float32 halves memory on long files
    if x.shape[0] + 1.5 * sample_rate < 3.0 * sample_rate:
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import pyloudnorm

            lra = float(pyloudnorm.Meter(sample_rate).loudness_range(x))
        except ValueError:
            return 0.0
    return lra if np.isfinite(lra) else 0.0
