"""``EnoFeatureExtractor``: raw audio -> mono, resampled, loudness-normalized ``input_values``.

Saved as ``preprocessor_config.json`` next to the model, so ``pipeline("audio-classification",
model=dir)`` prepares audio exactly as training data was conditioned: mono mix-down, resampling
with soxr (Ottosen / libsoxr), integrated loudness normalization to ``target_lufs`` (ITU-R
BS.1770-4, pyloudnorm) with the gain reduced so the sample peak stays under ``peak_ceiling_dbfs``
(the same rule as ``eno_hf.audio.conditioning``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import soxr
from transformers import BatchFeature, SequenceFeatureExtractor

from eno_hf.audio.conditioning import integrated_loudness

MIN_LOUDNESS_S = 0.4
"""BS.1770 gating blocks are 400 ms: shorter inputs are left at their level."""


def normalize_loudness(
    samples: np.ndarray, sample_rate: int, target_lufs: float, peak_ceiling_dbfs: float | None = -1.0
) -> np.ndarray:
    """Scale mono audio to ``target_lufs`` integrated loudness (ITU-R BS.1770-4, measured with
    ``eno_hf.audio.conditioning.integrated_loudness``, i.e. pyloudnorm) with one linear gain.

    Args:
        samples: ``(samples,)`` float32 mono.
        sample_rate: Hz.
        target_lufs: target integrated loudness in LUFS.
        peak_ceiling_dbfs: the gain is lowered so ``max|x|`` stays at or below this (None = no limit).

    Returns:
        ``(samples,)`` float32; unchanged when shorter than 0.4 s or silent (loudness -inf).
    """
    if samples.shape[0] < int(MIN_LOUDNESS_S * sample_rate):
        return samples
    loudness = integrated_loudness(samples, sample_rate)
    if not np.isfinite(loudness):
        return samples
    gain = 10.0 ** ((target_lufs - loudness) / 20.0)
    peak = float(np.max(np.abs(samples)))
    if peak_ceiling_dbfs is not None and peak > 0:
        gain = min(gain, 10.0 ** (peak_ceiling_dbfs / 20.0) / peak)
    return (samples * gain).astype(np.float32)


class EnoFeatureExtractor(SequenceFeatureExtractor):
    """Raw audio -> ``input_values (batch, samples)`` float32 mono at ``sampling_rate``.

    Args:
        sampling_rate: output rate in Hz (the model's ``config.sample_rate``).
        target_lufs: integrated loudness target in LUFS; None disables normalization.
        peak_ceiling_dbfs: sample-peak ceiling applied with the loudness gain.
        padding_value: value used to pad batches (0.0).
        return_attention_mask: return ``attention_mask`` (1 = real sample) with padded batches.

    Call with one waveform (``(samples,)`` or ``(channels, samples)``), a list of them, or a 2-D
    array ``(batch, samples)`` (transformers convention). Multi-channel items are averaged to mono.
    ``sampling_rate`` given and different from the extractor's: resampled with soxr (HQ).
    """

    model_input_names = ["input_values", "attention_mask"]

    def __init__(
        self,
        sampling_rate: int = 16_000,
        target_lufs: float | None = -18.0,
        peak_ceiling_dbfs: float | None = -1.0,
        padding_value: float = 0.0,
        return_attention_mask: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("feature_size", None)
        super().__init__(
            feature_size=1, sampling_rate=sampling_rate, padding_value=padding_value,
            return_attention_mask=return_attention_mask, **kwargs,
        )
        self.target_lufs = target_lufs
        self.peak_ceiling_dbfs = peak_ceiling_dbfs

    def _prepare(self, item: Any, sampling_rate: int) -> np.ndarray:
        x = np.asarray(item.detach().cpu().numpy() if hasattr(item, "detach") else item, dtype=np.float32)
        if x.ndim == 2:
            x = x.mean(axis=0)
        if x.ndim != 1:
            raise ValueError(f"expected (samples,) or (channels, samples) audio, got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("audio contains NaN or Inf samples")
        if sampling_rate != self.sampling_rate and x.shape[0] > 0:
            x = soxr.resample(x, sampling_rate, self.sampling_rate, quality="HQ").astype(np.float32)
        if self.target_lufs is not None:
            x = normalize_loudness(x, self.sampling_rate, self.target_lufs, self.peak_ceiling_dbfs)
        return np.ascontiguousarray(x, dtype=np.float32)

    def __call__(
        self,
        raw_audio: np.ndarray | list[Any],
        sampling_rate: int | None = None,
        padding: bool | str = True,
        max_length: int | None = None,
        truncation: bool = False,
        return_attention_mask: bool | None = None,
        return_tensors: str | None = None,
        **kwargs: Any,
    ) -> BatchFeature:
        """Prepare one or several waveforms.

        Args:
            raw_audio: ``(samples,)``, ``(channels, samples)``, a list of those, or a 2-D array /
                tensor ``(batch, samples)``.
            sampling_rate: rate of ``raw_audio`` in Hz (default: the extractor's own).
            padding, max_length, truncation: as ``SequenceFeatureExtractor.pad``.
            return_attention_mask: default ``self.return_attention_mask``.
            return_tensors: ``"pt"``, ``"np"`` or None (lists).

        Returns:
            ``BatchFeature`` with ``input_values`` ``(batch, samples)`` float32 and, if asked,
            ``attention_mask`` ``(batch, samples)`` int32.

        Raises:
            ValueError: wrong shape, NaN/Inf samples.
        """
        rate = int(sampling_rate) if sampling_rate is not None else int(self.sampling_rate)
        if isinstance(raw_audio, (list, tuple)) and raw_audio and not np.isscalar(raw_audio[0]):
            items = list(raw_audio)
        elif hasattr(raw_audio, "ndim") and raw_audio.ndim == 2:
            items = list(raw_audio)
        else:
            items = [raw_audio]
        values = [self._prepare(item, rate) for item in items]
        batch = BatchFeature({"input_values": values})
        return self.pad(
            batch, padding=padding, max_length=max_length, truncation=truncation,
            return_attention_mask=return_attention_mask, return_tensors=return_tensors,
        )
