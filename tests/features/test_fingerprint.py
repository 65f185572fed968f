"""64-d fingerprint: names, finiteness, sanity of a few dimensions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from eno_hf.audio.conditioning import load_and_condition
from eno_hf.config import AudioConfig
from eno_hf.features.fingerprint import FINGERPRINT_NAMES, fingerprint

SR = 16_000
IDX = {n: i for i, n in enumerate(FINGERPRINT_NAMES)}


def _sine(freq: float, seconds: float = 3.0, amp: float = 0.3) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(SR * seconds)) / SR)).astype(np.float32)


def test_names_documented() -> None:
    import eno_hf.features.fingerprint as fp

    assert len(FINGERPRINT_NAMES) == 64 and len(set(FINGERPRINT_NAMES)) == 64
    for required in ("spectral_centroid_mean_hz", "spectral_flatness_mean", "mfcc_00_mean",
                     "mfcc_12_mean", "crest_factor", "rms_dbfs", "peak_to_average_ratio_db",
                     "zero_crossing_rate_mean", "onset_strength_mean", "integrated_lufs",
                     "loudness_range_lu"):
        assert required in IDX
    assert "chroma_c#_mean" in fp.__doc__ or "chroma_c_mean" in fp.__doc__


def test_sine_values() -> None:
    v = fingerprint(_sine(987.77), SR)  # B5
    assert v.shape == (64,) and v.dtype == np.float32 and np.all(np.isfinite(v))
    assert v[IDX["spectral_centroid_mean_hz"]] == pytest.approx(988, abs=100)
    assert v[IDX["crest_factor"]] == pytest.approx(np.sqrt(2), abs=0.02)
    assert v[IDX["rms_dbfs"]] == pytest.approx(20 * np.log10(0.3 / np.sqrt(2)), abs=0.1)
    assert v[IDX["integrated_lufs"]] == pytest.approx(20 * np.log10(0.3) - 3.01, abs=0.5)
    chroma = v[IDX["chroma_c_mean"]: IDX["chroma_b_mean"] + 1]
    assert int(np.argmax(chroma)) == 11
    noise = np.random.default_rng(0).standard_normal(3 * SR).astype(np.float32) * 0.1
    vn = fingerprint(noise, SR)
    assert vn[IDX["spectral_flatness_mean"]] > 10 * v[IDX["spectral_flatness_mean"]]
    assert vn[IDX["zero_crossing_rate_mean"]] > v[IDX["zero_crossing_rate_mean"]]


@pytest.mark.parametrize("x", [np.zeros(3 * SR, np.float32), np.full(500, 1e-7, np.float32),
                               np.zeros(0, np.float32)], ids=["silence", "tiny", "empty"])
def test_finite_on_degenerate_input(x: np.ndarray) -> None:
    v = fingerprint(x, SR)
    assert v.shape == (64,) and np.all(np.isfinite(v))


def test_real_segment_uses_stats(fourq_clips: list[Path]) -> None:
    x, stats = load_and_condition(fourq_clips[2], AudioConfig())
    seg = x[: 10 * SR]
    v = fingerprint(seg, SR, stats)
    assert np.all(np.isfinite(v)) and np.count_nonzero(v) >= 60
    assert v[IDX["integrated_lufs"]] == pytest.approx(stats.lufs_after, abs=1e-3)
    assert v[IDX["loudness_range_lu"]] == pytest.approx(stats.loudness_range_lu, abs=1e-3)
    assert 40 <= v[IDX["tempo_bpm"]] <= 250
    assert v[IDX["onset_rate_per_s"]] > 0
