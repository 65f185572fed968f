"""Generated good and bad uploads for the serving tests (module name unique: imported by the tests)."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf

SR = 16_000


def wav_bytes(samples: np.ndarray, rate: int = SR, subtype: str | None = None) -> bytes:
    """``samples`` ``(n,)`` or ``(n, channels)`` as WAV bytes."""
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype=subtype)
    return buf.getvalue()


def noise(seconds: float, seed: int, rate: int = SR) -> np.ndarray:
    """Seeded noise with a seed-dependent tone, so different clips get different scores."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    return (0.05 * rng.standard_normal(t.size) + 0.3 * np.sin(2 * np.pi * (110 + 40 * seed) * t)).astype(np.float32)


def bad_uploads(real_mp3: bytes | None = None) -> dict[str, tuple[str, bytes, str, str]]:
    """``case -> (filename, bytes, content type, expected reason)`` for every bad upload the service must refuse
    (with the limits of ``LIMITS``)."""
    nan = noise(2.0, 1)
    nan[100:200] = np.nan
    cases = {
        "empty_body": ("empty.wav", b"", "audio/wav", "empty"),
        "garbage": ("garbage.wav", np.random.default_rng(0).bytes(8192), "audio/wav", "undecodable"),
        "text_as_mp3": ("notes.mp3", b"this is a text file, not an mp3\n" * 200, "audio/mpeg", "undecodable"),
        "truncated_header": ("cut.wav", wav_bytes(noise(2.0, 2))[:30], "audio/wav", "undecodable"),
        "8ch_192k": ("surround.wav", wav_bytes(np.zeros((19_200, 8), np.float32) + 0.1, 192_000), "audio/wav",
                     "unsupported_format"),
        "zero_samples": ("zero.wav", wav_bytes(np.zeros(0, np.float32)), "audio/wav", "empty"),
        "silence": ("silence.wav", wav_bytes(np.zeros(3 * SR, np.float32)), "audio/wav", "silent"),
        "nan": ("nan.wav", wav_bytes(nan, subtype="FLOAT"), "audio/wav", "nan_inf"),
        "too_short": ("blip.wav", wav_bytes(noise(0.1, 3)), "audio/wav", "too_short"),
        "over_duration": ("long.wav", wav_bytes(noise(45.0, 4, 8_000), 8_000), "audio/wav", "too_long"),
        "over_size": ("big.wav", wav_bytes(np.zeros(700_000, np.float32) + 0.1), "audio/wav", "too_large"),
        "wrong_content_type": ("song.wav", wav_bytes(noise(2.0, 5)), "text/plain", "unsupported_media_type"),
    }
    if real_mp3 is not None:
        cases["truncated_mp3"] = ("cut.mp3", real_mp3[:400], "audio/mpeg", "undecodable")
    return cases


LIMITS = {"max_upload_mb": 1.0, "max_duration_s": 40.0, "max_files": 3, "min_duration_s": 0.5}
"""Service limits used by the tests (small, so the over-limit cases stay small)."""
