"""Multi-task losses with missing labels, plus contrastive (InfoNCE) and ranking losses.

Batch label conventions (``docs/architecture.md``):

- multi-label ``(B, n)`` float32 multi-hot; a row of ``-1`` means "labels missing for this sample";
- single-label ``(B,)`` long; ``-100`` means missing (``CrossEntropyLoss(ignore_index=-100)``);
- regression ``(B,)`` float32; ``NaN`` means missing.

Missing samples never contribute (``labelled_mask`` is the one definition of "missing"). A head with no labelled sample in the batch contributes an exact
zero that still carries a gradient graph (so ``backward()`` works and nothing becomes NaN).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from eno_hf.models.heads import head_attr

IGNORE_INDEX = -100
"""Single-label "missing" value (PyTorch's ``CrossEntropyLoss`` default ``ignore_index``)."""

LOSS_KINDS = ("multilabel", "singlelabel", "regression")
"""Head kinds ``multitask_loss`` computes a supervised loss for (projection heads are skipped)."""


def _zero(like: Tensor) -> Tensor:
    # Zero that depends on the logits so autograd sees the head (no NaN, backward() works).
    return like.sum() * 0.0


def labelled_mask(kind: str, labels: Any) -> Any:
    """Which rows of a head's labels are labelled (the one definition of "missing" in eno).

    Args:
        kind: ``"multilabel"`` (a row whose entries are all ``< 0`` is missing), ``"singlelabel"``
            (a negative class id is missing: ``-1`` in recording tables, ``-100`` in batches) or
            ``"regression"`` (NaN is missing).
        labels: ``numpy.ndarray`` or ``torch.Tensor``: ``(n, n_tags)`` multi-hot, ``(n,)`` class
            ids or ``(n,)`` values.

    Returns:
        ``(n,)`` bool mask of the same library as ``labels``.

    Raises:
        ValueError: an unknown ``kind``.
    """
    if kind == "multilabel":
        return ~(labels < 0).all(-1)
    if kind == "singlelabel":
        return labels >= 0
    if kind == "regression":
        return labels == labels  # False exactly for NaN, in numpy and torch alike
    raise ValueError(f"labelled_mask: no labels for head kind {kind!r}")


def multilabel_loss(logits: Tensor, labels: Tensor, pos_weight: Tensor | None = None) -> Tensor:
    """Binary cross-entropy with logits over labelled rows.

    Args:
        logits: ``(B, n)`` float.
        labels: ``(B, n)`` float multi-hot; a row whose entries are all ``< 0`` is missing.
        pos_weight: ``(n,)`` positive-class weights (``torch.nn.BCEWithLogitsLoss``), or None.

    Returns:
        Scalar mean over labelled rows and classes; 0 when no row is labelled.
    """
    labels = labels.to(logits.dtype)
    mask = labelled_mask("multilabel", labels)
    if not bool(mask.any()):
        return _zero(logits)
    pw = pos_weight.to(logits.device, logits.dtype) if pos_weight is not None else None
    return F.binary_cross_entropy_with_logits(logits[mask], labels[mask], pos_weight=pw)


def singlelabel_loss(logits: Tensor, labels: Tensor, class_weight: Tensor | None = None) -> Tensor:
    """Cross-entropy over labelled samples (``ignore_index=-100``; any negative label is missing).

    Args:
        logits: ``(B, n)`` float; labels: ``(B,)`` long class ids.
        class_weight: ``(n,)`` per-class weights (``torch.nn.CrossEntropyLoss(weight=...)``: the mean
            is then weighted by the targets' weights), or None.

    Returns:
        Scalar mean over labelled samples; 0 when none is labelled.
    """
    labels = labels.long()
    labels = torch.where(labelled_mask("singlelabel", labels), labels, torch.full_like(labels, IGNORE_INDEX))
    if not bool((labels != IGNORE_INDEX).any()):
        return _zero(logits)
    w = class_weight.to(logits.device, logits.dtype) if class_weight is not None else None
    return F.cross_entropy(logits, labels, weight=w, ignore_index=IGNORE_INDEX)


def regression_loss(predictions: Tensor, targets: Tensor) -> Tensor:
    """Mean squared error over samples whose target is not NaN.

    Args:
        predictions: ``(B,)`` or ``(B, 1)`` float; targets: ``(B,)`` float, NaN = missing.

    Returns:
        Scalar MSE; 0 when every target is missing.
    """
    predictions = predictions.reshape(predictions.shape[0], -1)[:, 0]
    targets = targets.to(predictions.dtype).reshape(-1)
    mask = labelled_mask("regression", targets)
    if not bool(mask.any()):
        return _zero(predictions)
    return F.mse_loss(predictions[mask], targets[mask])


def head_loss(kind: str, logits: Tensor, labels: Tensor, weight: Tensor | None = None) -> Tensor:
    """The supervised loss of one head by its kind: ``multilabel_loss`` (``weight`` = ``pos_weight``),
    ``singlelabel_loss`` (``weight`` = class weights) or ``regression_loss`` (``weight`` unused).

    Raises:
        ValueError: a kind outside ``LOSS_KINDS``.
    """
    if kind == "multilabel":
        return multilabel_loss(logits, labels, weight)
    if kind == "singlelabel":
        return singlelabel_loss(logits, labels, weight)
    if kind == "regression":
        return regression_loss(logits, labels)
    raise ValueError(f"head_loss: no supervised loss for head kind {kind!r} (have {LOSS_KINDS})")


def balanced_weights(kind: str, labels: np.ndarray, n_out: int, max_pos_weight: float = 100.0) -> Tensor:
    """Class-balanced loss weights from labelled rows: single-label ``n / (K n_k)`` per class (0 for
    an absent class; King & Zeng 2001, scikit-learn's ``class_weight="balanced"``), multi-label
    ``pos_weight = n_neg / n_pos`` per tag (1 for a tag without positives), capped at ``max_pos_weight``.

    Args:
        labels: labelled rows only: ``(n,)`` int class ids or ``(n, n_out)`` 0/1.

    Returns:
        ``(n_out,)`` float32 tensor (``head_loss``'s ``weight``).
    """
    if kind == "singlelabel":
        counts = np.bincount(labels, minlength=n_out).astype(np.float64)
        w = np.where(counts > 0, len(labels) / (n_out * np.maximum(counts, 1)), 0.0)
        return torch.tensor(w, dtype=torch.float32)
    pos = labels.sum(axis=0).astype(np.float64)
    w = np.where(pos > 0, (len(labels) - pos) / np.maximum(pos, 1), 1.0)
    return torch.tensor(np.minimum(w, max_pos_weight), dtype=torch.float32)



def multitask_loss(
    head_logits: Mapping[str, Tensor],
    labels: Mapping[str, Tensor],
    heads: Sequence[Mapping[str, Any]],
    pos_weight: Mapping[str, Tensor] | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Weighted sum of per-head losses: BCE-with-logits, cross-entropy or MSE by head kind.

    Args:
        head_logits: head name -> logits (``(B, n)``; regression ``(B,)`` or ``(B, 1)``).
        labels: head name -> labels in the batch conventions above. Heads without an entry
            here (or without logits) are skipped.
        heads: head descriptions (dicts or objects with ``name``, ``kind``, optional ``weight``,
            default 1.0). Kinds other than ``LOSS_KINDS`` (e.g. ``projection``) are skipped.
        pos_weight: optional head name -> ``(n,)`` positive weights for multi-label heads.

    Returns:
        ``(total, per_head)``: ``total`` is the scalar ``sum(weight_h * loss_h)``; ``per_head``
        maps each computed head to its unweighted scalar loss.

    Raises:
        ValueError: no head produced a loss (nothing to train on).
    """
    total: Tensor | None = None
    per_head: dict[str, Tensor] = {}
    for head in heads:
        name, kind = head_attr(head, "name"), head_attr(head, "kind")
        if kind not in LOSS_KINDS or name not in labels or name not in head_logits:
            continue
        logits, target = head_logits[name], labels[name].to(head_logits[name].device)
        loss = head_loss(kind, logits, target, (pos_weight or {}).get(name) if kind == "multilabel" else None)
        per_head[name] = loss
        weighted = float(head_attr(head, "weight", 1.0) or 0.0) * loss
        total = weighted if total is None else total + weighted
    if total is None:
        raise ValueError(
            f"multitask_loss: no head has both logits and labels (heads={[head_attr(h, 'name') for h in heads]}, "
            f"labels={sorted(labels)}, logits={sorted(head_logits)})"
        )
    return total, per_head


def info_nce(a: Tensor, b: Tensor, temperature: float = 0.07) -> Tensor:
    """Symmetric InfoNCE (CLIP-style) between two batches of paired embeddings.

    Row ``i`` of ``a`` and row ``i`` of ``b`` are a positive pair; every other row of the batch
    is a negative. Embeddings are L2-normalized, cosine similarities are divided by
    ``temperature``, and the loss is the mean of the a->b and b->a cross-entropies.

    Sources: van den Oord, Li, Vinyals (2018), "Representation Learning with Contrastive
    Predictive Coding" (arXiv:1807.03748); Radford et al. (2021), CLIP (arXiv:2103.00020).

    Args:
        a, b: ``(B, d)`` float, same shape, ``B >= 1``.
        temperature: softmax temperature (> 0).

    Returns:
        Scalar loss (``log(B)`` for uninformative embeddings, -> 0 for perfectly aligned ones).

    Raises:
        ValueError: shapes differ or are not 2-D, or ``temperature <= 0``.
    """
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"info_nce: expected two (B, d) tensors of equal shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if temperature <= 0:
        raise ValueError(f"info_nce: temperature must be > 0, got {temperature}")
    a = F.normalize(a, dim=-1)
    b = F.normalize(b, dim=-1)
    logits = a @ b.T / temperature
    target = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def pairwise_ranking_loss(
    scores: Tensor,
    targets: Tensor,
    margin: float | None = None,
) -> Tensor:
    """Pairwise ranking loss over all pairs ``(i, j)`` with ``targets[i] > targets[j]``.

    - ``margin=None``: RankNet, ``log(1 + exp(-(s_i - s_j)))`` (Burges et al. 2005, "Learning to
      Rank using Gradient Descent", ICML);
    - ``margin=m``: hinge, ``max(0, m - (s_i - s_j))`` (``torch.nn.MarginRankingLoss``).

    Pairs with equal targets, and samples whose target is NaN, are ignored.

    Args:
        scores: ``(B,)`` predicted scores; targets: ``(B,)`` float relevance (NaN = missing).
        margin: hinge margin, or None for RankNet.

    Returns:
        Scalar mean over ordered pairs; 0 (with a gradient graph) when there is no such pair.
    """
    scores = scores.reshape(-1)
    targets = targets.to(scores.dtype).reshape(-1)
    valid = ~torch.isnan(targets)
    diff_t = targets[:, None] - targets[None, :]
    pair = (diff_t > 0) & valid[:, None] & valid[None, :]
    if not bool(pair.any()):
        return _zero(scores)
    diff_s = (scores[:, None] - scores[None, :])[pair]
    if margin is None:
        return F.softplus(-diff_s).mean()
    return F.relu(margin - diff_s).mean()
