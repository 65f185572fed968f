"""``EnoForPerformanceEvaluation``: frame embeddings -> pooled -> trunk -> typed heads, loss in ``forward``.

Input: ``embeddings`` ``(batch, frames, dim)`` float32 with ``frame_mask`` ``(batch, frames)`` bool
(padding False), e.g. the ``(frames, dim)`` tensors of the embeddings-only layout. The model
standardises each feature with training-set statistics (buffers), pools over frames (``mean``,
``meanstd`` = mean ++ std, or ``attention`` = learned softmax attention, Ilse et al. 2018), and a
shared trunk ``Linear -> GELU -> Dropout -> Linear -> GELU`` feeds the heads (``HeadSpec``):

* ``regression``: ``Linear(hidden, dim)`` + a bias initialised at the training means; or, with
  ``ratings_fit="ridge"``, a linear map of the mean ++ std of the standardised frames, fitted in
  closed form (``eno_hf.performance.trainer.fit_ridge_heads``; ridge regression, Hoerl & Kennard 1970), not by
  gradient: ``ridge`` from the embeddings alone and, when ``midi_statistics`` names the MIDI
  statistics it takes, ``ridge_midi`` from the embeddings plus those statistics (used when the
  caller passes them, e.g. for a MIDI file) and, with ``transcription_map``,
  ``ridge_transcription`` from the embeddings plus the statistics of an automatic transcription
  (fitted on transcriptions of the training renders: what a recording gets, since a
  transcription's velocity, pedal and articulation statistics do not match real MIDI's);
* ``ranking``: one scalar score (T2 ordinal placements / severities): ``Linear(hidden, 1)``; or,
  with ``quality_fit="ridge"``, a linear map of the same mean ++ std features fitted in closed
  form as a pairwise ranking ridge (``trainer.fit_quality_ridge``): ``quality_ridge`` from the
  embeddings and, with ``midi_statistics``, ``quality_ridge_midi`` from the embeddings plus the
  statistics (used when the caller passes them);
* ``projection``: ``Linear(hidden, dim)``, L2-normalised (T3 contrastive).

``forward(..., labels=..., tier=...)`` returns ``PerformanceOutput`` with ``loss`` when labels are
given, as transformers models do; the losses per tier are in ``eno_hf.performance.losses``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.utils import ModelOutput

from eno_hf.models.heads import PROJECTION, RANKING, REGRESSION, HeadSpec
from eno_hf.performance import losses as L

__all__ = ["EnoPerformanceConfig", "EnoForPerformanceEvaluation", "PerformanceOutput"]

POOLINGS = ("mean", "meanstd", "attention")
RATINGS_FITS = ("gradient", "ridge")
QUALITY_FITS = ("gradient", "ridge")


class EnoPerformanceConfig(PretrainedConfig):
    """Config of ``EnoForPerformanceEvaluation``.

    Attributes:
        input_dim: frame embedding size. pooling: one of ``POOLINGS``. hidden_dim, dropout: trunk.
        heads: ``HeadSpec.to_dict()`` list. embedder: the spec of the frame embedder that made the
            inputs (so ``eno tag`` can embed raw audio/MIDI the same way). tier_weights: confidence
            weight per tier (``t1``..``t4``). ranking_margin: minimum rating difference for a
            within-group ranking pair (T1). nce_temperature: InfoNCE temperature (T3).
        ratings_fit: ``"gradient"`` (the regression head on the trunk, trained with the T1 loss)
            or ``"ridge"`` (closed-form linear maps of the pooled frames; T1 then trains only its
            InfoNCE term). prefix_dim: frame columns before the embedder's own embedding layer
            (``features="prefix+embedding"``; 0 = none): the ridge selection may use either part.
        midi_statistics: names (``eno_hf.features.midi.MIDI_STATISTICS`` order) of the MIDI
            statistics ``ridge_midi`` takes; empty = no MIDI input.
        transcription_map: with ``midi_statistics`` and ``ratings_fit="ridge"``, also hold
            ``ridge_transcription``: the ratings map for the statistics of an automatic
            transcription of a recording (``statistics_source="transcription"`` in ``forward``).
        quality_fit: ``"gradient"`` (the ranking head on the trunk, trained with the T2 loss) or
            ``"ridge"`` (a closed-form pairwise ranking map of the pooled frames, ``quality_ridge``).
        ridge_selection: what the inner grouped CV chose for each ridge map (report only).
    """

    model_type = "eno-performance"

    def __init__(self, input_dim: int = 1, pooling: str = "meanstd", hidden_dim: int = 256, dropout: float = 0.2,
                 heads: list[dict[str, Any]] | None = None, embedder: dict[str, Any] | None = None,
                 tier_weights: dict[str, float] | None = None, ranking_margin: float = 0.05,
                 nce_temperature: float = 0.1, input_dropout: float = 0.1, ratings_fit: str = "gradient",
                 prefix_dim: int = 0, midi_statistics: list[str] | None = None,
                 ridge_selection: dict[str, Any] | None = None, quality_fit: str = "gradient",
                 transcription_map: bool = False, **kwargs: Any) -> None:
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if ratings_fit not in RATINGS_FITS:
            raise ValueError(f"ratings_fit must be one of {RATINGS_FITS}, got {ratings_fit!r}")
        if quality_fit not in QUALITY_FITS:
            raise ValueError(f"quality_fit must be one of {QUALITY_FITS}, got {quality_fit!r}")
        self.ratings_fit, self.quality_fit, self.prefix_dim = ratings_fit, quality_fit, int(prefix_dim)
        self.midi_statistics = list(midi_statistics or [])
        self.transcription_map = bool(transcription_map)
        self.ridge_selection = dict(ridge_selection or {})
        self.input_dim, self.pooling, self.hidden_dim, self.dropout = int(input_dim), pooling, int(hidden_dim), float(dropout)
        self.heads = [HeadSpec.from_dict(h).to_dict() if isinstance(h, dict) else h.to_dict() for h in (heads or [])]
        self.embedder = dict(embedder or {})
        self.tier_weights = dict(tier_weights or {"t1": 1.0, "t2": 0.6, "t3": 0.4, "t4": 0.3})
        self.ranking_margin, self.nce_temperature, self.input_dropout = float(ranking_margin), float(nce_temperature), float(input_dropout)
        super().__init__(**kwargs)

    @property
    def head_specs(self) -> list[HeadSpec]:
        return [HeadSpec.from_dict(h) for h in self.heads]

    @property
    def ridge_head(self) -> HeadSpec | None:
        """The regression head fitted in closed form (the first one), or None (``gradient``)."""
        if self.ratings_fit != "ridge":
            return None
        return next((s for s in self.head_specs if s.kind == REGRESSION), None)

    @property
    def quality_ridge_head(self) -> HeadSpec | None:
        """The ranking head fitted in closed form (the first one), or None (``gradient``)."""
        if self.quality_fit != "ridge":
            return None
        return next((s for s in self.head_specs if s.kind == RANKING), None)


@dataclass
class PerformanceOutput(ModelOutput):
    """``loss`` (scalar, when labels given), ``losses`` (per term), ``heads`` (head name -> output:
    regression ``(B, dim)``, ranking ``(B,)``, projection ``(B, dim)`` unit-norm), ``embedding``
    (trunk output ``(B, hidden)``)."""

    loss: Tensor | None = None
    losses: dict[str, Tensor] | None = None
    heads: dict[str, Tensor] | None = None
    embedding: Tensor | None = None


class EnoForPerformanceEvaluation(PreTrainedModel):
    """See the module docstring. ``config_class = EnoPerformanceConfig``."""

    config_class = EnoPerformanceConfig
    base_model_prefix = "eno_performance"
    main_input_name = "embeddings"

    def __init__(self, config: EnoPerformanceConfig) -> None:
        super().__init__(config)
        d, h = config.input_dim, config.hidden_dim
        self.register_buffer("feature_mean", torch.zeros(d))
        self.register_buffer("feature_std", torch.ones(d))
        pooled = 2 * d if config.pooling == "meanstd" else d
        self.attention = nn.Linear(d, 1) if config.pooling == "attention" else None
        self.in_drop = nn.Dropout(config.input_dropout)
        self.trunk = nn.Sequential(nn.Linear(pooled, h), nn.GELU(), nn.Dropout(config.dropout), nn.Linear(h, h), nn.GELU())
        ridge, qridge = config.ridge_head, config.quality_ridge_head
        closed = {x.name for x in (ridge, qridge) if x is not None}
        self.heads = nn.ModuleDict({s.name: nn.Linear(h, s.dim) for s in config.head_specs if s.name not in closed})
        self.ridge = self.ridge_midi = self.ridge_transcription = self.quality_ridge = self.quality_ridge_midi = None
        n_midi = len(config.midi_statistics)
        if ridge is not None:  # closed-form maps of the pooled frames: never trained by gradient
            self.ridge = nn.Linear(2 * d, ridge.dim)
            if n_midi:
                self.ridge_midi = nn.Linear(2 * d + n_midi, ridge.dim)
                if config.transcription_map:
                    self.ridge_transcription = nn.Linear(2 * d + n_midi, ridge.dim)
        if qridge is not None:
            self.quality_ridge = nn.Linear(2 * d, 1)
            if n_midi:
                self.quality_ridge_midi = nn.Linear(2 * d + n_midi, 1)
        self.post_init()
        for m in (self.ridge, self.ridge_midi, self.ridge_transcription, self.quality_ridge, self.quality_ridge_midi):
            if m is not None:
                m.requires_grad_(False)

    def _init_weights(self, module: nn.Module) -> None:  # transformers hook
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)

    @torch.no_grad()
    def set_standardization(self, mean: Tensor, std: Tensor) -> None:
        """Per-feature ``(input_dim,)`` mean/std (training frames); std <= 1e-6 -> 1."""
        self.feature_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        std = torch.as_tensor(std, dtype=torch.float32)
        self.feature_std.copy_(torch.where(std > 1e-6, std, torch.ones_like(std)))

    @torch.no_grad()
    def set_head_bias(self, name: str, bias: Tensor) -> None:
        """Initialise a regression head's bias (e.g. the training means)."""
        self.heads[name].bias.copy_(torch.as_tensor(bias, dtype=torch.float32))

    @torch.no_grad()
    def set_ridge(self, weight_mean: Tensor, weight_std: Tensor, bias: Tensor, weight_midi: Tensor | None = None,
                  selection: dict[str, Any] | None = None, transcription: bool = False) -> None:
        """Set a closed-form map from the mean and std over frames of the *raw* embeddings.

        Args:
            weight_mean, weight_std: ``(K, input_dim)`` weights of the raw frame mean and std
                (population std); bias: ``(K,)``; weight_midi: ``(K, len(midi_statistics))`` sets
                ``ridge_midi`` (``ridge_transcription`` with ``transcription``), None sets
                ``ridge``. The frame standardisation of the model (set first) is folded in, so
                ``forward`` reproduces ``raw_mean @ W_m.T + raw_std @ W_s.T + midi @ W_midi.T + bias``.
            selection: stored in ``config.ridge_selection`` (under the map's name).

        Raises:
            ValueError: the model has no such map (``ratings_fit`` not ``"ridge"``, no
                ``midi_statistics`` for ``weight_midi``, no ``transcription_map``), or
                ``transcription`` without ``weight_midi``.
        """
        if transcription and weight_midi is None:
            raise ValueError("set_ridge: the transcription map needs weight_midi")
        name = "ridge" if weight_midi is None else "ridge_transcription" if transcription else "ridge_midi"
        layer = getattr(self, name)
        if layer is None:
            raise ValueError(f"this model has no {name} map")
        self._set_linear(layer, weight_mean, weight_std, bias, weight_midi)
        if selection is not None:
            self.config.ridge_selection = {**self.config.ridge_selection, name: selection}

    @torch.no_grad()
    def set_quality_ridge(self, weight_mean: Tensor, weight_std: Tensor, bias: float = 0.0,
                          selection: dict[str, Any] | None = None, weight_midi: Tensor | None = None) -> None:
        """Set a closed-form ranking score from ``(input_dim,)`` weights of the raw frame mean and
        std, folding in the frame standardisation as ``set_ridge`` does: ``quality_ridge``, or with
        ``weight_midi`` (``(len(midi_statistics),)``) ``quality_ridge_midi``.

        Raises:
            ValueError: ``quality_fit`` is not ``"ridge"``, there is no ranking head, or (with
                ``weight_midi``) the model takes no MIDI statistics.
        """
        layer = self.quality_ridge if weight_midi is None else self.quality_ridge_midi
        if layer is None:
            raise ValueError("this model has no " + ("quality_ridge" if weight_midi is None else "quality_ridge_midi")
                             + " map (quality_fit != 'ridge', no ranking head or no MIDI statistics)")
        f = lambda t: torch.as_tensor(t, dtype=torch.float32).reshape(1, -1)  # noqa: E731
        self._set_linear(layer, f(weight_mean), f(weight_std), torch.tensor([float(bias)]),
                         None if weight_midi is None else f(weight_midi))
        if selection is not None:
            self.config.ridge_selection = {**self.config.ridge_selection, "quality": selection}

    def _set_linear(self, layer: nn.Linear, weight_mean: Tensor, weight_std: Tensor, bias: Tensor,
                    weight_midi: Tensor | None = None) -> None:
        """``layer`` <- the raw-units map with the frame standardisation folded in."""
        f = lambda t: torch.as_tensor(t, dtype=torch.float32)  # noqa: E731
        wm, ws, b = f(weight_mean), f(weight_std), f(bias)
        parts = [wm * self.feature_std, ws * self.feature_std]
        if weight_midi is not None:
            parts.append(f(weight_midi))
        layer.weight.copy_(torch.cat(parts, dim=1))
        layer.bias.copy_(b + wm @ self.feature_mean)

    @staticmethod
    def _mean_std(x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Masked mean and population std over frames: ``(B, T, D)`` -> 2 x ``(B, D)``."""
        w = mask.to(x.dtype)[..., None]
        n = w.sum(dim=1).clamp_min(1.0)
        mean = (x * w).sum(dim=1) / n
        var = (((x - mean[:, None]) ** 2) * w).sum(dim=1) / n
        return mean, var.clamp_min(0).sqrt()

    def _standardized(self, embeddings: Tensor, frame_mask: Tensor | None) -> tuple[Tensor, Tensor]:
        if embeddings.ndim == 2:
            embeddings = embeddings[:, None, :]
        x = (embeddings - self.feature_mean) / self.feature_std
        mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device) if frame_mask is None else frame_mask.bool()
        return x, mask

    def pool(self, embeddings: Tensor, frame_mask: Tensor | None = None) -> Tensor:
        """``(B, T, D)`` + ``(B, T)`` mask -> ``(B, D)`` or ``(B, 2D)`` (``meanstd``)."""
        x, mask = self._standardized(embeddings, frame_mask)
        if self.attention is not None:
            score = self.attention(x).masked_fill(~mask[..., None], float("-inf"))
            return (torch.softmax(score, dim=1) * x).sum(dim=1)
        mean, std = self._mean_std(x, mask)
        return mean if self.config.pooling == "mean" else torch.cat([mean, std], dim=1)

    def forward(self, embeddings: Tensor, frame_mask: Tensor | None = None, labels: dict[str, Tensor] | None = None,
                tier: str = "t1", midi_statistics: Tensor | None = None, statistics_source: str = "midi",
                **batch: Tensor) -> PerformanceOutput:
        """Predict every head; with ``labels``, compute the loss of ``tier``.

        Args:
            embeddings: ``(B, T, D)`` (or ``(B, D)``) float32. frame_mask: ``(B, T)`` bool.
            midi_statistics: ``(B, len(config.midi_statistics))`` float32, optional: with
                ``ridge_midi`` / ``quality_ridge_midi`` maps, the ratings / quality heads use them
                (else the embeddings alone).
            statistics_source: ``"midi"`` (the statistics of a MIDI file: ``ridge_midi`` /
                ``quality_ridge_midi``) or ``"transcription"`` (of an automatic transcription of a
                recording: the ratings head uses ``ridge_transcription``, the quality head its
                embeddings-only map, since ``quality_ridge_midi`` was fitted on real MIDI).
            labels: tier targets, see ``eno_hf.performance.losses.tier_loss`` (e.g. ``t1``:
                ``{"ratings": (B, 19), "group": (B,) long}``).
            tier: ``t1`` regression + within-group ranking + InfoNCE on the passage groups
                (``t3`` terms are added when the batch holds ``group`` and a projection head
                exists), ``t2`` ordinal pairs, ``t4`` invariance (``embeddings`` = clean and
                augmented halves).

        Returns:
            ``PerformanceOutput``.

        Raises:
            ValueError: an unknown ``statistics_source``, or ``"transcription"`` statistics for a
                model without ``ridge_transcription``.
        """
        if statistics_source not in ("midi", "transcription"):
            raise ValueError(f"statistics_source must be 'midi' or 'transcription', got {statistics_source!r}")
        transcribed = statistics_source == "transcription" and midi_statistics is not None
        if transcribed and self.config.ridge_head is not None and self.ridge_transcription is None:
            raise ValueError("this model has no ridge_transcription map (config.transcription_map is off): "
                             "read the recording without its transcription's statistics")
        pooled = self.in_drop(self.pool(embeddings, frame_mask))
        z = self.trunk(pooled)
        outs: dict[str, Tensor] = {}
        # closed-form maps: (embeddings-only layer, with-MIDI layer) per head, on the mean ++ std of
        # the standardised frames (computed once), the MIDI statistics appended when given
        closed = {h.name: pair for h, pair in (
            (self.config.ridge_head, (self.ridge, self.ridge_transcription if transcribed else self.ridge_midi)),
            (self.config.quality_ridge_head, (self.quality_ridge, None if transcribed else self.quality_ridge_midi)))
                  if h is not None}
        feats = None
        for spec in self.config.head_specs:
            if spec.name in closed:
                if feats is None:
                    feats = torch.cat(self._mean_std(*self._standardized(embeddings, frame_mask)), dim=1)
                audio, with_midi = closed[spec.name]
                y = (with_midi(torch.cat([feats, midi_statistics.to(feats.dtype)], dim=1))
                     if midi_statistics is not None and with_midi is not None else audio(feats))
                outs[spec.name] = y[:, 0] if spec.kind == RANKING else y
                continue
            y = self.heads[spec.name](z)
            if spec.kind == PROJECTION:
                y = F.normalize(y, dim=-1)
            elif spec.kind == RANKING:
                y = y[:, 0]
            outs[spec.name] = y
        loss, terms = None, None
        if labels is not None:
            loss, terms = L.tier_loss(tier, outs, z, labels, self.config)
        return PerformanceOutput(loss=loss, losses=terms, heads=outs, embedding=z)
