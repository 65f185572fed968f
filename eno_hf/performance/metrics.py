"""Metrics of the performance tiers.

* T1: per dimension and mean: R² (``sklearn.metrics.r2_score``), Pearson r, MAE
  (``eno_hf.metrics.regression_metrics``) and within-group pairwise ranking accuracy
  (pairs of the same passage whose true ratings differ: fraction ordered correctly; chance 0.5).
* T2: Spearman rho between score and order within each group (mean over groups) and pairwise
  accuracy of the order.
* T3: retrieval with cosine similarity, every item a query against all others: recall@k (a same-group
  item among the top k) and MRR (1 / rank of the first same-group item); ``chance`` gives the
  expected values for random rankings.
* Intervals: a percentile bootstrap over groups (performers or pieces), resampled with
  replacement ``n_boot`` times, of the mean over dimensions of pooled out-of-fold R² (and of the
  other means).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
from scipy import stats

from eno_hf.metrics import r2_per_column, regression_metrics

__all__ = ["bootstrap_interval", "mean_r2", "ordinal_metrics", "pairwise_accuracy", "regression_report", "retrieval_metrics"]


def pairwise_accuracy(y: np.ndarray, pred: np.ndarray, groups: Sequence[Hashable], min_diff: float = 1e-6) -> float:
    """Fraction of same-group pairs with ``|y_i - y_j| > min_diff`` that ``pred`` orders the same way
    (ties in ``pred`` count 0.5). ``y``/``pred``: ``(n,)``. NaN when there is no pair."""
    y, pred = np.asarray(y, float), np.asarray(pred, float)
    g = np.asarray([hash(x) for x in groups])
    same = g[:, None] == g[None, :]
    dy = y[:, None] - y[None, :]
    dp = pred[:, None] - pred[None, :]
    ok = same & (dy > min_diff) & np.isfinite(dy)
    if not ok.any():
        return float("nan")
    return float(((dp[ok] > 0) + 0.5 * (dp[ok] == 0)).mean())


def regression_report(y: np.ndarray, pred: np.ndarray, groups: Sequence[Hashable], names: Sequence[str]) -> dict[str, Any]:
    """Per-dimension R², Pearson r, MAE, pairwise accuracy, and their means over dimensions.

    Args:
        y, pred: ``(n, K)`` true and predicted ratings (rows with NaN in ``y`` ignored per dimension).
        groups: ``(n,)`` passage ids for the pairwise accuracy.
        names: the K dimension names.
    """
    per: dict[str, dict[str, float]] = {}
    for k, name in enumerate(names):
        ok = np.isfinite(y[:, k])
        m = regression_metrics(y[ok, k], pred[ok, k])
        per[name] = {"r2": float(m["r2"]), "pearson": float(m["pearson"]), "mae": float(m["mae"]),
                     "pairwise_accuracy": pairwise_accuracy(y[ok, k], pred[ok, k], [g for g, o in zip(groups, ok) if o])}
    mean = {f"mean_{m}": float(np.nanmean([v[m] for v in per.values()])) for m in ("r2", "pearson", "mae", "pairwise_accuracy")}
    return {**mean, "per_dimension": per, "n": int(len(y))}


def mean_r2(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean over dimensions of the coefficient of determination R², each dimension on its rows
    with a finite target (``eno_hf.metrics.r2_per_column``: scikit-learn's ``r2_score`` per
    column, vectorised), dimensions with fewer than 2 such rows left out; ``bootstrap_interval``
    calls it hundreds of times.

    Args:
        y, pred: ``(n, K)`` float arrays (``y`` may hold NaN: unrated).

    Returns:
        float; NaN when no dimension has 2 rated rows.
    """
    r2 = r2_per_column(y, pred)
    keep = np.isfinite(np.asarray(y, dtype=np.float64)).sum(0) >= 2
    return float(r2[keep].mean()) if keep.any() else float("nan")


def bootstrap_interval(y: np.ndarray, pred: np.ndarray, groups: Sequence[Hashable], n_boot: int = 500, seed: int = 0,
                       level: float = 0.95) -> dict[str, float]:
    """Percentile bootstrap over ``groups`` of the mean-over-dimensions R² of pooled predictions.

    Returns:
        ``{"mean_r2", "low", "high", "n_groups"}``.
    """
    by: dict[Hashable, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        by[g].append(i)
    keys = sorted(by, key=str)
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(keys), len(keys))
        idx = np.concatenate([by[keys[j]] for j in pick])
        vals.append(mean_r2(y[idx], pred[idx]))
    lo, hi = np.nanpercentile(vals, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return {"mean_r2": mean_r2(y, pred), "low": float(lo), "high": float(hi), "n_groups": len(keys)}


def ordinal_metrics(score: np.ndarray, order: np.ndarray, groups: Sequence[Hashable]) -> dict[str, float]:
    """T2: mean within-group Spearman rho of ``score`` vs ``order`` and pairwise accuracy (chance 0.5;
    rho chance 0)."""
    by: dict[Hashable, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        by[g].append(i)
    rhos = [stats.spearmanr(score[idx], order[idx]).statistic for idx in by.values()
            if len(idx) > 2 and np.ptp(order[idx]) > 0]
    return {"spearman": float(np.nanmean(rhos)) if rhos else float("nan"),
            "pairwise_accuracy": pairwise_accuracy(order, score, groups), "n_groups": len(by)}


def _chance_mrr(n: int, m: int) -> float:
    """Expected 1/rank of the first of ``m`` positives among ``n`` randomly ordered items."""
    p_before, total = 1.0, 0.0  # p_before: P(no positive in the first r-1 ranks)
    for r in range(1, n - m + 2):
        p_here = p_before * m / (n - r + 1)
        total += p_here / r
        p_before *= (n - m - r + 1) / (n - r + 1)
    return total


def retrieval_metrics(z: np.ndarray, groups: Sequence[Hashable], ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """T3: recall@k and MRR with cosine similarity (queries with no same-group item skipped), and the
    same for a random ranking (``chance_*``, analytic: hypergeometric for recall@k, mean over queries)."""
    z = np.asarray(z, float)
    z = z / (np.linalg.norm(z, axis=1, keepdims=True) + 1e-12)
    g = np.asarray([str(x) for x in groups])
    sim = z @ z.T
    np.fill_diagonal(sim, -np.inf)
    out: dict[str, list[float]] = defaultdict(list)
    n = len(g)
    for i in range(n):
        pos = g == g[i]
        pos[i] = False
        m = int(pos.sum())
        if m == 0:
            continue
        order = np.argsort(-sim[i], kind="stable")[: n - 1]
        hits = pos[order]
        first = int(np.argmax(hits)) + 1
        out["mrr"].append(1.0 / first)
        for k in ks:
            out[f"recall@{k}"].append(float(hits[:k].any()))
            # P(no positive in k random of n-1) = C(n-1-m, k) / C(n-1, k)
            p_none = np.prod([(n - 1 - m - j) / (n - 1 - j) for j in range(k)]) if n - 1 - m >= k else 0.0
            out[f"chance_recall@{k}"].append(1.0 - float(p_none))
        out["chance_mrr"].append(_chance_mrr(n - 1, m))
    res = {k: float(np.mean(v)) for k, v in out.items()}
    res["n_queries"] = len(out["mrr"])
    return res
