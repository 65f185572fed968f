"""Intervals of repeated k-fold scores and paired differences between candidates.

Corrected repeated k-fold t statistic: Nadeau & Bengio (2003), "Inference for the generalization
error" (Machine Learning 52); Bouckaert & Frank (2004), "Evaluating the replicability of significance
tests for comparing learning algorithms" (PAKDD). ``se = sqrt((1 / (k r) + n_test / n_train) var)``
with ``t`` on ``k r - 1`` degrees of freedom: the naive ``sd / sqrt(k r)`` is too narrow because the
training sets overlap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def corrected_interval(values: Sequence[float], n_folds: int, confidence: float = 0.95) -> dict[str, float]:
    """Mean and ``confidence`` interval of repeated k-fold scores with the Nadeau-Bengio correction
    (``se = sqrt((1/n + 1/(k - 1)) var)``, ``n`` = number of fold scores, test/train ratio ``1/(k-1)``).

    Args:
        values: per-fold scores (None / non-finite ones are left out).
        n_folds: ``k``, the folds per repeat.

    Returns:
        ``{"mean", "ci_low", "ci_high", "half_width", "n"}`` (NaN bounds and no ``half_width`` with
        fewer than 2 scores).
    """
    from scipy import stats

    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if len(v) < 2:
        mean = float(v.mean()) if len(v) else float("nan")
        return {"mean": mean, "ci_low": float("nan"), "ci_high": float("nan"), "n": int(len(v))}
    se = math.sqrt((1.0 / len(v) + 1.0 / (n_folds - 1)) * v.var(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, len(v) - 1)) * se
    return {"mean": float(v.mean()), "ci_low": float(v.mean() - half), "ci_high": float(v.mean() + half),
            "half_width": half, "n": int(len(v))}


def add_reference_differences(report: dict[str, Any], reference: str | None) -> dict[str, Any]:
    """(Re)compute every candidate's ``vs_reference`` (``corrected_interval`` of the per-fold
    differences to ``reference``: paired, same folds) from the stored per-fold values; returns ``report``."""
    cands = report["candidates"]
    report["reference"] = reference
    if reference not in cands:
        return report
    ref = cands[reference]["metrics"]
    for c in cands.values():
        c["vs_reference"] = {k: corrected_interval([a - b for a, b in zip(v["folds"], ref[k]["folds"])], report["n_folds"])
                             for k, v in c["metrics"].items() if k in ref}
    return report
