"""Log-mel and MFCC front end (torchaudio)."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest

from eno_hf.audio.io import load_audio
from eno_hf.config import FeaturesConfig
from eno_hf.features.spectral import log_mel, log_mel_and_mfcc, mfcc, mfcc_stats

SR = 16_000
CFG = FeaturesConfig()


def _sine(freq: float, seconds: float = 2.0, sr: int = SR) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(int(sr * seconds)) / sr)).astype(np.float64)


def test_log_mel_shape_dtype_and_peak_band() -> None:
    x = _sine(1000.0)
    m = log_mel(x, SR, CFG)
    assert m.shape == (CFG.n_mels, 1 + len(x) // CFG.hop_length) and m.dtype == np.float16
    assert np.all(np.isfinite(m))
    # the loudest mel band is the one centred near 1 kHz (HTK mel scale, 0-8 kHz)
    centers = librosa.mel_frequencies(CFG.n_mels + 2, fmin=0.0, fmax=8000.0, htk=True)[1:-1]
    band = int(np.argmax(m.astype(np.float32).mean(axis=1)))
    assert abs(centers[band] - 1000.0) < 60.0
    # dB of power: halving the amplitude lowers every bin above the 1e-10 floor by ~6 dB
    m32, m_half = m.astype(np.float32), log_mel(x / 2, SR, CFG).astype(np.float32)
    live = m32 > -60.0
    assert live.sum() > 100
    assert np.median((m32 - m_half)[live]) == pytest.approx(6.02, abs=0.1)


def test_mfcc_and_stats() -> None:
    x = _sine(440.0) + 0.01 * np.random.default_rng(0).standard_normal(2 * SR)
    c = mfcc(x, SR, CFG)
    assert c.shape == (CFG.n_mfcc, 1 + len(x) // CFG.hop_length) and c.dtype == np.float32
    s = mfcc_stats(c)
    assert s.shape == (2 * CFG.n_mfcc,) and s.dtype == np.float32
    np.testing.assert_allclose(s[: CFG.n_mfcc], c.mean(axis=1), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(s[CFG.n_mfcc:], c.std(axis=1), rtol=1e-5, atol=1e-4)
    assert s[CFG.n_mfcc:].max() > 0


def test_short_input_and_low_rate() -> None:
    assert log_mel(np.ones(100, np.float32) * 0.1, SR, CFG).shape == (CFG.n_mels, 3)
    m = log_mel(_sine(440.0, 1.0, sr=8000), 8000, CFG)  # f_max 8 kHz clamped to Nyquist
    assert np.all(np.isfinite(m.astype(np.float32)))
    assert mfcc(np.zeros(10), 8000, CFG).shape == (CFG.n_mfcc, 3)


def test_real_clip(fourq_clips: list[Path]) -> None:
    x, sr = load_audio(fourq_clips[1], sample_rate=SR)
    seg = x[: 10 * SR]
    m = log_mel(seg, sr, CFG)
    assert m.shape == (128, 626) and np.all(np.isfinite(m.astype(np.float32)))
    assert m.astype(np.float32).std() > 5.0  # music has dynamics across bands/time


def test_shared_mel_equals_separate_calls(fourq_clips: list[Path]) -> None:
    x, sr = load_audio(fourq_clips[3], sample_rate=SR)
    seg = x[: 10 * SR + 123]
    lm, mf = log_mel_and_mfcc(seg, sr, CFG)
    np.testing.assert_array_equal(lm, log_mel(seg, sr, CFG))
    np.testing.assert_allclose(mf, mfcc(seg, sr, CFG), rtol=0, atol=1e-4)
    assert lm.dtype == np.float16 and mf.dtype == np.float32
    assert mf.shape == (CFG.n_mfcc, 1 + len(seg) // CFG.hop_length)
    short_lm, short_mf = log_mel_and_mfcc(np.full(100, 0.1, np.float32), SR, CFG)
    assert short_lm.shape == (CFG.n_mels, 3) and short_mf.shape == (CFG.n_mfcc, 3)
