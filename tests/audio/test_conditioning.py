"""Loudness measurement (BS.1770-4 / EBU 3342), normalization with peak ceiling, rejections."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from eno_hf.audio.conditioning import (ConditioningStats, condition, integrated_loudness,
                                       load_and_condition, loudness_range, peak_dbfs)
from eno_hf.audio.io import audio_info
from eno_hf.config import AudioConfig
from eno_hf.errors import AudioDecodeError, RejectedInput

SR = 16_000


def _sine(amp: float, seconds: float = 5.0, freq: float = 1000.0, sr: int = SR) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("amp_dbfs", [-6.0, -20.0, -35.0])
def test_sine_loudness_matches_bs1770(amp_dbfs: float) -> None:
    # BS.1770: a 1 kHz sine of peak amplitude A in one channel reads 20*log10(A) - 3.01 LUFS
    amp = 10 ** (amp_dbfs / 20)
    assert integrated_loudness(_sine(amp), SR) == pytest.approx(amp_dbfs - 3.01, abs=0.5)
    assert peak_dbfs(_sine(amp)) == pytest.approx(amp_dbfs, abs=0.01)


def test_normalize_hits_target() -> None:
    cfg = AudioConfig(target_lufs=-18.0, peak_ceiling_dbfs=-1.0)
    out, stats = condition(_sine(0.05), SR, cfg)  # about -29 LUFS, peak -26 dBFS
    assert not stats.clipping_prevented
    assert stats.lufs_before == pytest.approx(-29.03, abs=0.5)
    assert integrated_loudness(out, SR) == pytest.approx(-18.0, abs=0.5)
    assert stats.lufs_after == pytest.approx(integrated_loudness(out, SR), abs=0.05)
    assert stats.gain_db == pytest.approx(stats.lufs_after - stats.lufs_before, abs=1e-6)
    assert stats.peak_after_dbfs == pytest.approx(peak_dbfs(out), abs=1e-4)
    assert out.dtype == np.float32 and out.shape == (5 * SR,)


def test_peak_ceiling_limits_gain() -> None:
    cfg = AudioConfig(target_lufs=-3.0, peak_ceiling_dbfs=-1.0)
    out, stats = condition(_sine(0.1), SR, cfg)  # needs +20 dB: peak would reach 0 dBFS
    assert stats.clipping_prevented
    assert peak_dbfs(out) <= -1.0 + 1e-3
    assert stats.peak_after_dbfs == pytest.approx(-1.0, abs=1e-3)
    assert stats.lufs_after < -3.5
    assert integrated_loudness(out, SR) == pytest.approx(stats.lufs_after, abs=0.05)


def test_target_none_measures_only() -> None:
    x = _sine(0.2)
    out, stats = condition(x, SR, AudioConfig(target_lufs=None))
    np.testing.assert_array_equal(out, x)
    assert stats.gain_db == 0.0 and stats.lufs_after == stats.lufs_before


def test_loudness_range_tech3342_case1() -> None:
    # EBU Tech 3342 test signal 1 (mono here): 20 s at -20 LUFS then 20 s at -30 LUFS -> LRA 10 LU
    a20, a30 = 10 ** ((-20 + 3.01) / 20), 10 ** ((-30 + 3.01) / 20)
    x = np.concatenate([_sine(a20, 20.0), _sine(a30, 20.0)])
    assert loudness_range(x, SR) == pytest.approx(10.0, abs=1.0)
    assert loudness_range(_sine(0.3, 20.0), SR) == pytest.approx(0.0, abs=0.5)


def test_rejections() -> None:
    cfg = AudioConfig()
    cases = {
        "empty": np.zeros(0, np.float32),
        "too_short": _sine(0.3, 0.5),
        "silent": np.full(3 * SR, 1e-5, np.float32),
        "nan_inf": np.where(np.arange(3 * SR) == 100, np.inf, _sine(0.3, 3.0)).astype(np.float32),
    }
    for reason, x in cases.items():
        with pytest.raises(RejectedInput) as exc:
            condition(x, SR, cfg, path="clip.wav")
        assert exc.value.reason == reason and exc.value.path == "clip.wav"


def test_shorter_than_gating_block_does_not_crash() -> None:
    x = _sine(0.1, 0.25)  # 250 ms < 400 ms BS.1770 gating block
    out, stats = condition(x, SR, AudioConfig(min_duration_s=0.1))
    assert np.isfinite(stats.lufs_before) and stats.lufs_before == pytest.approx(-23.0, abs=0.7)
    assert stats.loudness_range_lu == 0.0
    assert integrated_loudness(out, SR) == pytest.approx(-18.0, abs=0.7)


def test_short_signal_lengths_that_round_above_the_block() -> None:
    # n / sr * sr > n in floating point for some n (e.g. 8000 at 22050 Hz); pyloudnorm then raised
    for n in (8000, 2205 * 3 + 1, *range(4000, 8800, 37)):
        assert np.isfinite(integrated_loudness(np.full(n, 0.1, np.float32), 22050))


def test_nan_float_wav_file(tmp_path: Path) -> None:
    path = tmp_path / "nan.wav"
    x = _sine(0.3, 2.0)
    x[500:600] = np.nan
    sf.write(path, x, SR, subtype="FLOAT")
    with pytest.raises(RejectedInput) as exc:
        load_and_condition(path, AudioConfig())
    assert exc.value.reason == "nan_inf" and exc.value.path == str(path)


def test_silence_file_and_zero_byte(tmp_path: Path) -> None:
    silent = tmp_path / "silence.flac"
    sf.write(silent, np.zeros(3 * SR, np.float32), SR)
    with pytest.raises(RejectedInput) as exc:
        load_and_condition(silent, AudioConfig())
    assert exc.value.reason == "silent"
    empty = tmp_path / "zero.mp3"
    empty.touch()
    with pytest.raises(AudioDecodeError) as exc2:
        load_and_condition(empty, AudioConfig())
    assert exc2.value.reason == "empty"


def test_real_clip(fourq_clips: list[Path]) -> None:
    clip = fourq_clips[-1]
    cfg = AudioConfig()
    out, stats = load_and_condition(clip, cfg)
    info = audio_info(clip)
    assert isinstance(stats, ConditioningStats)
    assert stats.source_sample_rate == info.sample_rate and stats.source_channels == info.channels
    assert stats.duration_s == pytest.approx(len(out) / cfg.sample_rate)
    assert stats.peak_after_dbfs <= cfg.peak_ceiling_dbfs + 1e-3
    if not stats.clipping_prevented:
        assert integrated_loudness(out, cfg.sample_rate) == pytest.approx(cfg.target_lufs, abs=0.5)
    assert 0.0 < stats.loudness_range_lu < 40.0
    d = json.loads(json.dumps(stats.to_dict()))
    assert set(d) == {"lufs_before", "lufs_after", "gain_db", "peak_before_dbfs", "peak_after_dbfs",
                      "loudness_range_lu", "clipping_prevented", "duration_s",
                      "source_sample_rate", "source_channels"}
