"""Audio encoders for eno models and ``build_encoder`` (config -> encoder with random weights).

Every encoder follows ``encoders.base.Encoder``: ``(batch, samples) float32 -> (batch, output_dim)``.
Encoder modules are imported lazily so that a missing optional dependency (``muq``) only fails
when that encoder is asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from eno_hf.models.encoders.base import Encoder
from eno_hf.models.encoders.muq import MuQEncoder

if TYPE_CHECKING:  # pragma: no cover
    from eno_hf.models.configuration import EnoModelConfig

__all__ = ["Encoder", "EmbeddingInput", "build_encoder"]


class EmbeddingInput(Encoder):
    """Pass-through "encoder" for ``encoder_type="embeddings"``: the input already is a feature vector.

    ``forward(features (batch, input_dim) float32) -> the same tensor``. Used for fast probes on
    dataset columns (fingerprint, pooled embeddings). No chunking, no sample rate.

    Args:
        input_dim: size of the feature vector.
        columns: dataset columns concatenated into the vector (recorded for training/inference).
    """

    native_input_s = 0.0

    def __init__(self, input_dim: int, columns: list[str] | None = None) -> None:
        super().__init__()
        if input_dim <= 0:
            raise ValueError(f"input_dim must be > 0, got {input_dim}")
        self.output_dim = int(input_dim)
        self.columns = list(columns or [])
        self.default_lora_targets = []

    def forward(self, waveform: Tensor) -> Tensor:
        if waveform.ndim != 2 or waveform.shape[1] != self.output_dim:
            raise ValueError(f"expected features of shape (batch, {self.output_dim}), got {tuple(waveform.shape)}")
        return waveform.to(torch.float32)


def build_encoder(config: EnoModelConfig) -> Encoder:
    """Build the encoder named by ``config.encoder_type`` from ``config.encoder_kwargs`` (random weights).

    Pretrained weights are loaded afterwards (``models.factory.create_model``) or by
    ``EnoForAudioTagging.from_pretrained`` from the saved model.

    Raises:
        ValueError: unknown ``encoder_type`` or bad kwargs.
        ImportError: ``muq`` asked for but the ``muq`` package is not installed.
    """
    kind = config.encoder_type
    kwargs: dict[str, Any] = dict(config.encoder_kwargs or {})
    if kind == "mel_cnn":
        from eno_hf.models.encoders.mel_cnn import MelCNNEncoder

        return MelCNNEncoder(**kwargs)
    if kind == "tagger_ensemble" or (kind == "sota_tagger" and "taggers" in kwargs):
        # (``sota_tagger`` + ``taggers``: configs saved before "tagger_ensemble" was an encoder type)
        from eno_hf.models.encoders.tagger_ensemble import TaggerEnsembleEncoder

        return TaggerEnsembleEncoder(**kwargs)
    if kind == "sota_tagger":
        from eno_hf.models.encoders.sota_taggers import build_tagger

        return build_tagger(**kwargs)
    if kind == "hf_audio":
        from eno_hf.models.encoders.hf_audio import HFAudioEncoder

        kwargs.setdefault("pooling", config.pooling)
        return HFAudioEncoder(**kwargs)
    if kind == "muq":
        kwargs.setdefault("pooling", config.pooling)
        return MuQEncoder(**kwargs)
    if kind == "embeddings":
        return EmbeddingInput(**kwargs)
    raise ValueError(f"unknown encoder_type {kind!r}")
