"""Recording-condition augmentation for T4 (invariance): a seeded ``pedalboard`` chain from config.

Each step has a probability ``p`` and a parameter range; per call one value is drawn per step from a
``numpy.random.Generator`` seeded with ``(seed, key)`` so the same segment always gets the same
augmentation (reproducible datasets), and different segments different ones. Steps (pedalboard
0.9, Spotify): ``Reverb`` (room size), ``Compressor`` (threshold dB, ratio), ``LowpassFilter``
(cutoff Hz), ``PitchShift`` (semitones), a 3-band parametric EQ of ``PeakFilter`` s (gain dB at
250 Hz / 1 kHz / 4 kHz, Q 1), pink noise at an SNR in dB (1/f power spectrum made by shaping white
Gaussian noise in the frequency domain; pedalboard has no noise source), and ``Gain`` (dB).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

__all__ = ["AugmentConfig", "AugmentStep", "augment_waveform", "pink_noise"]


class AugmentStep(BaseModel):
    """Probability ``p`` and ``[low, high]`` range (uniform) of one step."""

    p: float = 0.5
    low: float = 0.0
    high: float = 0.0


class AugmentConfig(BaseModel):
    """The T4 chain (see the module docstring); ranges in the steps' units."""

    seed: int = 0
    reverb: AugmentStep = Field(default_factory=lambda: AugmentStep(p=0.5, low=0.2, high=0.8))           # room size 0-1
    compressor: AugmentStep = Field(default_factory=lambda: AugmentStep(p=0.4, low=-30.0, high=-12.0))  # threshold dB, ratio 4
    lowpass: AugmentStep = Field(default_factory=lambda: AugmentStep(p=0.4, low=3000.0, high=7000.0))   # cutoff Hz
    pitch_shift: AugmentStep = Field(default_factory=lambda: AugmentStep(p=0.0, low=-0.5, high=0.5))    # semitones
    eq: AugmentStep = Field(default_factory=lambda: AugmentStep(p=0.5, low=-6.0, high=6.0))             # dB per band
    pink_noise: AugmentStep = Field(default_factory=lambda: AugmentStep(p=0.5, low=10.0, high=30.0))    # SNR dB
    gain: AugmentStep = Field(default_factory=lambda: AugmentStep(p=0.5, low=-6.0, high=6.0))           # dB


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """``(n,)`` float32 pink (1/f power) noise with unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spec.size, dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spec / np.sqrt(f), n)
    return (x / (np.sqrt(np.mean(x ** 2)) + 1e-12)).astype(np.float32)


def _rng(seed: int, key: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}|{key}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def augment_waveform(waveform: np.ndarray, sample_rate: int, cfg: AugmentConfig, key: str = "") -> tuple[np.ndarray, dict[str, Any]]:
    """Apply the chain to a ``(samples,)`` float32 mono clip.

    Args:
        key: per-item key (e.g. ``segment_id``); with ``cfg.seed`` it seeds the draws.

    Returns:
        ``(augmented (samples,) float32, {step: drawn value})`` (only the steps applied).
    """
    import pedalboard as pb

    rng = _rng(cfg.seed, key)
    applied: dict[str, Any] = {}
    chain: list[Any] = []

    def draw(name: str) -> float | None:
        step: AugmentStep = getattr(cfg, name)
        hit = rng.random() < step.p
        value = float(rng.uniform(step.low, step.high))
        if hit:
            applied[name] = round(value, 3)
            return value
        return None

    if (v := draw("reverb")) is not None:
        chain.append(pb.Reverb(room_size=v, wet_level=0.25, dry_level=0.85))
    if (v := draw("compressor")) is not None:
        chain.append(pb.Compressor(threshold_db=v, ratio=4.0))
    if (v := draw("lowpass")) is not None:
        chain.append(pb.LowpassFilter(cutoff_frequency_hz=v))
    if (v := draw("pitch_shift")) is not None:
        chain.append(pb.PitchShift(semitones=v))
    if draw("eq") is not None:
        gains = rng.uniform(cfg.eq.low, cfg.eq.high, size=3)
        applied["eq"] = [round(float(g), 2) for g in gains]
        chain.extend(pb.PeakFilter(cutoff_frequency_hz=f, gain_db=float(g), q=1.0) for f, g in zip((250.0, 1000.0, 4000.0), gains))
    x = np.asarray(waveform, dtype=np.float32)
    if chain:
        x = pb.Pedalboard(chain)(x[None, :], sample_rate)[0]
    if (v := draw("pink_noise")) is not None:
        rms = float(np.sqrt(np.mean(x ** 2))) + 1e-12
        x = x + pink_noise(x.size, rng) * rms / (10 ** (v / 20))
    if (v := draw("gain")) is not None:
        x = x * (10 ** (v / 20))
    return np.clip(x, -1.0, 1.0).astype(np.float32), applied
