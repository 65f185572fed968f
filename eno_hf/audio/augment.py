"""Training-time waveform augmentation: random gain, coloured noise, filter/EQ, small pitch shift.

Libraries: Butterworth low/high-pass from ``scipy.signal.butter`` + ``sosfilt`` (2nd order;
pedalboard's ``LowpassFilter``/``HighpassFilter`` are 1st order only), the peaking EQ from
pedalboard's ``PeakFilter`` (JUCE's RBJ-cookbook peak biquad), the time-preserving pitch shift from
pedalboard's offline Rubber Band stretcher (``pedalboard.time_stretch`` with
``stretch_factor=1`` and ``pitch_shift_in_semitones``: accurate to < 0.1 % in frequency; the
real-time ``pedalboard.PitchShift`` was ~1 % off on a sine, so it is not used), coloured noise by
shaping white Gaussian noise with a ``1/f**(decay/2)`` amplitude spectrum (power density ~
``1/f**decay``: 0 white, 1 pink, 2 brown/red — the same construction as audiomentations'
``AddColorNoise``; pedalboard has no noise generator).

audiomentations 0.43.1 is not used because installing it downgrades the pinned ``soxr==1.1.0``
to 0.5.

Each transform is applied independently with its probability; parameters are drawn from a
``numpy.random.Generator`` seeded once, so an ``Augmenter`` built with the same seed produces the same
sequence of outputs for the same sequence of inputs.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

__all__ = ["Augmenter", "rubberband_shift"]


def rubberband_shift(x: np.ndarray, sample_rate: int, semitones: float = 0.0,
                     rate: float = 1.0, high_quality: bool = False) -> np.ndarray:
    """Pitch shift by ``semitones`` and/or time stretch by ``rate`` (> 1 faster/shorter) in one
    offline pass of Rubber Band (``pedalboard.time_stretch``). ``high_quality=False`` (Rubber
    Band's faster engine) took 0.30 s of CPU per 30 s of 16-kHz audio against 0.82 s for
    ``True``, with the same output length and a 440 Hz sine shifted +2 semitones landing on the
    same frequency (493.89 Hz, target 493.88) — enough for augmentation.

    Args:
        x: ``(n,)`` float mono waveform.
        sample_rate: Hz.
    Returns:
        ``(m,)`` float32 with ``m ≈ n / rate`` (``m == n`` when ``rate == 1``).
    """
    import pedalboard

    y = pedalboard.time_stretch(np.ascontiguousarray(x, dtype=np.float32)[None, :], float(sample_rate),
                                stretch_factor=float(rate), pitch_shift_in_semitones=float(semitones),
                                high_quality=bool(high_quality))
    return np.asarray(y[0], dtype=np.float32)


class Augmenter:
    """Random waveform augmentation, deterministic per seed.

    Args:
        sample_rate: Hz of the waveforms it will receive.
        seed: seed of its ``numpy.random.Generator``.
        p: probability of each of gain, noise and filter/EQ.
        p_pitch: probability of a pitch shift (the slowest transform; 0 disables).
        gain_db: uniform range of the gain (dB).
        snr_db: uniform range of the signal-to-noise ratio of the added noise (dB, w.r.t. the
            signal's RMS).
        noise_decay: uniform range of the noise's spectral decay exponent (0 white .. 2 brown).
        max_semitones: pitch shift drawn uniformly in ``[-max_semitones, max_semitones]``.

    Call: ``augmenter(waveform)`` with ``(n_samples,)`` float → ``(n_samples,)`` float32 (no clipping).
    """

    def __init__(self, sample_rate: int, seed: int = 0, p: float = 0.5, p_pitch: float = 0.1,
                 gain_db: tuple[float, float] = (-6.0, 6.0),
                 snr_db: tuple[float, float] = (15.0, 40.0),
                 noise_decay: tuple[float, float] = (0.0, 2.0),
                 max_semitones: float = 2.0) -> None:
        self.sample_rate = int(sample_rate)
        self.seed = seed
        self.p, self.p_pitch = p, p_pitch
        self.gain_db, self.snr_db, self.noise_decay = gain_db, snr_db, noise_decay
        self.max_semitones = max_semitones
        self.rng = np.random.default_rng(seed)

    def reseed(self, seed: int) -> None:
        """Restart the random stream from ``seed`` (e.g. per DataLoader worker:
        ``worker_init_fn`` calling ``augmenter.reseed(base_seed + worker_id)``, since forked
        workers otherwise share one copied stream and draw identical augmentations)."""
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    # ------------------------------------------------------------------ transforms
    def gain(self, x: np.ndarray) -> np.ndarray:
        """Multiply by a random gain in ``gain_db``."""
        return x * np.float32(10.0 ** (self.rng.uniform(*self.gain_db) / 20.0))

    def colored_noise(self, x: np.ndarray) -> np.ndarray:
        """Add Gaussian noise with power spectral density ~ 1/f**decay at a random SNR."""
        n = x.shape[0]
        decay = self.rng.uniform(*self.noise_decay)
        spec = np.fft.rfft(self.rng.standard_normal(n))
        f = np.fft.rfftfreq(n, d=1.0 / self.sample_rate)
        f[0] = f[1] if n > 2 else 1.0
        noise = np.fft.irfft(spec / f ** (decay / 2.0), n=n)
        sig_rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
        noise_rms = float(np.sqrt(np.mean(noise**2)))
        snr = self.rng.uniform(*self.snr_db)
        if sig_rms <= 1e-9 or noise_rms <= 0:
            return x
        noise *= sig_rms / (noise_rms * 10.0 ** (snr / 20.0))
        return (x + noise).astype(np.float32)

    def filter(self, x: np.ndarray) -> np.ndarray:
        """One of: 2nd-order Butterworth low-pass (2–7 kHz, below Nyquist) or high-pass
        (40–400 Hz) (``scipy.signal.butter``), or a peaking EQ of ±6 dB, Q 0.5–2
        (``pedalboard.PeakFilter``)."""
        nyquist = self.sample_rate / 2.0
        kind = self.rng.integers(3)
        if kind == 0:
            cutoff = self.rng.uniform(min(2000.0, 0.4 * nyquist), min(7000.0, 0.9 * nyquist))
            sos = signal.butter(2, cutoff, "lowpass", fs=self.sample_rate, output="sos")
        elif kind == 1:
            cutoff = self.rng.uniform(40.0, min(400.0, 0.5 * nyquist))
            sos = signal.butter(2, cutoff, "highpass", fs=self.sample_rate, output="sos")
        else:
            center = self.rng.uniform(100.0, min(5000.0, 0.8 * nyquist))
            import pedalboard

            peak = pedalboard.PeakFilter(cutoff_frequency_hz=center, gain_db=self.rng.uniform(-6.0, 6.0),
                                         q=self.rng.uniform(0.5, 2.0))
            return peak(np.ascontiguousarray(x, dtype=np.float32), float(self.sample_rate))
        return signal.sosfilt(sos, x).astype(np.float32)

    def pitch_shift(self, x: np.ndarray) -> np.ndarray:
        """Time-preserving pitch shift by a random number of semitones (Rubber Band via pedalboard)."""
        steps = self.rng.uniform(-self.max_semitones, self.max_semitones)
        y = rubberband_shift(x, self.sample_rate, semitones=steps)
        if y.shape[0] != x.shape[0]:  # Rubber Band keeps the length at rate 1; guard against rounding
            y = np.pad(y[: x.shape[0]], (0, max(0, x.shape[0] - y.shape[0])))
        return y

    # ------------------------------------------------------------------ call
    def __call__(self, waveform: np.ndarray) -> np.ndarray:
        """Augment one ``(n_samples,)`` waveform; returns a new float32 array of the same shape.

        Raises:
            ValueError: input not 1-D.
        """
        x = np.asarray(waveform, dtype=np.float32)
        if x.ndim != 1:
            raise ValueError(f"Augmenter expects (n_samples,), got shape {x.shape}")
        x = x.copy()
        if x.shape[0] < 4:
            return x
        do = self.rng.random(4) < np.array([self.p_pitch, self.p, self.p, self.p])
        if do[0] and self.max_semitones > 0 and x.shape[0] >= 2048:
            x = self.pitch_shift(x)
        if do[1]:
            x = self.filter(x)
        if do[2]:
            x = self.colored_noise(x)
        if do[3]:
            x = self.gain(x)
        return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32, copy=False)
