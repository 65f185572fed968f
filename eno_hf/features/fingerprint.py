"""A 64-dimensional hand-crafted "fingerprint" of a segment (librosa + BS.1770 loudness).

Frame analysis: ONE librosa STFT per call (``n_fft=2048``, ``hop_length=512``, Hann window, centred
frames) at the signal's own sample rate; signals shorter than ``n_fft`` are zero-padded to ``n_fft``.
Its magnitude ``S`` / power ``S**2`` is passed (``S=``) to every librosa spectral feature below, and
the 128-band mel spectrogram built from it feeds the MFCCs and the onset envelope.
"mean"/"std" are over frames. Units: Hz for frequencies, dB/dBFS/LUFS/LU for levels, BPM for tempo.

Index  Name(s)                               Definition (library function)
-----  ------------------------------------  ---------------------------------------------------------
0-1    spectral_centroid_mean_hz / _std_hz   ``librosa.feature.spectral_centroid``
2-3    spectral_flatness_mean / _std         ``librosa.feature.spectral_flatness`` (Wiener entropy, 0-1)
4-16   mfcc_00_mean .. mfcc_12_mean          ``librosa.feature.mfcc`` (13 coeffs, 128 mels, dB, DCT-II)
17     crest_factor                          whole-signal sample peak / RMS (linear ratio)
18     rms_dbfs                              whole-signal RMS level, dBFS
19     rms_std_db                            std of frame RMS in dB (frames of 2048 samples every 512,
                                             not centred: ``librosa.util.frame``)
20     peak_to_average_ratio_db              mean over the same frames of 20*log10(frame peak / RMS)
21-22  zero_crossing_rate_mean / _std        ``librosa.feature.zero_crossing_rate`` (per sample)
23-24  onset_strength_mean / _std            ``librosa.onset.onset_strength`` (spectral flux of mel dB)
25     integrated_lufs                       ITU-R BS.1770-4 (pyloudnorm); from ``stats`` if given
26     loudness_range_lu                     EBU Tech 3342 LRA (pyloudnorm); from ``stats`` if given
27-28  spectral_bandwidth_mean_hz / _std_hz  ``librosa.feature.spectral_bandwidth`` (order 2)
29-30  spectral_rolloff_mean_hz / _std_hz    ``librosa.feature.spectral_rolloff`` (85 % of energy)
31-37  spectral_contrast_b0_mean .. b6_mean  ``librosa.feature.spectral_contrast`` (6 octave bands + rest,
                                             fmin = min(200 Hz, 0.9 * Nyquist / 64)), dB
38     tempo_bpm                             ``librosa.feature.tempo`` (global, from onset strength)
39     onset_rate_per_s                      ``librosa.onset.onset_detect`` count / duration
40-51  chroma_c_mean .. chroma_b_mean        ``librosa.feature.chroma_stft`` with ``tuning=0.0`` (no
                                             tuning estimation; 12 pitch classes, C..B, A440)
52-63  mfcc_01_std .. mfcc_12_std            std over frames of MFCC 1-12

Chroma uses ``tuning=0.0``: librosa's default estimates the tuning per call with ``piptrack``,
which cost more than all other fields together.

``stats`` (a ``ConditioningStats``) supplies ``lufs_after`` and ``loudness_range_lu`` instead of
measuring them on ``samples``: they then describe the whole conditioned *recording* (the same two
values for all its segments), which is what ``eno_hf.data.build`` does. Without ``stats`` both are
measured on the segment itself (``eno_hf.audio.conditioning``; LRA is 0.0 for segments under ~1.5 s).
Loudness of a signal entirely below the -70 LUFS gate is reported as -70. Every value is finite: any
non-finite result (e.g. of a digital-silence frame) is replaced by 0 (ratios, rates, statistics) or
by the floor level (-120 dB for levels), after which the vector is checked.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import librosa
import numpy as np

from eno_hf.audio.conditioning import integrated_loudness, loudness_range

if TYPE_CHECKING:
    from eno_hf.audio.conditioning import ConditioningStats

__all__ = ["FINGERPRINT_NAMES", "FINGERPRINT_DIM", "fingerprint"]

N_FFT = 2048
HOP_LENGTH = 512
N_MELS = 128
_N_MFCC = 13
_FLOOR_DB = -120.0
_ROLL_PERCENT = 0.85
_CONTRAST_BANDS = 6
_PITCH_CLASSES = ("c", "c#", "d", "d#", "e", "f", "f#", "g", "g#", "a", "a#", "b")

FINGERPRINT_NAMES: tuple[str, ...] = (
    "spectral_centroid_mean_hz", "spectral_centroid_std_hz",
    "spectral_flatness_mean", "spectral_flatness_std",
    *(f"mfcc_{i:02d}_mean" for i in range(_N_MFCC)),
    "crest_factor", "rms_dbfs", "rms_std_db", "peak_to_average_ratio_db",
    "zero_crossing_rate_mean", "zero_crossing_rate_std",
    "onset_strength_mean", "onset_strength_std",
    "integrated_lufs", "loudness_range_lu",
    "spectral_bandwidth_mean_hz", "spectral_bandwidth_std_hz",
    "spectral_rolloff_mean_hz", "spectral_rolloff_std_hz",
    *(f"spectral_contrast_b{i}_mean" for i in range(7)),
    "tempo_bpm", "onset_rate_per_s",
    *(f"chroma_{p}_mean" for p in _PITCH_CLASSES),
    *(f"mfcc_{i:02d}_std" for i in range(1, _N_MFCC)),
)
"""Names of the 64 fingerprint dimensions, in order (see the module docstring)."""

FINGERPRINT_DIM = len(FINGERPRINT_NAMES)
assert FINGERPRINT_DIM == 64, FINGERPRINT_DIM


def _db(x: np.ndarray | float) -> np.ndarray:
    return 20.0 * np.log10(np.maximum(x, 1e-6))


def fingerprint(samples: np.ndarray, sr: int, stats: ConditioningStats | None = None) -> np.ndarray:
    """Compute the 64-d fingerprint of a mono signal.

    Args:
        samples: ``(n_samples,)`` mono float signal (any length; padded to 2048 if shorter).
        sr: sample rate (Hz).
        stats: conditioning stats of ``samples`` (uses ``lufs_after`` and ``loudness_range_lu``).

    Returns:
        ``(64,)`` float32, finite; names in ``FINGERPRINT_NAMES``, definitions in the module
        docstring (librosa feature functions on one shared STFT).

    Raises:
        ValueError: ``samples`` is not 1-D or contains non-finite values.
    """
    y = np.asarray(samples, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"fingerprint expects (n_samples,), got shape {y.shape}")
    if not np.all(np.isfinite(y)):
        raise ValueError("fingerprint input contains NaN/Inf")
    duration_s = max(y.shape[0], 1) / sr
    if y.shape[0] < N_FFT:
        y = np.pad(y, (0, N_FFT - y.shape[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        S = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP_LENGTH))
        power = S**2
        centroid = librosa.feature.spectral_centroid(S=S, sr=sr)[0]
        flatness = librosa.feature.spectral_flatness(S=S)[0]
        bandwidth = librosa.feature.spectral_bandwidth(S=S, sr=sr)[0]
        rolloff = librosa.feature.spectral_rolloff(S=S, sr=sr, roll_percent=_ROLL_PERCENT)[0]
        fmin = min(200.0, 0.9 * (sr / 2.0) / 2**_CONTRAST_BANDS)
        contrast = librosa.feature.spectral_contrast(S=S, sr=sr, fmin=fmin, n_bands=_CONTRAST_BANDS)
        chroma = librosa.feature.chroma_stft(S=power, sr=sr, tuning=0.0)
        mel_db = librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=sr, n_mels=N_MELS))
        mfcc = librosa.feature.mfcc(S=mel_db, n_mfcc=_N_MFCC)
        onset_env = librosa.onset.onset_strength(S=mel_db, sr=sr, hop_length=HOP_LENGTH)
        tempo = librosa.feature.tempo(onset_envelope=onset_env, sr=sr, hop_length=HOP_LENGTH)
        onsets = librosa.onset.onset_detect(onset_envelope=onset_env, sr=sr,
                                            hop_length=HOP_LENGTH)
        frames = librosa.util.frame(y, frame_length=N_FFT, hop_length=HOP_LENGTH)  # (N_FFT, T)
        frame_rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=0))
        frame_peak = np.max(np.abs(frames), axis=0)
        zcr = librosa.feature.zero_crossing_rate(y, frame_length=N_FFT, hop_length=HOP_LENGTH)[0]

    rms = float(np.sqrt(np.mean(np.square(y[: max(int(duration_s * sr), 1)], dtype=np.float64))))
    peak = float(np.max(np.abs(y)))
    if stats is not None:
        lufs, lra = float(stats.lufs_after), float(stats.loudness_range_lu)
    else:
        lufs = integrated_loudness(y, sr) if np.any(y) else float("-inf")
        lra = loudness_range(y, sr)
    lufs = max(lufs, -70.0) if np.isfinite(lufs) else -70.0
    active = frame_rms > 1e-6
    par = _db(frame_peak[active] / frame_rms[active]) if np.any(active) else np.zeros(1)

    values = [
        centroid.mean(), centroid.std(), flatness.mean(), flatness.std(),
        *mfcc.mean(axis=1),
        peak / rms if rms > 1e-9 else 0.0, float(_db(rms)), float(np.std(_db(frame_rms))),
        float(np.mean(par)),
        zcr.mean(), zcr.std(), onset_env.mean(), onset_env.std(),
        lufs, lra,
        bandwidth.mean(), bandwidth.std(), rolloff.mean(), rolloff.std(),
        *contrast.mean(axis=1),
        float(np.atleast_1d(tempo)[0]), len(onsets) / duration_s,
        *chroma.mean(axis=1),
        *mfcc[1:].std(axis=1),
    ]
    out = np.asarray(values, dtype=np.float64)
    out = np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=_FLOOR_DB).astype(np.float32)
    assert out.shape == (FINGERPRINT_DIM,), out.shape
    return out
