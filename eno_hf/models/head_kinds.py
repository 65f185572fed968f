"""The head-kind registry: per kind (``eno_hf.models.heads.HEAD_KINDS``), its loss, probabilities,
window pooling, decisions and metrics, so code that treats heads by kind asks here instead of
comparing kind strings.

=============  ===================  ===========================  ===================================
kind           loss                 probabilities                metrics (``eno_hf.metrics``)
=============  ===================  ===========================  ===================================
multilabel     BCE with logits      sigmoid per label            ROC-AUC / PR-AUC / F1 (thresholds)
singlelabel    cross-entropy        softmax over the classes     accuracy / macro-F1 / ...
regression     MSE (NaN = missing)  the value itself             Pearson / Spearman / MAE / RMSE
ranking        (performance tiers)  the score itself             none
projection     (performance tiers)  none (an embedding)          none
=============  ===================  ===========================  ===================================

Window pooling (a long input is cut into ``K`` windows whose outputs are averaged with weights):
multi-label heads average probabilities and return their logit, single-label heads average the
softmax and return its log (so ``softmax`` of the pooled logits is the averaged distribution),
regression / ranking / projection heads average their outputs. The loss and metrics columns are
``eno_hf.models.losses.HEAD_LOSSES`` and ``eno_hf.metrics.HEAD_METRICS``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor

from eno_hf.metrics import HEAD_METRICS, HeadMetrics
from eno_hf.models.heads import (
    MULTILABEL, PROJECTION, RANKING, REGRESSION, SINGLELABEL, HeadSpec, unknown_kind,
)
from eno_hf.models.losses import HEAD_LOSSES

__all__ = ["HEAD_KIND_REGISTRY", "LOGIT_EPS", "HeadKind", "PooledHead", "head_kind", "head_probabilities",
           "pool_head"]

LOGIT_EPS = 1e-6
"""Probability clamp when pooled probabilities are turned back into logits (``torch.logit(eps=)``)."""

WindowMean = Callable[[Tensor], Tensor]
"""``(B * K, n) -> (B, n)``: the weighted mean over each input's ``K`` windows."""


class PooledHead(NamedTuple):
    """One head's output for whole inputs.

    Attributes:
        logits: ``EnoOutput.head_logits`` entry: ``(B, n)`` logits (classification), ``(B,)``
            values (regression, ranking) or ``(B, dim)`` embeddings (projection).
        column: ``(B, n)`` columns of ``EnoOutput.logits`` (the ``id2label`` space, whose sigmoid
            is the head's probabilities), or None for a head outside that space.
    """

    logits: Tensor
    column: Tensor | None


def _pool_multilabel(out: Tensor, mean: WindowMean | None) -> PooledHead:
    logit = out if mean is None else torch.logit(mean(torch.sigmoid(out)), eps=LOGIT_EPS)
    return PooledHead(logit, logit)


def _pool_singlelabel(out: Tensor, mean: WindowMean | None) -> PooledHead:
    if mean is None:
        return PooledHead(out, torch.logit(torch.softmax(out, dim=-1), eps=LOGIT_EPS))
    prob = mean(torch.softmax(out, dim=-1))
    return PooledHead(torch.log(prob.clamp_min(LOGIT_EPS)), torch.logit(prob, eps=LOGIT_EPS))


def _pool_value(out: Tensor, mean: WindowMean | None) -> PooledHead:
    return PooledHead((out if mean is None else mean(out)).squeeze(-1), None)


def _pool_embedding(out: Tensor, mean: WindowMean | None) -> PooledHead:
    return PooledHead(out if mean is None else mean(out), None)


def _first_column(logits: Tensor) -> Tensor:
    return logits.reshape(logits.shape[0], -1)[:, 0]


def _decide_multilabel(scores: Mapping[str, float], labels: Sequence[str], thresholds: Sequence[float] | None
                       ) -> list[str]:
    thresholds = thresholds or [0.5] * len(labels)
    kept = [lab for lab, t in zip(labels, thresholds) if scores[lab] >= t]
    return sorted(kept, key=lambda lab: -scores[lab])


def _decide_singlelabel(scores: Mapping[str, float], labels: Sequence[str], thresholds: Sequence[float] | None
                        ) -> list[str]:
    return [max(scores, key=scores.get)]


@dataclass(frozen=True)
class HeadKind:
    """What one head kind means wherever heads are treated by kind.

    Attributes:
        name: the kind (one of ``HEAD_KINDS``).
        loss: ``(logits, labels, weight) -> scalar`` supervised loss (``losses.HEAD_LOSSES``), or
            None for kinds trained otherwise (ranking, projection: the performance tiers).
        probabilities: ``(B, n)`` float logits -> the head's scores: ``(B, n)`` probabilities
            (classification) or ``(B,)`` values (regression, ranking); None for projection.
        pool: ``(raw (B * K, n) outputs, window mean or None for one window) -> PooledHead``.
        metrics: ``eno_hf.metrics.HeadMetrics`` (function, summary keys, score metric), or None
            for kinds that are not evaluated on labels.
        decide: ``(label -> score, labels, thresholds or None) -> chosen labels`` for
            classification heads (multi-label: scores at or above each label's threshold, default
            0.5, by score; single-label: the arg-max), None otherwise.
        uses_thresholds: decisions read per-label thresholds (``EnoModelConfig.thresholds``).
        scalar: one value per input (``EnoOutput.regression``).
        embedding: the output is an embedding (the first one is ``EnoOutput.embedding``).
        tagging_output: how ``scores`` (the per-file output of ``eno tag`` and the service) shows
            the head: ``"labels"`` (label -> probability), ``"value"`` (``{"value": x}``) or None
            (left out).
    """

    name: str
    loss: Callable[[Tensor, Tensor, Tensor | None], Tensor] | None
    probabilities: Callable[[Tensor], Tensor] | None
    pool: Callable[[Tensor, WindowMean | None], PooledHead]
    metrics: HeadMetrics | None
    decide: Callable[[Mapping[str, float], Sequence[str], Sequence[float] | None], list[str]] | None = None
    uses_thresholds: bool = False
    scalar: bool = False
    embedding: bool = False
    tagging_output: Literal["labels", "value"] | None = None

    @property
    def supervised(self) -> bool:
        """Whether ``multitask_loss`` trains it from a label column."""
        return self.loss is not None

    def scores(self, value: Tensor, labels: Sequence[str]) -> dict[str, float] | None:
        """One example's pooled output (``(n,)`` logits or a scalar value) as ``{label: probability}``
        (classification), ``{"value": float}`` (regression) or None (ranking, projection: not part
        of tagging outputs)."""
        if self.tagging_output == "labels":
            probs = self.probabilities(value[None])[0]
            return {label: float(p) for label, p in zip(labels, probs.tolist())}
        if self.tagging_output == "value":
            return {"value": float(value)}
        return None


HEAD_KIND_REGISTRY: dict[str, HeadKind] = {
    MULTILABEL: HeadKind(MULTILABEL, HEAD_LOSSES[MULTILABEL], torch.sigmoid, _pool_multilabel,
                         HEAD_METRICS[MULTILABEL], _decide_multilabel, uses_thresholds=True, tagging_output="labels"),
    SINGLELABEL: HeadKind(SINGLELABEL, HEAD_LOSSES[SINGLELABEL], lambda z: torch.softmax(z, dim=-1),
                          _pool_singlelabel, HEAD_METRICS[SINGLELABEL], _decide_singlelabel, tagging_output="labels"),
    REGRESSION: HeadKind(REGRESSION, HEAD_LOSSES[REGRESSION], _first_column, _pool_value, HEAD_METRICS[REGRESSION],
                         scalar=True, tagging_output="value"),
    RANKING: HeadKind(RANKING, None, _first_column, _pool_value, None, scalar=True),
    PROJECTION: HeadKind(PROJECTION, None, None, _pool_embedding, None, embedding=True),
}
"""Kind -> ``HeadKind``, for every kind of ``HEAD_KINDS`` (in that order)."""



def head_kind(kind: str | HeadSpec) -> HeadKind:
    """The registry entry of ``kind`` (a kind name or a ``HeadSpec``).

    Raises:
        ValueError: an unknown kind (named in the message, with the known ones).
    """
    name = kind.kind if isinstance(kind, HeadSpec) else kind
    try:
        return HEAD_KIND_REGISTRY[name]
    except (KeyError, TypeError):
        raise unknown_kind(name, "head_kind") from None


def pool_head(kind: str, out: Tensor, mean: WindowMean | None) -> PooledHead:
    """``head_kind(kind).pool``: one head's raw window outputs ``(B * K, n)`` pooled per input."""
    return head_kind(kind).pool(out, mean)


def head_probabilities(head_logits: Mapping[str, Tensor], heads: Sequence[HeadSpec | Mapping[str, Any]]
                       ) -> tuple[Tensor, ...]:
    """Per-head scores from ``EnoOutput.head_logits``, in ``heads`` order (the registry's
    ``probabilities``).

    Args:
        head_logits: head name -> logits ``(B, n)`` (regression ``(B,)`` or ``(B, 1)``).
        heads: ``HeadSpec`` s (other forms go through ``HeadSpec.coerce``) of kinds with
            probabilities (not projection).

    Returns:
        Tuple of float32 tensors: multi-label ``sigmoid`` ``(B, n)``, single-label ``softmax``
        ``(B, n)``, regression / ranking ``(B,)``.

    Raises:
        ValueError: a projection head (it has no probabilities).
    """
    out = []
    for head in map(HeadSpec.coerce, heads):
        probabilities = head_kind(head.kind).probabilities
        if probabilities is None:
            raise ValueError(f"head_probabilities: head {head.name!r} ({head.kind}) has no probabilities")
        out.append(probabilities(head_logits[head.name].float()))
    return tuple(out)
