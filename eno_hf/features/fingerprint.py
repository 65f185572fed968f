"""A 64-dimensional hand-crafted "fingerprint" of a segment (librosa definitions, one STFT).

Frame analysis: ONE short-time Fourier transform per call (``torch.stft``, ``n_fft=2048``,
``hop_length=512``, periodic Hann window, centred frames with zero padding — exactly
``librosa.stft``'s defaults) at the signal's own sample rate; signals shorter than ``n_fft`` are
zero-padded to ``n_fft``. Its magnitude ``S`` and power ``S**2`` feed every spectral field; the
128-band mel spectrogram (``librosa.filters.mel``, applied as a sparse matrix) feeds the MFCCs and
the onset envelope. Each field is computed with the formula of the librosa function named below
(vectorised over frames, float64 where sums of squares could cancel); ``tests/features/
test_fingerprint.py`` checks them against the librosa functions on a real clip. "mean"/"std" are
over frames. Units: Hz for frequencies, dB/dBFS/LUFS/LU for levels, BPM for tempo.

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
25     integrated_lufs                       ITU-R BS.1770-4; from ``stats`` if given
26     loudness_range_lu                     EBU Tech 3342 LRA; from ``stats`` if given
27-28  spectral_bandwidth_mean_hz / _std_hz  ``librosa.feature.spectral_bandwidth`` (order 2)
29-30  spectral_rolloff_mean_hz / _std_hz    ``librosa.feature.spectral_rolloff`` (85 % of energy)
31-37  spectral_contrast_b0_mean .. b6_mean  ``librosa.feature.spectral_contrast`` (6 octave bands + rest,
                                             fmin = min(200 Hz, 0.9 * Nyquist / 64)), dB
38     tempo_bpm                             ``librosa.feature.tempo`` (global, from onset strength)
39     onset_rate_per_s                      ``librosa.onset.onset_detect`` count / duration
40-51  chroma_c_mean .. chroma_b_mean        ``librosa.feature.chroma_stft`` with ``tuning=0.0`` (no
                                             tuning estimation; 12 pitch classes, C..B, A440)
52-63  mfcc_01_std .. mfcc_12_std            std over frames of MFCC 1-12

Differences from calling the librosa functions one by one: floating-point summation order only
(float32 FFT and matrix products), except chroma, which uses ``tuning=0.0`` (librosa's default estimates the tuning per
call with ``piptrack``, which cost more than all other fields together).

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
from functools import lru_cache
from typing import TYPE_CHECKING

import librosa
import numpy as np
import scipy.fft
import scipy.sparse
import torch

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
_CONTRAST_QUANTILE = 0.02
_ZC_THRESHOLD = 1e-10  # librosa.zero_crossings default
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


@lru_cache(maxsize=8)
def _filterbanks(sr: int) -> tuple[scipy.sparse.csr_matrix, np.ndarray, np.ndarray, torch.Tensor,
                                    list[tuple[np.ndarray, int, bool]]]:
    """Per-rate constants: sparse mel basis, chroma basis, FFT bin frequencies, window, bands."""
    mel = librosa.filters.mel(sr=sr, n_fft=N_FFT, n_mels=N_MELS)  # slaney, fmax = sr / 2
    chroma = librosa.filters.chroma(sr=sr, n_fft=N_FFT, tuning=0.0, n_chroma=12)
    freq = librosa.fft_frequencies(sr=sr, n_fft=N_FFT)
    window = torch.hann_window(N_FFT, periodic=True)
    return (scipy.sparse.csr_matrix(mel.astype(np.float32)), np.ascontiguousarray(chroma, np.float32),
            freq, window, _contrast_bands(sr, freq))


def _contrast_bands(sr: int, freq: np.ndarray) -> list[tuple[np.ndarray, int, bool]]:
    """Bins and quantile count of each ``librosa.feature.spectral_contrast`` band (same rules)."""
    fmin = min(200.0, 0.9 * (sr / 2.0) / 2**_CONTRAST_BANDS)
    octa = np.zeros(_CONTRAST_BANDS + 2)
    octa[1:] = fmin * (2.0 ** np.arange(0, _CONTRAST_BANDS + 1))
    bands = []
    for k, (f_low, f_high) in enumerate(zip(octa[:-1], octa[1:])):
        current = np.logical_and(freq >= f_low, freq <= f_high)
        idx = np.flatnonzero(current)
        if k > 0:
            current[idx[0] - 1] = True
        if k == _CONTRAST_BANDS:
            current[idx[-1] + 1:] = True
        n_q = int(max(np.rint(_CONTRAST_QUANTILE * np.sum(current)), 1))
        rows = np.flatnonzero(current)
        if k < _CONTRAST_BANDS:
            rows = rows[:-1]
        bands.append((rows, n_q, k < _CONTRAST_BANDS))
    return bands


def _contrast(St: np.ndarray, bands: list[tuple[np.ndarray, int, bool]]) -> np.ndarray:
    """``librosa.feature.spectral_contrast`` (dB) of the magnitude ``St`` ``(frames, bins)``.

    Same bands, sort and quantile bins as librosa; frames-major layout so each sort runs over
    contiguous memory (4x faster than sorting librosa's ``(bins, frames)`` columns).
    """
    valley = np.empty((len(bands), St.shape[0]))
    peak = np.empty_like(valley)
    for k, (rows, n_q, _) in enumerate(bands):
        sub = St[:, rows[0]: rows[-1] + 1]  # bands are contiguous bin ranges
        sub = np.sort(sub, axis=1)
        valley[k] = sub[:, :n_q].mean(axis=1)
        peak[k] = sub[:, -n_q:].mean(axis=1)
    return librosa.power_to_db(peak) - librosa.power_to_db(valley)


def _zcr(y: np.ndarray) -> np.ndarray:
    """``librosa.feature.zero_crossing_rate(y, 2048, 512)`` (centred, edge padding) per frame."""
    yp = np.pad(y, N_FFT // 2, mode="edge")
    neg = np.signbit(np.where(np.abs(yp) <= _ZC_THRESHOLD, np.float32(0.0), yp))
    cross = np.zeros(yp.shape[0], dtype=np.int64)
    cross[1:] = neg[1:] != neg[:-1]  # crossing between samples i-1 and i
    csum = np.cumsum(cross)
    starts = np.arange(1 + (yp.shape[0] - N_FFT) // HOP_LENGTH) * HOP_LENGTH
    # librosa counts i = start+1 .. start+N_FFT-1 within each frame (first sample: pad=False)
    return (csum[starts + N_FFT - 1] - csum[starts]) / N_FFT


def _frame_rms_peak(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RMS and sample peak of ``librosa.util.frame(y, 2048, 512)`` frames (not centred)."""
    n_frames = 1 + (y.shape[0] - N_FFT) // HOP_LENGTH
    per_hop = N_FFT // HOP_LENGTH  # a frame is 4 consecutive hops
    n_hops = n_frames + per_hop - 1
    hops = y[: n_hops * HOP_LENGTH].reshape(n_hops, HOP_LENGTH)
    hop_ss = np.einsum("ij,ij->i", hops, hops, dtype=np.float64)
    hop_peak = np.abs(hops).max(axis=1)
    ss = sum(hop_ss[i: i + n_frames] for i in range(per_hop))
    peak = np.max(np.stack([hop_peak[i: i + n_frames] for i in range(per_hop)]), axis=0)
    return np.sqrt(ss / N_FFT), peak


def fingerprint(samples: np.ndarray, sr: int, stats: ConditioningStats | None = None) -> np.ndarray:
    """Compute the 64-d fingerprint of a mono signal.

    Args:
        samples: ``(n_samples,)`` mono float signal (any length; padded to 2048 if shorter).
        sr: sample rate (Hz).
        stats: conditioning stats of ``samples`` (uses ``lufs_after`` and ``loudness_range_lu``).

    Returns:
        ``(64,)`` float32, finite; names in ``FINGERPRINT_NAMES``, definitions in the module
        docstring (librosa feature functions, one shared STFT).

    Raises:
        ValueError: ``samples`` is not 1-D or contains non-finite values.
    """
    y = np.ascontiguousarray(samples, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"fingerprint expects (n_samples,), got shape {y.shape}")
    if not np.all(np.isfinite(y)):
        raise ValueError("fingerprint input contains NaN/Inf")
    duration_s = max(y.shape[0], 1) / sr
    if y.shape[0] < N_FFT:
        y = np.pad(y, (0, N_FFT - y.shape[0]))
    mel_fb, chroma_fb, freq, window, bands = _filterbanks(int(sr))

    with torch.inference_mode():
        spec = torch.stft(torch.from_numpy(y), N_FFT, HOP_LENGTH, window=window, center=True,
                          pad_mode="constant", return_complex=True).T  # (frames, bins), contiguous
        re_im = torch.view_as_real(spec)
        power_t = re_im[..., 0] * re_im[..., 0] + re_im[..., 1] * re_im[..., 1]
        mag_t = power_t.sqrt()
        # cumulative magnitude over bins for the rolloff (torch: ~3x faster than np.cumsum here)
        cum = torch.cumsum(mag_t, dim=1).numpy()
        power, S = power_t.numpy(), mag_t.numpy()  # (frames, 1 + N_FFT // 2) float32

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # centroid / bandwidth (order 2) from the moments of the L1-normalized magnitude; columns
        # summing below ``tiny`` stay unnormalized (librosa.util.normalize's rule)
        moments = S.astype(np.float64) @ np.stack([np.ones_like(freq), freq, freq * freq], axis=1)
        total = moments[:, 0].copy()
        total[total < np.finfo(np.float32).tiny] = 1.0
        m0, m1, m2 = (moments / total[:, None]).T
        centroid = m1
        bandwidth = np.sqrt(np.maximum(m2 - 2.0 * centroid * m1 + centroid**2 * m0, 0.0))
        # rolloff: lowest bin frequency whose cumulative magnitude reaches 85 % of the frame total
        rolloff = freq[np.argmax(cum >= _ROLL_PERCENT * cum[:, -1:], axis=1)]
        del cum
        # flatness on the power spectrum (amin 1e-10)
        p_thr = np.maximum(power, 1e-10)
        flatness = np.exp(np.log(p_thr).mean(axis=1)) / p_thr.mean(axis=1)
        del p_thr
        contrast = _contrast(S, bands)
        raw_chroma = power @ chroma_fb.T  # (frames, 12)
        c_norm = raw_chroma.max(axis=1)
        c_norm[c_norm < np.finfo(np.float32).tiny] = 1.0
        chroma = (raw_chroma / c_norm[:, None]).T
        mel_db = librosa.power_to_db(np.asarray(mel_fb @ power.T))  # (N_MELS, frames)
        mfcc = scipy.fft.dct(mel_db, axis=0, type=2, norm="ortho")[:_N_MFCC]
        onset_env = librosa.onset.onset_strength(S=mel_db, sr=sr, hop_length=HOP_LENGTH)
        tempo = librosa.feature.tempo(onset_envelope=onset_env, sr=sr, hop_length=HOP_LENGTH)
        onsets = librosa.onset.onset_detect(onset_envelope=onset_env, sr=sr,
                                            hop_length=HOP_LENGTH)
        frame_rms, frame_peak = _frame_rms_peak(y)
        zcr = _zcr(y)

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
