"""Multi-task losses with missing labels: one supervised loss per head kind (``HEAD_LOSSES``).

Batch label conventions (``docs/architecture.md``):

- multi-label ``(B, n)`` float32 multi-hot; a row of ``-1`` means "labels missing for this sample";
- single-label ``(B,)`` long; ``-100`` means missing (``CrossEntropyLoss(ignore_index=-100)``);
- regression ``(B,)`` float32; ``NaN`` means missing.

Missing samples never contribute (``labelled_mask`` is the one definition of "missing"). A head with no labelled sample in the batch contributes an exact
zero that still carries a gradient graph (so ``backward()`` works and nothing becomes NaN).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from eno_hf.models.heads import MULTILABEL, REGRESSION, SINGLELABEL, HeadSpec, unknown_kind

IGNORE_INDEX = -100
"""Single-label "missing" value (PyTorch's ``CrossEntropyLoss`` default ``ignore_index``)."""



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
    if kind == MULTILABEL:
        return ~(labels < 0).all(-1)
    if kind == SINGLELABEL:
        return labels >= 0
    if kind == REGRESSION:
        return labels == labels  # False exactly for NaN, in numpy and torch alike
    raise unknown_kind(kind, "labelled_mask (supervised kinds only)")


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
    mask = labelled_mask(MULTILABEL, labels)
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
    labels = torch.where(labelled_mask(SINGLELABEL, labels), labels, torch.full_like(labels, IGNORE_INDEX))
    if not bool((labels != IGNORE_INDEX).any()):
        return _zero(logits)
    w = class_weight.to(logits.device, logits.dtype) if class_weight is not None else None
    return F.cross_entropy(logits, labels, weight=w, ignore_index=IGNORE_INDEX)


def regression_loss(predictions: Tensor, targets: Tensor, weight: Tensor | None = None) -> Tensor:
    """Mean squared error over samples whose target is not NaN.

    Args:
        predictions: ``(B,)`` or ``(B, 1)`` float; targets: ``(B,)`` float, NaN = missing.
        weight: unused (the common signature of ``HEAD_LOSSES``).

    Returns:
        Scalar MSE; 0 when every target is missing.
    """
    predictions = predictions.reshape(predictions.shape[0], -1)[:, 0]
    targets = targets.to(predictions.dtype).reshape(-1)
    mask = labelled_mask(REGRESSION, targets)
    if not bool(mask.any()):
        return _zero(predictions)
    return F.mse_loss(predictions[mask], targets[mask])


HEAD_LOSSES: dict[str, Callable[[Tensor, Tensor, Tensor | None], Tensor]] = {
    MULTILABEL: multilabel_loss, SINGLELABEL: singlelabel_loss, REGRESSION: regression_loss}
"""Per supervised head kind, its loss ``(logits, labels, weight) -> scalar`` (``weight``: multi-label
``pos_weight``, single-label class weights, unused for regression); the loss column of the
registry ``eno_hf.models.head_kinds``."""

LOSS_KINDS: tuple[str, ...] = tuple(HEAD_LOSSES)
"""Head kinds ``multitask_loss`` computes a supervised loss for (projection heads are skipped)."""


def head_loss(kind: str, logits: Tensor, labels: Tensor, weight: Tensor | None = None) -> Tensor:
    """The supervised loss of one head by its kind (``HEAD_LOSSES``): ``multilabel_loss``
    (``weight`` = ``pos_weight``), ``singlelabel_loss`` (``weight`` = class weights) or
    ``regression_loss`` (``weight`` unused).

    Raises:
        ValueError: a kind outside ``LOSS_KINDS`` (named in the message).
    """
    loss = HEAD_LOSSES.get(kind)
    if loss is None:
        raise unknown_kind(kind, "head_loss (supervised kinds only)")
    return loss(logits, labels, weight)


def balanced_weights(kind: str, labels: np.ndarray, n_out: int, max_pos_weight: float = 100.0) -> Tensor:
    """Class-balanced loss weights from labelled rows: single-label ``n / (K n_k)`` per class (0 for
    an absent class; King & Zeng 2001, scikit-learn's ``class_weight="balanced"``), multi-label
    ``pos_weight = n_neg / n_pos`` per tag (1 for a tag without positives), capped at ``max_pos_weight``.

    Args:
        labels: labelled rows only: ``(n,)`` int class ids or ``(n, n_out)`` 0/1.

    Returns:
        ``(n_out,)`` float32 tensor (``head_loss``'s ``weight``).
    """
    if kind == SINGLELABEL:
        counts = np.bincount(labels, minlength=n_out).astype(np.float64)
        w = np.where(counts > 0, len(labels) / (n_out * np.maximum(counts, 1)), 0.0)
        return torch.tensor(w, dtype=torch.float32)
    pos = labels.sum(axis=0).astype(np.float64)
    w = np.where(pos > 0, (len(labels) - pos) / np.maximum(pos, 1), 1.0)
    return torch.tensor(np.minimum(w, max_pos_weight), dtype=torch.float32)



def multitask_loss(
    head_logits: Mapping[str, Tensor],
    labels: Mapping[str, Tensor],
    heads: Sequence[HeadSpec | Mapping[str, Any]],
    pos_weight: Mapping[str, Tensor] | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Weighted sum of per-head losses: BCE-with-logits, cross-entropy or MSE by head kind.

    Args:
        head_logits: head name -> logits (``(B, n)``; regression ``(B,)`` or ``(B, 1)``).
        labels: head name -> labels in the batch conventions above. Heads without an entry
            here (or without logits) are skipped.
        heads: ``HeadSpec`` s (other forms are converted by ``HeadSpec.coerce``); each head's
            loss is multiplied by its ``weight``. Kinds other than ``LOSS_KINDS`` (e.g.
            ``projection``) are skipped.
        pos_weight: optional head name -> ``(n,)`` positive weights for multi-label heads.

    Returns:
        ``(total, per_head)``: ``total`` is the scalar ``sum(weight_h * loss_h)``; ``per_head``
        maps each computed head to its unweighted scalar loss.

    Raises:
        ValueError: no head produced a loss (nothing to train on).
    """
    total: Tensor | None = None
    per_head: dict[str, Tensor] = {}
    specs = [HeadSpec.coerce(h) for h in heads]
    for head in specs:
        name, kind = head.name, head.kind
        if kind not in LOSS_KINDS or name not in labels or name not in head_logits:
            continue
        logits, target = head_logits[name], labels[name].to(head_logits[name].device)
        loss = head_loss(kind, logits, target, (pos_weight or {}).get(name) if kind == MULTILABEL else None)
        per_head[name] = loss
        weighted = float(head.weight or 0.0) * loss
        total = weighted if total is None else total + weighted
    if total is None:
        raise ValueError(
            f"multitask_loss: no head has both logits and labels (heads={[h.name for h in specs]}, "
            f"labels={sorted(labels)}, logits={sorted(head_logits)})"
        )
    return total, per_head
