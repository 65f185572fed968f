"""eno models: ``EnoModelConfig``, ``EnoForAudioTagging``, ``EnoFeatureExtractor`` and their
registration with transformers' Auto classes (``register_auto_classes``).

The classes are loaded on first access (``from eno_hf.models import EnoForAudioTagging`` imports
torch and transformers then), so light submodules such as ``eno_hf.models.weights`` or
``eno_hf.models.auto_register`` import without them. ``import eno_hf`` arranges the Auto-class
registration through :mod:`eno_hf.models.auto_register`.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

__all__ = [
    "EnoFeatureExtractor",
    "EnoForAudioTagging",
    "EnoModelConfig",
    "EnoOutput",
    "EnoPreTrainedModel",
    "register_auto_classes",
]

_LAZY = {
    "EnoModelConfig": "eno_hf.models.configuration",
    "EnoFeatureExtractor": "eno_hf.models.feature_extraction",
    "EnoForAudioTagging": "eno_hf.models.modeling",
    "EnoOutput": "eno_hf.models.modeling",
    "EnoPreTrainedModel": "eno_hf.models.modeling",
}

if TYPE_CHECKING:  # pragma: no cover
    from eno_hf.models.configuration import EnoModelConfig
    from eno_hf.models.feature_extraction import EnoFeatureExtractor
    from eno_hf.models.modeling import EnoForAudioTagging, EnoOutput, EnoPreTrainedModel


def __getattr__(name: str) -> Any:
    """The model classes (imported on first access), or a submodule (``eno_hf.models.modeling``)."""
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")  # sets the attribute too
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def register_auto_classes() -> None:
    """Register eno with ``AutoConfig``, ``AutoModel``, ``AutoModelForAudioClassification`` and
    ``AutoFeatureExtractor`` (idempotent), so ``pipeline("audio-classification", model=dir)`` and
    ``AutoModel.from_pretrained(dir)`` load eno model directories. Imports torch and transformers."""
    from transformers import (
        AutoConfig,
        AutoFeatureExtractor,
        AutoModel,
        AutoModelForAudioClassification,
    )

    from eno_hf.models.configuration import EnoModelConfig
    from eno_hf.models.feature_extraction import EnoFeatureExtractor
    from eno_hf.models.modeling import EnoForAudioTagging

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
