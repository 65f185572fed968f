"""Seeded waveform augmentation."""

from __future__ import annotations

import numpy as np
import pytest

from eno_hf.audio.augment import Augmenter

SR = 16_000


def _sine(freq: float = 440.0, seconds: float = 2.0) -> np.ndarray:
    return (0.2 * np.sin(2 * np.pi * freq * np.arange(int(SR * seconds)) / SR)).astype(np.float32)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def test_deterministic_per_seed() -> None:
    x = _sine()
    a, b, c = (Augmenter(SR, seed=s, p=1.0, p_pitch=0.0) for s in (3, 3, 4))
    ya, yb, yc = a(x), b(x), c(x)
    assert ya.shape == x.shape and ya.dtype == np.float32
    np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(ya, yc)
    assert not np.array_equal(ya, x)
    np.testing.assert_array_equal(a(x), b(x))  # the streams stay in step
    c.reseed(3)
    np.testing.assert_array_equal(c(x), Augmenter(SR, seed=3, p=1.0, p_pitch=0.0)(x))


def test_p_zero_is_identity() -> None:
    x = _sine()
    y = Augmenter(SR, seed=0, p=0.0, p_pitch=0.0)(x)
    np.testing.assert_array_equal(y, x)
    assert y is not x


def test_gain_within_range() -> None:
    aug = Augmenter(SR, seed=1, gain_db=(-6.0, 6.0))
    x = _sine()
    gains = [20 * np.log10(_rms(aug.gain(x)) / _rms(x)) for _ in range(50)]
    assert min(gains) >= -6.0 - 1e-3 and max(gains) <= 6.0 + 1e-3
    assert max(gains) - min(gains) > 4.0


def test_noise_snr_within_range() -> None:
    aug = Augmenter(SR, seed=2, snr_db=(15.0, 40.0))
    x = _sine()
    for _ in range(10):
        y = aug.colored_noise(x)
        snr = 20 * np.log10(_rms(x) / _rms(y - x))
        assert 15.0 - 0.1 <= snr <= 40.0 + 0.1


def test_filter_changes_spectrum_but_stays_finite() -> None:
    aug = Augmenter(SR, seed=5)
    x = np.random.default_rng(0).standard_normal(SR).astype(np.float32) * 0.1
    for _ in range(6):
        y = aug.filter(x)
        assert y.shape == x.shape and np.all(np.isfinite(y))
        assert not np.allclose(y, x, atol=1e-4)


def test_pitch_shift_keeps_length_and_moves_pitch() -> None:
    aug = Augmenter(SR, seed=7, max_semitones=2.0)
    x = _sine(440.0, 1.0)
    y = aug.pitch_shift(x)
    assert y.shape == x.shape
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    f = float(np.fft.rfftfreq(len(y), 1 / SR)[np.argmax(spec)])
    assert 440 * 2 ** (-2 / 12) - 3 <= f <= 440 * 2 ** (2 / 12) + 3
    assert abs(f - 440) > 1.0


def test_rejects_2d() -> None:
    with pytest.raises(ValueError, match=r"expects \(n_samples,\), got shape \(2, 100\)"):
        Augmenter(SR, seed=0)(np.zeros((2, 100), np.float32))
