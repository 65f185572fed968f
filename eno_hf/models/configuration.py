"""``EnoModelConfig``: everything needed to rebuild an eno tagging model from ``config.json`` alone.

The label space seen by ``transformers.pipeline("audio-classification")`` is the concatenation of
all classification heads' labels as ``"{head}/{label}"`` (``id2label``), and ``problem_type`` is
``"multi_label_classification"`` so the pipeline applies a sigmoid (single-label heads are emitted
as ``logit(softmax)`` by the model, so the sigmoid gives back their softmax probabilities).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from typing import Any

from transformers import PreTrainedConfig

from eno_hf.models.heads import CLASSIFICATION_KINDS, HEAD_KINDS, HeadSpec

__all__ = ["CLASSIFICATION_KINDS", "ENCODER_TYPES", "HEAD_KINDS", "EnoModelConfig", "normalize_head"]

ENCODER_TYPES = ("mel_cnn", "sota_tagger", "tagger_ensemble", "hf_audio", "muq", "embeddings")


def normalize_head(head: Mapping[str, Any] | HeadSpec) -> dict[str, Any]:
    """Validate one head spec through ``HeadSpec`` and fill defaults (the JSON form kept in
    ``config.json``).

    Args:
        head: a ``HeadSpec`` or ``{name, kind, labels?, weight?, dim?, column?, pos_weight?}``;
            ``labels`` is required (non-empty) for multilabel/singlelabel heads, ``dim`` is read
            for projection heads only (default 128; other kinds' sizes follow from their labels).
            Extra keys are kept (configs written by older versions load unchanged).

    Returns:
        ``{name, kind, labels: list[str], dim: int, column: str, weight: float, pos_weight: bool}``
        (``dim`` = number of outputs) plus any extra keys.

    Raises:
        ValueError: see ``HeadSpec`` (unknown kind, bad name, classification head without labels).
    """
    spec = HeadSpec.coerce(head)
    return spec.to_dict() if head is spec else {**head, **spec.to_dict()}


class EnoModelConfig(PreTrainedConfig):
    """Configuration of ``EnoForAudioTagging`` (an encoder, a shared trunk and one head per task).

    Attributes:
        encoder_type: ``"mel_cnn" | "sota_tagger" | "hf_audio" | "muq" | "embeddings"``.
        encoder_kwargs: keyword arguments that rebuild the encoder (random weights) from the config
            alone, e.g. ``{"arch": "musicnn", "n_tags": 50}`` for ``sota_tagger``, the HF encoder's
            config dict and ``model_type`` for ``hf_audio``, ``{"input_dim": 64}`` for
            ``embeddings`` (``input_values`` is then a ``(batch, input_dim)`` feature vector).
        sample_rate: input rate in Hz of ``input_values``.
        chunk_s: inference window in seconds (default: the encoder's ``native_input_s``); longer
            inputs are split into windows and their probabilities averaged.
        chunk_tail_min_ratio: a last partial window is zero-padded and kept if it holds at least
            this fraction of a window, else dropped (1.0 = drop every partial tail, the reference
            chunking of Won et al. 2020; inputs shorter than one window are always padded).
        chunk_batch_size: windows sent through the encoder at once (bounds memory on long files).
        pooling: encoder pooling (``mean | attention | weighted_layers``), used by hf_audio.
        hidden_dim: width of the shared trunk ``Linear -> ReLU -> Dropout``; ``0`` = no trunk
            (heads read the encoder embedding directly, used to import pretrained taggers).
        dropout: trunk dropout probability.
        heads: ``HeadSpec.to_dict()`` list ``{name, kind, labels, dim, column, weight, pos_weight}``
            (see ``normalize_head``): the JSON form ``config.json`` keeps. Code reads the heads as
            ``HeadSpec`` s through ``head_specs`` (``head(name)``, ``classification_heads``).
        thresholds: per classification head, one decision threshold per label (filled after
            evaluation); missing heads use 0.5.
        target_lufs: loudness the feature extractor normalizes to (ITU-R BS.1770-4), None = off.
    """

    model_type = "eno"

    encoder_type: str = "mel_cnn"
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    sample_rate: int = 16_000
    chunk_s: float | None = None
    chunk_tail_min_ratio: float = 0.5
    chunk_batch_size: int = 16
    pooling: str = "mean"
    hidden_dim: int = 256
    dropout: float = 0.2
    heads: list[dict[str, Any]] = field(default_factory=list)
    thresholds: dict[str, list[float]] = field(default_factory=dict)
    target_lufs: float | None = -18.0

    def __post_init__(self, **kwargs: Any) -> None:
        if self.encoder_type not in ENCODER_TYPES:
            raise ValueError(f"encoder_type must be one of {ENCODER_TYPES}, got {self.encoder_type!r}")
        self.heads = [normalize_head(h) for h in self.heads or []]
        names = [h.name for h in self.head_specs]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate head names: {names}")
        labels = [f"{h.name}/{lab}" for h in self.classification_heads for lab in h.labels]
        if labels:
            self.id2label = dict(enumerate(labels))
            self.label2id = {lab: i for i, lab in enumerate(labels)}
            kwargs.pop("id2label", None)
            kwargs.pop("label2id", None)
            kwargs.pop("num_labels", None)
        self.problem_type = "multi_label_classification"
        kwargs.pop("problem_type", None)
        super().__post_init__(**kwargs)

    @property
    def head_specs(self) -> list[HeadSpec]:
        """``heads`` as typed ``HeadSpec`` s, in order: the one way code reads a model's heads (the
        same type as ``EnoPerformanceConfig.head_specs``)."""
        return [HeadSpec.from_dict(h) for h in self.heads]

    @property
    def classification_heads(self) -> list[HeadSpec]:
        """Multilabel and singlelabel heads, in ``heads`` order (the order of ``logits``)."""
        return [h for h in self.head_specs if h.kind in CLASSIFICATION_KINDS]

    def head(self, name: str) -> HeadSpec:
        """The head called ``name``. Raises ``KeyError`` if absent."""
        specs = self.head_specs
        for h in specs:
            if h.name == name:
                return h
        raise KeyError(f"no head named {name!r}; heads: {[h.name for h in specs]}")

    def label_slices(self) -> dict[str, slice]:
        """Per classification head, its columns in ``logits`` / ``id2label``."""
        out, start = {}, 0
        for h in self.classification_heads:
            out[h.name] = slice(start, start + len(h.labels))
            start += len(h.labels)
        return out
