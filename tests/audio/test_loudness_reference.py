"""integrated_loudness / loudness_range (pyloudnorm with eno's edge-case handling) against pyloudnorm
itself (real + generated audio)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest

from eno_hf.audio.conditioning import integrated_loudness, loudness_range
from eno_hf.audio.io import load_audio

SR = 16_000


def loudness_stats(y: np.ndarray, sr: int) -> tuple[float, float]:
    return integrated_loudness(y, sr), loudness_range(y, sr)


def _pyloudnorm(y: np.ndarray, sr: int) -> tuple[float, float]:
    meter = pyloudnorm.Meter(sr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lufs = float(meter.integrated_loudness(y))
        try:
            lra = float(meter.loudness_range(y))
        except ValueError:  # shorter than one 3 s block after the 1.5 s of silence
            lra = float("nan")
        return lufs, lra


def test_real_clips_match_pyloudnorm(fourq_clips: list[Path]) -> None:
    for path in fourq_clips[:3]:
        y, sr = load_audio(path, SR)
        ref_lufs, ref_lra = _pyloudnorm(y, sr)
        lufs, lra = loudness_stats(y, sr)
        # pyloudnorm rounds the K-weighted signal to float32 for the integrated measure
        assert lufs == pytest.approx(ref_lufs, abs=1e-5), path.name
        assert lra == pytest.approx(ref_lra, abs=1e-6), path.name
        assert integrated_loudness(y, sr) == lufs
        assert loudness_range(y, sr) == lra


@pytest.mark.parametrize("sr", [16_000, 44_100])
def test_generated_programmes_match_pyloudnorm(sr: int) -> None:
    rng = np.random.default_rng(7)
    loud = 0.3 * rng.standard_normal(5 * sr)
    quiet = 3e-4 * rng.standard_normal(4 * sr)  # below the relative gates
    ramp = np.linspace(0.01, 0.5, 6 * sr) * rng.standard_normal(6 * sr)
    y = np.concatenate([loud, quiet, ramp, np.zeros(sr)]).astype(np.float32)
    ref_lufs, ref_lra = _pyloudnorm(y, sr)
    lufs, lra = loudness_stats(y, sr)
    assert lufs == pytest.approx(ref_lufs, abs=1e-5)
    assert lra == pytest.approx(ref_lra, abs=1e-6)
    assert lra > 3.0  # the ramp spreads the short-term loudness


@pytest.mark.parametrize("seconds", [0.2, 0.5, 1.3, 1.6, 2.9])
def test_short_signals(seconds: float) -> None:
    rng = np.random.default_rng(1)
    y = (0.1 * rng.standard_normal(int(seconds * SR))).astype(np.float32)
    lufs, lra = loudness_stats(y, SR)
    if seconds >= 0.4:
        assert lufs == pytest.approx(_pyloudnorm(y, SR)[0], abs=1e-5)
    else:  # one ungated block over the whole signal: mean square of the K-weighted signal
        assert -25 < lufs < -15
    if seconds + 1.5 < 3.0:
        assert lra == 0.0
    else:
        assert lra == pytest.approx(_pyloudnorm(y, SR)[1], abs=1e-6)


def test_silence_is_gated_out() -> None:
    lufs, lra = loudness_stats(np.zeros(3 * SR, np.float32), SR)
    assert lufs == float("-inf") and lra == 0.0
