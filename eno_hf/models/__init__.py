"""eno models: ``EnoModelConfig``, ``EnoForAudioTagging``, ``EnoFeatureExtractor`` and their
registration with transformers' Auto classes (``register_auto_classes``, called on ``import eno_hf``).
"""

from __future__ import annotations

from eno_hf.models.configuration import EnoModelConfig
from eno_hf.models.feature_extraction import EnoFeatureExtractor
from eno_hf.models.modeling import EnoForAudioTagging, EnoOutput, EnoPreTrainedModel

__all__ = [
    "EnoFeatureExtractor",
    "EnoForAudioTagging",
    "EnoModelConfig",
    "EnoOutput",
    "EnoPreTrainedModel",
    "register_auto_classes",
]


def register_auto_classes() -> None:
    """Register eno with ``AutoConfig``, ``AutoModel``, ``AutoModelForAudioClassification`` and
    ``AutoFeatureExtractor`` (idempotent), so ``pipeline("audio-classification", model=dir)`` and
    ``AutoModel.from_pretrained(dir)`` load eno model directories."""
    from transformers import (
        AutoConfig,
        AutoFeatureExtractor,
        AutoModel,
        AutoModelForAudioClassification,
    )

    for register in (
        lambda: AutoConfig.register(EnoModelConfig.model_type, EnoModelConfig),
        lambda: AutoModel.register(EnoModelConfig, EnoForAudioTagging),
        lambda: AutoModelForAudioClassification.register(EnoModelConfig, EnoForAudioTagging),
        lambda: AutoFeatureExtractor.register(EnoModelConfig, EnoFeatureExtractor),
    ):
        try:
            register()
        except ValueError as exc:  # already registered (with our class): idempotent
            if "already" not in str(exc):
                raise
