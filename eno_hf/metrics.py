"""Tagging metrics on plain arrays (scikit-learn / scipy), one function per head kind.

Inputs are recording-level arrays; this module does not depend on the model code (only on the
kind names of ``eno_hf.models.heads``), so it sits low, beside ``models``: the head-kind registry
(``eno_hf.models.head_kinds``: ``HEAD_METRICS`` is its metrics column, per kind its metrics
function, summary keys and score), inference (per-recording aggregation), training (validation
metrics), evaluation and the performance tiers all import it downwards.

- multi-label: ``probs (n, n_tags)`` float in [0, 1], ``y (n, n_tags)`` in {0, 1}; an entry < 0
  is missing (a row of -1 = recording without labels for this head).
- single-label: ``probs (n, n_classes)``, ``y (n,)`` int; ``y < 0`` (-1 or -100) is missing.
- regression: ``pred (n,)``, ``y (n,)`` float; NaN is missing.

Metric definitions follow scikit-learn (``roc_auc_score``, ``average_precision_score`` = PR-AUC,
``f1_score``, ``balanced_accuracy_score``, ``confusion_matrix``) and the tagging protocol of
Won et al. 2020 (arXiv:2006.00751): macro ROC-AUC and PR-AUC over tags. Tags with only one class
in ``y`` have no defined ROC-AUC/AP; they are left out of every macro average and counted
(``n_tags_single_class``). Undefined values are ``float("nan")`` (``report`` writes them as null).

Example:
    >>> res = evaluate_heads(
    ...     [{"name": "moods", "kind": "multilabel", "labels": ["sad", "happy"]}],
    ...     preds={"moods": probs}, labels={"moods": y})
    >>> res["moods"]["roc_auc_macro"], res["score"]
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats
from sklearn import metrics as skm

from eno_hf.models.heads import MULTILABEL, REGRESSION, SINGLELABEL

Head = Mapping[str, Any] | Any
"""A head description: a dict (``{name, kind, labels, column}``) or an object with those attributes
(e.g. ``eno_hf.config.HeadConfig``)."""

NAN = float("nan")


# ----------------------------------------------------------------------------- helpers
def head_field(head: Head, key: str, default: Any = None) -> Any:
    """Read ``key`` from a head given as a dict or as an object (pydantic model, dataclass)."""
    if isinstance(head, Mapping):
        value = head.get(key, default)
    else:
        value = getattr(head, key, default)
    return default if value is None else value


def _float(x: Any) -> float:
    return float(x) if x is not None and np.isfinite(x) else NAN


def _nanmean(values: Sequence[float]) -> float:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(vals)) if vals else NAN


def _as_2d(name: str, a: Any, dtype: Any) -> np.ndarray:
    arr = np.asarray(a, dtype=dtype)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (n, n_tags), got shape {arr.shape}")
    return arr


def _thresholds_array(thresholds: Any, n_tags: int) -> np.ndarray:
    if thresholds is None:
        return np.full(n_tags, 0.5)
    arr = np.asarray(thresholds, dtype=np.float64)
    if arr.ndim == 0:
        return np.full(n_tags, float(arr))
    if arr.shape != (n_tags,):
        raise ValueError(f"thresholds: expected shape ({n_tags},), got {arr.shape}")
    return arr


# ----------------------------------------------------------------------------- multi-label
def _binary_f1(y: np.ndarray, pred: np.ndarray) -> float:
    """F1 of the positive class, ``2 TP / (2 TP + FP + FN)``, 0 when that is 0/0: what
    ``sklearn.metrics.f1_score(y, pred, zero_division=0)`` gives for binary ``y``/``pred``, without
    its input validation (7 ms a call: most of the time of a per-tag table over a vocabulary)."""
    y, pred = np.asarray(y).astype(bool), np.asarray(pred).astype(bool)
    tp = int(np.count_nonzero(y & pred))
    denom = 2 * tp + int(np.count_nonzero(y ^ pred))
    return 2.0 * tp / denom if denom else 0.0


def multilabel_metrics(
    y: np.ndarray,
    probs: np.ndarray,
    thresholds: np.ndarray | float | None = None,
    labels: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Multi-label tagging metrics (ROC-AUC, PR-AUC, F1) with a per-tag table.

    Args:
        y: ``(n, n_tags)`` ground truth in {0, 1}; entries < 0 are missing (a row of -1 =
            recording without labels; such rows are dropped).
        probs: ``(n, n_tags)`` predicted probabilities (float).
        thresholds: ``(n_tags,)`` decision thresholds, a scalar, or None (0.5 for every tag).
        labels: tag names (default ``"tag_{j}"``).

    Returns:
        dict with ``n_samples`` (labelled rows), ``n_tags``, ``n_tags_evaluated``,
        ``n_tags_single_class`` and ``single_class_tags`` (tags without a positive or without a
        negative, excluded from macro averages), ``roc_auc_macro``, ``roc_auc_micro``,
        ``pr_auc_macro`` (mean average precision), ``pr_auc_micro``, ``f1_macro`` (over evaluated
        tags), ``f1_micro`` (over all tags), ``thresholds`` (list) and ``per_tag``: a list of
        ``{tag, support, n_labelled, roc_auc, ap, f1, threshold}`` rows. Undefined values are NaN.

    Raises:
        ValueError: shapes of ``y``, ``probs``, ``thresholds`` or ``labels`` disagree.
    """
    y = _as_2d("y", y, np.float64)
    probs = _as_2d("probs", probs, np.float64)
    if y.shape != probs.shape:
        raise ValueError(f"multilabel: y shape {y.shape} != probs shape {probs.shape}")
    n_tags = y.shape[1]
    names = list(labels) if labels is not None else [f"tag_{j}" for j in range(n_tags)]
    if len(names) != n_tags:
        raise ValueError(f"multilabel: {len(names)} labels for {n_tags} tags")
    thr = _thresholds_array(thresholds, n_tags)

    rows = ~np.all(y < 0, axis=1)
    y, probs = y[rows], probs[rows]
    valid = y >= 0
    pred = probs >= thr[None, :]

    per_tag: list[dict[str, Any]] = []
    single_class: list[str] = []
    for j, name in enumerate(names):
        m = valid[:, j]
        yt = y[m, j].astype(int)
        n_pos = int(yt.sum())
        two_classes = 0 < n_pos < len(yt)
        if two_classes:
            auc = float(skm.roc_auc_score(yt, probs[m, j]))
            ap = float(skm.average_precision_score(yt, probs[m, j]))
        else:
            auc = ap = NAN
            single_class.append(name)
        f1 = _binary_f1(yt, pred[m, j]) if len(yt) else NAN
        per_tag.append({"tag": name, "support": n_pos, "n_labelled": int(len(yt)),
                        "roc_auc": auc, "ap": ap, "f1": f1, "threshold": float(thr[j])})

    evaluated = [r for r in per_tag if not math.isnan(r["roc_auc"])]
    yt_all, p_all, pred_all = y[valid].astype(int), probs[valid], pred[valid]
    micro_ok = 0 < yt_all.sum() < len(yt_all)
    return {
        "kind": MULTILABEL,
        "n_samples": int(rows.sum()),
        "n_tags": n_tags,
        "n_tags_evaluated": len(evaluated),
        "n_tags_single_class": len(single_class),
        "single_class_tags": single_class,
        "roc_auc_macro": _nanmean([r["roc_auc"] for r in evaluated]),
        "roc_auc_micro": float(skm.roc_auc_score(yt_all, p_all)) if micro_ok else NAN,
        "pr_auc_macro": _nanmean([r["ap"] for r in evaluated]),
        "pr_auc_micro": float(skm.average_precision_score(yt_all, p_all)) if micro_ok else NAN,
        "f1_macro": _nanmean([r["f1"] for r in evaluated]),
        "f1_micro": _binary_f1(yt_all, pred_all) if len(yt_all) else NAN,
        "thresholds": [float(t) for t in thr],
        "per_tag": per_tag,
    }


# ----------------------------------------------------------------------------- single-label
def singlelabel_metrics(
    y: np.ndarray, probs: np.ndarray, labels: Sequence[str] | None = None
) -> dict[str, Any]:
    """Single-label classification metrics; the prediction is ``argmax(probs)``.

    Args:
        y: ``(n,)`` int class indices; values < 0 (-1, -100) are missing and dropped.
        probs: ``(n, n_classes)`` class probabilities (or scores).
        labels: class names (default ``"class_{k}"``).

    Returns:
        dict with ``n_samples``, ``accuracy``, ``f1_macro`` (scikit-learn: over classes present in
        ``y`` or the predictions), ``balanced_accuracy``, ``roc_auc_macro`` (one-vs-rest, over
        classes with both a positive and a negative), ``confusion_matrix`` (``n_classes`` ×
        ``n_classes`` list of lists, rows = true, columns = predicted), ``labels`` and
        ``per_class``: ``{label, support, precision, recall, f1}`` rows.

    Raises:
        ValueError: shapes disagree or a class index is out of range.
    """
    y = np.asarray(y).reshape(-1)
    probs = _as_2d("probs", probs, np.float64)
    if len(y) != len(probs):
        raise ValueError(f"singlelabel: {len(y)} labels for {len(probs)} predictions")
    n_classes = probs.shape[1]
    names = list(labels) if labels is not None else [f"class_{k}" for k in range(n_classes)]
    if len(names) != n_classes:
        raise ValueError(f"singlelabel: {len(names)} labels for {n_classes} classes")
    keep = y >= 0
    y, probs = y[keep].astype(int), probs[keep]
    if len(y) and y.max() >= n_classes:
        raise ValueError(f"singlelabel: class index {y.max()} >= n_classes {n_classes}")
    out: dict[str, Any] = {"kind": SINGLELABEL, "n_samples": int(len(y)), "labels": names}
    class_ids = list(range(n_classes))
    if not len(y):
        out.update(accuracy=NAN, f1_macro=NAN, balanced_accuracy=NAN, roc_auc_macro=NAN,
                   confusion_matrix=np.zeros((n_classes, n_classes), int).tolist(),
                   per_class=[])
        return out
    pred = probs.argmax(axis=1)
    prec, rec, f1, support = skm.precision_recall_fscore_support(
        y, pred, labels=class_ids, zero_division=0)
    aucs = [float(skm.roc_auc_score(y == k, probs[:, k]))
            for k in class_ids if 0 < (y == k).sum() < len(y)]
    out.update(
        accuracy=float(skm.accuracy_score(y, pred)),
        f1_macro=float(skm.f1_score(y, pred, average="macro", zero_division=0)),
        balanced_accuracy=_balanced_accuracy(y, pred),
        roc_auc_macro=_nanmean(aucs),
        confusion_matrix=skm.confusion_matrix(y, pred, labels=class_ids).tolist(),
        per_class=[{"label": names[k], "support": int(support[k]), "precision": float(prec[k]),
                    "recall": float(rec[k]), "f1": float(f1[k])} for k in class_ids],
    )
    return out


def _balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    with warnings.catch_warnings():  # "y_pred contains classes not in y_true" is expected here
        warnings.simplefilter("ignore", UserWarning)
        return float(skm.balanced_accuracy_score(y, pred))


# ----------------------------------------------------------------------------- regression
def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    """Regression metrics: Pearson r, Spearman rho (scipy.stats), MAE, RMSE, R² (as scikit-learn's
    ``mean_absolute_error``, ``mean_squared_error``, ``r2_score``; computed here).

    Args:
        y: ``(n,)`` float targets; NaN entries are missing and dropped.
        pred: ``(n,)`` (or ``(n, 1)``) float predictions.

    Returns:
        dict with ``n_samples``, ``pearson``, ``spearman``, ``mae``, ``rmse``, ``r2``; correlations
        are NaN when fewer than 2 samples or either side is constant.

    Raises:
        ValueError: lengths differ.
    """
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    pred = np.asarray(pred, dtype=np.float64).reshape(-1)
    if len(y) != len(pred):
        raise ValueError(f"regression: {len(y)} targets for {len(pred)} predictions")
    keep = np.isfinite(y)
    y, pred = y[keep], pred[keep]
    out: dict[str, Any] = {"kind": REGRESSION, "n_samples": int(len(y))}
    if not len(y):
        out.update(pearson=NAN, spearman=NAN, mae=NAN, rmse=NAN, r2=NAN)
        return out
    corr_ok = len(y) >= 2 and np.ptp(y) > 0 and np.ptp(pred) > 0
    out.update(
        pearson=_float(stats.pearsonr(y, pred).statistic) if corr_ok else NAN,
        spearman=_float(stats.spearmanr(y, pred).statistic) if corr_ok else NAN,
        mae=float(np.mean(np.abs(y - pred))),
        rmse=float(np.sqrt(np.mean((y - pred) ** 2))),
        r2=float(r2_per_column(y, pred)[0]),
    )
    return out


def r2_per_column(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Coefficient of determination R² of each column, on its rows with a finite ``y``: what
    ``sklearn.metrics.r2_score`` gives per column (a constant target: 1 for a perfect prediction,
    else 0), vectorised and without its input validation, which took most of the performance
    job's cross-validation time (19 dimensions per fold, hundreds of bootstrap resamples).

    Args:
        y: ``(n, K)`` (or ``(n,)``) float targets; NaN = missing. pred: the same shape.

    Returns:
        ``(K,)`` float64; NaN for a column with fewer than 2 finite targets.
    """
    y = np.asarray(y, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    if y.ndim == 1:
        y, pred = y[:, None], pred[:, None]
    ok = np.isfinite(y)
    n = ok.sum(0)
    mean = np.where(ok, y, 0.0).sum(0) / np.maximum(n, 1)
    ss_tot = (np.where(ok, y - mean, 0.0) ** 2).sum(0)
    ss_res = (np.where(ok, y - np.where(ok, pred, 0.0), 0.0) ** 2).sum(0)
    r2 = np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0), np.where(ss_res == 0, 1.0, 0.0))
    return np.where(n >= 2, r2, np.nan)


# ----------------------------------------------------------------------------- aggregation
def aggregate_by_recording(
    recording_ids: Sequence[str], probs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Average segment-level predictions per recording (chunk averaging, Won et al. 2020).

    Args:
        recording_ids: ``(n_segments,)`` recording id of each segment.
        probs: ``(n_segments, ...)`` segment probabilities (or predictions).

    Returns:
        ``(unique_ids (n_rec,) sorted, mean_probs (n_rec, ...) float64)``.

    Raises:
        ValueError: lengths differ.
    """
    ids = np.asarray(recording_ids)
    probs = np.asarray(probs, dtype=np.float64)
    if len(ids) != len(probs):
        raise ValueError(f"aggregate_by_recording: {len(ids)} ids for {len(probs)} rows")
    unique, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    sums = np.zeros((len(unique), *probs.shape[1:]), dtype=np.float64)
    np.add.at(sums, inverse, probs)
    return unique, sums / counts.reshape(-1, *([1] * (probs.ndim - 1)))


def first_by_recording(recording_ids: Sequence[str], values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first segment's value per recording (labels are the same for every segment).

    Returns ``(unique_ids (n_rec,) sorted, values (n_rec, ...))`` aligned with
    ``aggregate_by_recording``.
    """
    ids = np.asarray(recording_ids)
    values = np.asarray(values)
    unique, first = np.unique(ids, return_index=True)
    return unique, values[first]


# ----------------------------------------------------------------------------- per kind
@dataclass(frozen=True)
class HeadMetrics:
    """How heads of one kind are scored.

    Attributes:
        compute: ``(y, preds, label_names, thresholds) -> metrics dict`` (``thresholds`` is read by
            multi-label heads only).
        summary_keys: the scalar metrics shown in summaries and logs (``flatten_metrics``).
        score_metric: the metric averaged into the single ``score`` (higher is better), or None
            (the kind does not count towards ``score``).
    """

    compute: Callable[[np.ndarray, np.ndarray, Sequence[str] | None, np.ndarray | None], dict[str, Any]]
    summary_keys: tuple[str, ...]
    score_metric: str | None


HEAD_METRICS: dict[str, HeadMetrics] = {
    MULTILABEL: HeadMetrics(lambda y, p, names, thr: multilabel_metrics(y, p, thr, names),
                            ("roc_auc_macro", "roc_auc_micro", "pr_auc_macro", "f1_macro", "f1_micro"),
                            "roc_auc_macro"),
    SINGLELABEL: HeadMetrics(lambda y, p, names, thr: singlelabel_metrics(y, p, names),
                             ("accuracy", "f1_macro", "balanced_accuracy", "roc_auc_macro"), "f1_macro"),
    REGRESSION: HeadMetrics(lambda y, p, names, thr: regression_metrics(y, p),
                            ("pearson", "spearman", "mae", "rmse"), None),
}
"""Per evaluated head kind (the others, e.g. ``projection``, have no metrics)."""

SUMMARY_KEYS: dict[str, tuple[str, ...]] = {k: m.summary_keys for k, m in HEAD_METRICS.items()}
"""Scalar metrics shown in summaries, per head kind."""
SCORE_METRIC: dict[str, str] = {k: m.score_metric for k, m in HEAD_METRICS.items() if m.score_metric}
"""Per head kind, the metric averaged into the single ``score`` (higher is better)."""


# ----------------------------------------------------------------------------- heads
def evaluate_heads(
    heads: Sequence[Head],
    preds: Mapping[str, np.ndarray],
    labels: Mapping[str, np.ndarray],
    thresholds: Mapping[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Evaluate every head that has predictions and labels, plus a single ``score``.

    Args:
        heads: head descriptions (dicts or objects) with ``name``, ``kind`` (``multilabel`` /
            ``singlelabel`` / ``regression``; other kinds such as ``projection`` are skipped) and
            optional ``labels`` (tag/class names).
        preds: head name -> probabilities (classification) or predictions (regression).
        labels: head name -> ground truth (see module docstring for the encodings).
        thresholds: head name -> ``(n_tags,)`` thresholds for multi-label heads (default 0.5).

    Returns:
        ``{head_name: metrics_dict, ..., "score": float}`` where ``score`` is the mean over heads
        of macro ROC-AUC (multi-label) and macro-F1 (single-label) (NaN when none is defined).
        Use ``flatten_metrics`` for a flat ``{"head/metric": float}`` view (Trainer logs).

    Raises:
        ValueError: a head's arrays have inconsistent shapes; a head is named ``score``.
    """
    out: dict[str, Any] = {}
    for head in heads:
        name, kind = head_field(head, "name"), head_field(head, "kind")
        if name == "score":
            raise ValueError("evaluate_heads: a head may not be named 'score'")
        if name not in preds or name not in labels:
            continue
        if kind in HEAD_METRICS:
            thr = thresholds.get(name) if thresholds else None
            out[name] = HEAD_METRICS[kind].compute(labels[name], preds[name], head_field(head, "labels"), thr)
    out["score"] = summary_score(out)
    return out


def summary_score(results: Mapping[str, Any]) -> float:
    """Mean of each head's ``SCORE_METRIC`` (macro ROC-AUC / macro-F1), ignoring NaN and
    regression heads. NaN if no head qualifies."""
    vals = [m.get(SCORE_METRIC[m["kind"]], NAN) for m in results.values()
            if isinstance(m, Mapping) and m.get("kind") in SCORE_METRIC]
    return _nanmean(vals)


evaluate_predictions = evaluate_heads
"""Alias named in docs/architecture.md."""


def flatten_metrics(results: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """``{"{prefix}{head}/{metric}": float, ..., "{prefix}score": float}`` for the scalar metrics in
    ``SUMMARY_KEYS`` (e.g. for ``Trainer`` ``compute_metrics`` or ClearML scalars)."""
    flat: dict[str, float] = {}
    for head, m in results.items():
        if isinstance(m, Mapping) and m.get("kind") in SUMMARY_KEYS:
            for key in SUMMARY_KEYS[m["kind"]]:
                flat[f"{prefix}{head}/{key}"] = float(m.get(key, NAN))
    flat[f"{prefix}score"] = float(results.get("score", summary_score(results)))
    return flat
