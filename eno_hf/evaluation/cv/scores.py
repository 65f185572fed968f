"""Per-fold metrics of every head, by head kind, and the score model selection maximises.

A head's kind decides its metrics (``KIND_METRICS``): single-label heads macro-F1 and accuracy
(``eno_hf.metrics.singlelabel_metrics``) and the expected calibration error before / after
temperature scaling; multi-label heads macro ROC-AUC and macro PR-AUC over the tags with both
classes among the fold's labelled rows (vectorised equivalents of
``eno_hf.metrics.multilabel_metrics``, tested equal). So ``eno cv`` reports whatever heads the
dataset has; heads of other kinds are not cross-validated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from eno_hf.evaluation.cv.calibration import expected_calibration_error
from eno_hf.metrics import singlelabel_metrics
from eno_hf.models.heads import MULTILABEL, SINGLELABEL, HeadSpec
from eno_hf.models.losses import labelled_mask

KIND_METRICS: dict[str, tuple[tuple[str, str], ...]] = {
    SINGLELABEL: (("f1_macro", "macro-F1"), ("accuracy", "accuracy"), ("ece", "ECE (raw)"),
                  ("ece_calibrated", "ECE (temperature-scaled)")),
    MULTILABEL: (("roc_auc_macro", "macro ROC-AUC"), ("pr_auc_macro", "macro PR-AUC")),
}
"""Head kind -> ``(metric key, label)`` rows of the report, in report order."""
METRIC_LABELS: dict[str, str] = {k: label for rows in KIND_METRICS.values() for k, label in rows}
"""Metric key -> its label in the report (``"{head} {label}"``)."""


def cv_heads(heads: Sequence[HeadSpec]) -> list[HeadSpec]:
    """The heads cross-validation scores: those of a kind in ``KIND_METRICS``."""
    return [h for h in heads if h.kind in KIND_METRICS]


def macro_roc_auc(y: np.ndarray, scores: np.ndarray) -> float:
    """Macro ROC-AUC over the tags with both classes among the labelled rows, by the rank-sum
    (Mann-Whitney) identity with average ranks for ties: equal to
    ``metrics.multilabel_metrics(...)["roc_auc_macro"]`` (scikit-learn) in one vectorised pass.

    Args:
        y: ``(n, k)`` 0/1 (a row of -1: missing). scores: ``(n, k)``.

    Returns:
        the mean over those tags; NaN when there is none.
    """
    from scipy.stats import rankdata

    keep = labelled_mask(MULTILABEL, y)
    y, scores = y[keep].astype(bool), scores[keep]
    pos = y.sum(axis=0)
    ok = (pos > 0) & (pos < len(y))
    if not ok.any():
        return float("nan")
    ranks = rankdata(scores[:, ok], axis=0)
    p, n = pos[ok], len(y) - pos[ok]
    auc = ((ranks * y[:, ok]).sum(axis=0) - p * (p + 1) / 2) / (p * n)
    return float(auc.mean())


def macro_average_precision(y: np.ndarray, scores: np.ndarray) -> float:
    """Macro PR-AUC (average precision, scikit-learn's step-wise definition over distinct thresholds)
    over the tags with both classes among the labelled rows; equal to ``multilabel_metrics(...)
    ["pr_auc_macro"]`` without its per-tag overhead. ``y``, ``scores`` as ``macro_roc_auc``."""
    keep = labelled_mask(MULTILABEL, y)
    y, scores = y[keep].astype(bool), scores[keep]
    aps = []
    for j in range(y.shape[1]):
        yj = y[:, j]
        if not 0 < yj.sum() < len(yj):
            continue
        order = np.argsort(-scores[:, j], kind="mergesort")
        sj, yo = scores[order, j], yj[order]
        last = np.r_[np.flatnonzero(np.diff(sj) != 0), len(sj) - 1]
        tps = np.cumsum(yo)[last]
        precision = tps / (last + 1)
        recall = tps / tps[-1]
        aps.append(float(np.sum(np.diff(np.r_[0.0, recall]) * precision)))
    return float(np.mean(aps)) if aps else float("nan")


def selection_score(kind: str, y: np.ndarray, probs: np.ndarray) -> float:
    """The score model selection maximises for one head (``eno train``'s per-head ``eval_score``
    part): macro-F1 (single-label) or macro ROC-AUC (multi-label); ``-inf`` when undefined."""
    v = singlelabel_metrics(y, probs)["f1_macro"] if kind == SINGLELABEL else macro_roc_auc(y, probs)
    return -np.inf if v is None or not np.isfinite(v) else float(v)


def fold_metrics(heads: Sequence[HeadSpec], labels: Mapping[str, np.ndarray],
                 probs: Mapping[str, np.ndarray]) -> dict[str, float]:
    """``"head/metric"`` -> value on one test fold, for every head of a kind in ``KIND_METRICS``.

    Args:
        heads: ``HeadSpec`` s. labels: head -> the fold's labels (``(n,)`` int or ``(n, k)``
            0/1, missing < 0). probs: head -> ``(n, k)`` probabilities; a single-label head's
            uncalibrated ones under ``"{head}:raw"`` (default: the calibrated ones).
    """
    out: dict[str, float] = {}
    for h in cv_heads(heads):
        name, y = h.name, labels[h.name]
        if h.kind == SINGLELABEL:
            m = singlelabel_metrics(y, probs[name])
            out[f"{name}/f1_macro"], out[f"{name}/accuracy"] = m["f1_macro"], m["accuracy"]
            out[f"{name}/ece"] = expected_calibration_error(y, probs.get(f"{name}:raw", probs[name]))
            out[f"{name}/ece_calibrated"] = expected_calibration_error(y, probs[name])
        else:
            out[f"{name}/roc_auc_macro"] = macro_roc_auc(y, probs[name])
            out[f"{name}/pr_auc_macro"] = macro_average_precision(y, probs[name])
    return out
