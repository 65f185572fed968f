"""``embed:`` settings: the companion embedding dataset of a dataset version (``eno_hf.embeddings.companion``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["EmbedConfig"]


class EmbedConfig(BaseModel):
    """Which encoder embeds every segment, how it is pooled, and whether training reads it.

    ``kind``/``encoder`` ``None`` take the model's encoder (``model.encoder`` ``tagger_ensemble`` →
    ``model.taggers``, ``sota_tagger`` → ``model.tagger``, ``hf_audio`` → ``model.encoder_path``).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # finite floats only

    kind: Literal["sota_tagger", "hf_audio", "tagger_ensemble"] | None = None
    encoder: str | None = None
    """Tagger name, ``+``-joined tagger names (tagger_ensemble) or a label (hf_audio)."""
    encoder_path: Path | None = None
    """hf_audio: local checkpoint directory; taggers: models directory (default: shared/models)."""
    features: Literal["embedding", "prefix+embedding"] = "embedding"
    """Layer selection (sota_tagger): the penultimate layer, or front/mid-end features + it."""
    hop_s: float | None = Field(None, gt=0.0)
    """Window hop in seconds (default: the encoder's window, no overlap)."""
    pooling: Literal["mean", "max", "mean+max"] = "mean"
    """How the ``(frames, dim)`` window rows become the pooled ``embedding`` column."""
    frames: bool = False
    """Also store the frame-level ``(frames, dim)`` rows (float16) in column ``frames``."""
    batch_size: int = Field(8, ge=1)
    shard_size: int = Field(64, ge=1)
    device: str = "cpu"
    autocast: Literal["none", "bf16", "fp16"] = "bf16"
    """Mixed precision of the forward passes; applied on CUDA only (CPU runs in float32)."""
    use_for_training: bool = False
    """The dataset stage joins the companion's ``embedding`` column to every split by ``segment_id``
    (built first if missing); train on it with ``model.encoder=embeddings``,
    ``model.embedding_columns=[embedding]``, ``model.embedding_dim=<dim>``."""
