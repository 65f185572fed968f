"""Evaluation plots as PNG files (matplotlib, Agg backend: no display needed).

Every function takes a target ``path`` (``.png``), creates its parent folder, closes its figure and
returns the path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import average_precision_score, precision_recall_curve  # noqa: E402

DPI = 110


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def plot_per_tag_auc(
    per_tag: Sequence[Mapping[str, Any]], path: str | Path, title: str = "ROC-AUC per tag",
    max_tags: int = 60,
) -> Path:
    """Horizontal bar chart of per-tag ROC-AUC, sorted (best at the top), with the 0.5 chance line.

    Args:
        per_tag: rows with ``tag``, ``roc_auc`` (NaN rows skipped) and ``support``
            (``multilabel_metrics(...)["per_tag"]``).
        path: output PNG.
        max_tags: show at most this many tags (the best half and the worst half when more).
    """
    rows = [r for r in per_tag if r.get("roc_auc") is not None and not math.isnan(r["roc_auc"])]
    rows.sort(key=lambda r: r["roc_auc"])
    if len(rows) > max_tags:
        rows = rows[: max_tags // 2] + rows[-(max_tags - max_tags // 2):]
    height = max(2.5, 0.22 * len(rows) + 1.2)
    fig, ax = plt.subplots(figsize=(7, height))
    if rows:
        names = [f"{r['tag']} (n={r.get('support', '?')})" for r in rows]
        vals = [r["roc_auc"] for r in rows]
        ax.barh(range(len(rows)), vals, color=plt.cm.viridis(np.asarray(vals)))
        ax.set_yticks(range(len(rows)), names, fontsize=7)
    else:
        ax.text(0.5, 0.5, "no tag with both classes", ha="center", va="center")
    ax.axvline(0.5, color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set_xlim(0, 1)
    ax.set_xlabel("ROC-AUC")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=7)
    return _save(fig, path)


def plot_pr_curves(
    y: np.ndarray, probs: np.ndarray, labels: Sequence[str], path: str | Path, top_k: int = 8,
    title: str = "Precision-recall, most frequent tags",
) -> Path:
    """Precision-recall curves (scikit-learn ``precision_recall_curve``) of the ``top_k`` tags with
    the most positives; the legend gives each tag's AP and its prevalence (chance AP).

    Args:
        y: ``(n, n_tags)`` labels in {0, 1} (entries < 0 missing).
        probs: ``(n, n_tags)`` probabilities.
        labels: ``n_tags`` tag names.
    """
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    probs = np.asarray(probs, dtype=np.float64).reshape(len(probs), -1)
    valid = y >= 0
    support = np.where(valid, y, 0).sum(axis=0)
    n_valid = valid.sum(axis=0)
    ok = (support > 0) & (support < n_valid)
    order = [j for j in np.argsort(-support, kind="stable") if ok[j]][:top_k]
    fig, ax = plt.subplots(figsize=(6.5, 5))
    for j in order:
        m = valid[:, j]
        prec, rec, _ = precision_recall_curve(y[m, j], probs[m, j])
        ap = average_precision_score(y[m, j], probs[m, j])
        ax.plot(rec, prec, linewidth=1.3,
                label=f"{labels[j]}  AP={ap:.2f} (prev {support[j] / n_valid[j]:.2f})")
    if not order:
        ax.text(0.5, 0.5, "no tag with both classes", ha="center", va="center")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title)
    if order:
        ax.legend(fontsize=7, loc="upper right")
    return _save(fig, path)


def plot_confusion_matrix(
    cm: Sequence[Sequence[int]] | np.ndarray, labels: Sequence[str], path: str | Path,
    title: str = "Confusion matrix", normalize: bool = True,
) -> Path:
    """Heatmap of a confusion matrix (rows = true, columns = predicted), cells annotated with the
    count and, if ``normalize``, the row fraction (recall)."""
    cm = np.asarray(cm, dtype=np.float64)
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    n = len(labels)
    fig, ax = plt.subplots(figsize=(1.0 * n + 2.5, 0.9 * n + 2))
    im = ax.imshow(frac if normalize else cm, cmap="Blues", vmin=0,
                   vmax=1 if normalize else max(cm.max(), 1))
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04,
                 label="fraction of true class" if normalize else "count")
    for i in range(n):
        for j in range(n):
            text = f"{int(cm[i, j])}\n{frac[i, j]:.0%}" if normalize else f"{int(cm[i, j])}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if frac[i, j] > 0.5 else "black")
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return _save(fig, path)


def plot_training_curves(
    history: Sequence[Mapping[str, Any]], path: str | Path, title: str = "Training curves",
) -> Path:
    """Loss curves (left) and evaluation metrics (right) from a training history.

    Args:
        history: list of log dicts as in ``transformers.TrainerState.log_history``: each has
            ``step`` and/or ``epoch`` and numeric keys such as ``loss``, ``eval_loss``,
            ``eval_score``, ``eval_{head}/roc_auc_macro``. Keys containing ``loss`` go left,
            other ``eval_*`` keys right; runtime/throughput keys are ignored.
    """
    x_key = "epoch" if any("epoch" in h for h in history) else "step"
    skip = ("runtime", "per_second", "learning_rate", "grad_norm", "flos", "epoch", "step")
    series: dict[str, tuple[list[float], list[float]]] = {}
    for i, h in enumerate(history):
        x = h.get(x_key, i)
        for key, val in h.items():
            if any(s in key for s in skip) or not isinstance(val, (int, float)) or val is None:
                continue
            if isinstance(val, float) and math.isnan(val):
                continue
            xs, ys = series.setdefault(key, ([], []))
            xs.append(float(x))
            ys.append(float(val))
    losses = {k: v for k, v in series.items() if "loss" in k}
    evals = {k: v for k, v in series.items() if "loss" not in k and k.startswith("eval_")}
    fig, (ax_l, ax_r) = plt.subplots(1, 2, figsize=(11, 4))
    for ax, group, ylabel in ((ax_l, losses, "loss"), (ax_r, evals, "metric")):
        for key, (xs, ys) in sorted(group.items()):
            ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, label=key)
        if group:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, f"no {ylabel} logged", ha="center", va="center",
                    transform=ax.transAxes)
        ax.set_xlabel(x_key)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return _save(fig, path)
