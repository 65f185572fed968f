"""``PerformanceConfig``: the ``performance`` section of ``Settings`` (``configs/percepiano.yaml``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from eno_hf.locations import shared_path

from eno_hf.performance.augment import AugmentConfig

__all__ = ["PerformanceConfig"]


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # finite floats only


class EmbedderConfig(_M):
    """A frame embedder candidate (``eno_hf.embeddings.frames.EmbedderSpec``)."""

    kind: str = "sota_tagger"
    name: str = "mtat-musicnn"
    features: str = "prefix+embedding"
    path: str | None = None
    hop_s: float | None = None


class TiersConfig(_M):
    """Which tiers train, and their confidence weights in the loss."""

    t2: bool = True
    t3: bool = True
    t4: bool = True
    weights: dict[str, float] = Field(default_factory=lambda: {"t1": 1.0, "t2": 0.6, "t3": 0.4, "t4": 0.3})
    rank_weight: float = 0.2
    """Weight of T1's within-group ranking term relative to its MSE."""


class PerformanceConfig(_M):
    """PercePiano-style performance evaluation from frame embeddings (``eno_hf.performance``).

    Paths (``source``) are resolved against the config file. ``limit``/``subset`` bound the number
    of performances (quick runs, tests).
    """

    source: Path = Field(default_factory=lambda: shared_path("data/percepiano"))
    name: str = "percepiano"
    embedder: EmbedderConfig = Field(default_factory=EmbedderConfig)
    candidates: list[EmbedderConfig] = Field(default_factory=list)
    """Other embedders: every performance is embedded with each, and the one whose ridge ratings
    map scores best in performer-grouped inner CV is used (``selection.select_embedder``; per
    outer fold on its training side with ``nested_selection``); empty = use ``embedder``."""
    selection_limit: int = 240
    """Tier selection (``selection.select_tiers``) trains on at most this many performances,
    spread over the pieces (``selection.selection_rows``), plus the T2/T4 sources."""
    selection_folds: int = Field(3, ge=2)
    """Grouped folds of the tier selection's CV (``selection.select_tiers``)."""
    selection_epochs: int | None = Field(None, ge=1)
    """Epochs of each tier-selection fit (None = ``epochs``): the selection runs inside every outer
    fold, so its fits are most of the job's CV time."""
    nested_selection: bool = True
    """Choose the embedder and the tiers again inside every outer CV fold, from its training side
    only, so the reported figures include the choice (``selection.select_procedure``). False =
    choose once on all performances before the CV (faster; the figures are then optimistic)."""
    limit: int | None = None
    """Use at most this many performances (the shortest first: cheapest to render and embed)."""
    ratings_fit: Literal["gradient", "ridge"] = "ridge"
    """How the ratings head is fit: ``ridge`` (closed form on the pooled frames, its layers, pooling,
    MIDI weight and alpha chosen by inner grouped CV: ``trainer.fit_ridge_heads``) or
    ``gradient`` (the MLP head on the trunk, trained with the T1 loss)."""
    quality_fit: Literal["gradient", "ridge"] = "ridge"
    """How the T2 quality (ranking) head is fit: ``ridge`` (a closed-form pairwise ranking ridge
    on the pooled frames, alpha by inner folds grouped by source performance:
    ``trainer.fit_quality_ridge``) or ``gradient`` (the ranking head on the trunk, T2 loss)."""
    use_midi_statistics: bool = True
    """With ``ridge``: also fit ``ridge_midi``, which adds the MIDI statistics when the input is MIDI
    (``eno tag`` on a .mid file); audio inputs use the embeddings-only map."""
    ridge_groups: Literal["performer", "piece"] = "piece"
    """Grouping of the inner folds that choose the *registered* model's ridge (in CV, each
    protocol's own grouping is used)."""
    transcribe_audio: Literal["auto", "always", "never"] = "auto"
    """With ``ridge`` and MIDI statistics: also render every performance at 22,050 Hz, transcribe it
    (``eno_hf.audio.transcribe``, Basic Pitch) and fit ``ridge_transcription`` on the
    transcriptions' statistics, the map ``eno tag`` uses for a recording; each CV protocol then
    also scores the model from audio + transcription. ``auto``: when basic-pitch is installed
    (extra ``transcription``); ``always``: a missing install is an error; ``never``: off."""
    only_cached: bool = False
    """Use only the performances whose embeddings are already cached (no new rendering/embedding
    of the main set): for quick re-runs on a partly embedded data root. Biased subset; the report
    says how many and which pieces/performers."""
    soundfont: str = "fluidr3"
    pooling: str = "meanstd"
    hidden_dim: int = 256
    dropout: float = 0.3
    input_dropout: float = 0.2
    projection_dim: int = 64
    epochs: int = 40
    learning_rate: float = 1e-3
    weight_decay: float = 0.05
    groups_per_batch: int = 8
    per_group: int = 4
    seed: int = 0
    n_folds: int = 5
    protocols: list[Literal["piece", "performer", "composition4fold", "performer4fold"]] = Field(
        default_factory=lambda: ["performer", "piece"])
    """Outer-fold protocols the ``cross_validate`` stage reports (``eno_hf.performance.protocols``):
    ``piece`` (whole pieces held out: unseen music, the hardest), ``performer`` (unseen players),
    and the dataset's own ``composition4fold`` (passages held out; 15 % of the performances set
    aside as a test set) and ``performer4fold`` (performers 3-10 held out two per fold, 1-2 set
    aside). ``n_folds``/``seed`` apply to ``piece``/``performer``; the dataset's are fixed at 4."""
    n_boot: int = 300
    tiers: TiersConfig = Field(default_factory=TiersConfig)
    tier_selection: bool = True
    """Keep each enabled optional tier (T2/T3/T4) only where it helps, by performer-grouped CV on
    the ``selection_limit`` rows (``selection.select_tiers``); False = train every enabled tier."""
    degrade_segments: int = 16
    """T2: performances degraded (3 kinds x ``degrade_severities``) before rendering, spread over the
    performers and the pieces (``pipeline.balanced_rows``)."""
    degrade_severities: int = 3
    augment_segments: int = 48
    """T4: performances rendered clean + augmented (spread over the performers like T2's)."""
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    model_name: str = "eno-piano"
    tag_files: list[Path] = Field(default_factory=list)
    workers: int = Field(1, ge=1, le=2)
    """Render + embed processes, 1 or 2 (``embeddings.embed.embed_items_2way``: the second works
    through the shards from the other end; each one torch thread)."""
