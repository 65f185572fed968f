"""Spectral features: log-mel spectrogram and MFCC (torchaudio), MFCC summary statistics.

``log_mel`` is ``torchaudio.transforms.MelSpectrogram(sample_rate, n_fft, hop_length, f_min, f_max,
n_mels)`` (power 2, HTK mel scale, Hann window, centred frames) followed by
``torchaudio.transforms.AmplitudeToDB()`` (10*log10 of power, no top-dB clamp) — the front end of the
pretrained taggers of Won et al., "Evaluation of CNN-based automatic music tagging models" (SMC 2020,
github.com/minzwon/sota-music-tagging-models). ``mfcc`` is ``torchaudio.transforms.MFCC`` over the same
mel filterbank (dB with top_db=80, orthonormal DCT-II), numerically the recipe of ``librosa.feature.mfcc``.
``log_mel_and_mfcc`` returns both from ONE mel spectrogram (the MFCC module's own submodules applied
to it: identical values to calling ``log_mel`` and ``mfcc``, half the STFT/filterbank work); the
dataset build uses it.

Inputs are numpy ``(n_samples,)`` float arrays (any float dtype); outputs are numpy. ``f_max`` is
clamped to the Nyquist frequency; signals shorter than ``n_fft`` are zero-padded to ``n_fft``.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
import torch
import torchaudio

from eno_hf.config import FeaturesConfig

__all__ = ["log_mel", "log_mel_and_mfcc", "mfcc", "mfcc_stats"]


def _f_max(sr: int, f_max: float | None) -> float:
    nyquist = sr / 2.0
    return nyquist if f_max is None else min(float(f_max), nyquist)


@lru_cache(maxsize=16)
def _mel_transform(sr: int, n_fft: int, hop_length: int, f_min: float, f_max: float,
                   n_mels: int) -> torch.nn.Module:
    with warnings.catch_warnings():  # 128 mels over 257 bins leaves a few empty low filters
        warnings.simplefilter("ignore", UserWarning)
        return torch.nn.Sequential(
            torchaudio.transforms.MelSpectrogram(sample_rate=sr, n_fft=n_fft,
                                                 hop_length=hop_length, f_min=f_min,
                                                 f_max=f_max, n_mels=n_mels),
            torchaudio.transforms.AmplitudeToDB(),
        ).eval()


@lru_cache(maxsize=16)
def _mfcc_transform(sr: int, n_mfcc: int, n_fft: int, hop_length: int, f_min: float,
                    f_max: float, n_mels: int) -> torch.nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torchaudio.transforms.MFCC(
            sample_rate=sr, n_mfcc=n_mfcc, dct_type=2, norm="ortho", log_mels=False,
            melkwargs={"n_fft": n_fft, "hop_length": hop_length, "f_min": f_min,
                       "f_max": f_max, "n_mels": n_mels},
        ).eval()


def _tensor(samples: np.ndarray, n_fft: int) -> torch.Tensor:
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    if x.shape[0] < n_fft:
        x = np.pad(x, (0, n_fft - x.shape[0]))
    return torch.from_numpy(np.ascontiguousarray(x))


def log_mel(samples: np.ndarray, sr: int, cfg: FeaturesConfig) -> np.ndarray:
    """Log-mel spectrogram in dB.

    Args:
        samples: ``(n_samples,)`` mono float signal.
        sr: sample rate (Hz).
        cfg: ``n_mels``, ``n_fft``, ``hop_length``, ``f_min``, ``f_max`` (Hz).

    Returns:
        ``(n_mels, 1 + n_samples // hop_length)`` float16, dB re power 1.
    """
    t = _mel_transform(int(sr), cfg.n_fft, cfg.hop_length, float(cfg.f_min),
                       _f_max(sr, cfg.f_max), cfg.n_mels)
    with torch.inference_mode():
        out = t(_tensor(samples, cfg.n_fft))
    return out.numpy().astype(np.float16)


def mfcc(samples: np.ndarray, sr: int, cfg: FeaturesConfig) -> np.ndarray:
    """Mel-frequency cepstral coefficients.

    Args:
        samples: ``(n_samples,)`` mono float signal.
        sr: sample rate (Hz).
        cfg: ``n_mfcc`` plus the mel settings of ``log_mel``.

    Returns:
        ``(n_mfcc, 1 + n_samples // hop_length)`` float32.
    """
    t = _mfcc_transform(int(sr), cfg.n_mfcc, cfg.n_fft, cfg.hop_length, float(cfg.f_min),
                        _f_max(sr, cfg.f_max), cfg.n_mels)
    with torch.inference_mode():
        out = t(_tensor(samples, cfg.n_fft))
    return out.numpy().astype(np.float32)


def log_mel_and_mfcc(samples: np.ndarray, sr: int, cfg: FeaturesConfig
                     ) -> tuple[np.ndarray, np.ndarray]:
    """``(log_mel(samples, sr, cfg), mfcc(samples, sr, cfg))`` from one mel spectrogram.

    Args:
        samples: ``(n_samples,)`` mono float signal.
        sr: sample rate (Hz).
        cfg: mel settings of ``log_mel`` plus ``n_mfcc``.

    Returns:
        ``(log_mel (n_mels, frames) float16 dB, mfcc (n_mfcc, frames) float32)``, equal to the
        outputs of ``log_mel`` and ``mfcc`` (``frames = 1 + n_samples // hop_length``).
    """
    t = _mfcc_transform(int(sr), cfg.n_mfcc, cfg.n_fft, cfg.hop_length, float(cfg.f_min),
                        _f_max(sr, cfg.f_max), cfg.n_mels)
    with torch.inference_mode():
        mel_power = t.MelSpectrogram(_tensor(samples, cfg.n_fft))  # (n_mels, frames)
        mel_db = torchaudio.functional.amplitude_to_DB(mel_power, 10.0, 1e-10, 0.0, None)
        # torchaudio's MFCC takes AmplitudeToDB(top_db=80): the same dB values clamped at max - 80
        mel_db_80 = torch.maximum(mel_db, mel_db.max() - t.amplitude_to_DB.top_db)
        coeffs = torch.matmul(mel_db_80.transpose(-1, -2), t.dct_mat).transpose(-1, -2)
    return mel_db.numpy().astype(np.float16), coeffs.numpy().astype(np.float32)


def mfcc_stats(mfcc_frames: np.ndarray) -> np.ndarray:
    """Per-coefficient mean then standard deviation over frames.

    Args:
        mfcc_frames: ``(n_mfcc, frames)``.

    Returns:
        ``(2 * n_mfcc,)`` float32: ``[mean_0..mean_{n-1}, std_0..std_{n-1}]``.
    """
    m = np.asarray(mfcc_frames, dtype=np.float64)
    return np.concatenate([m.mean(axis=1), m.std(axis=1)]).astype(np.float32)
