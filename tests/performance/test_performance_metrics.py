"""eno_hf.performance.metrics: the vectorised mean R² against scikit-learn's, and its bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import r2_score

from eno_hf.performance.metrics import bootstrap_interval, mean_r2


def _sklearn_mean_r2(y: np.ndarray, pred: np.ndarray) -> float:
    vals = [r2_score(y[ok, k], pred[ok, k]) for k in range(y.shape[1])
            if (ok := np.isfinite(y[:, k])).sum() >= 2]
    return float(np.mean(vals)) if vals else float("nan")


def test_mean_r2_is_scikit_learns_per_column_r2_averaged() -> None:
    rng = np.random.default_rng(0)
    y = rng.standard_normal((40, 6))
    pred = y + rng.normal(0, 0.8, y.shape)
    y[rng.random(y.shape) < 0.2] = np.nan        # unrated cells
    y[:, 3] = np.where(np.isfinite(y[:, 3]), 0.5, np.nan)  # a constant target, predicted imperfectly
    y[1:, 4] = np.nan                            # one rated row: left out
    pred[:, 5] = y[:, 5]                         # perfect
    assert mean_r2(y, pred) == pytest.approx(_sklearn_mean_r2(y, pred), abs=1e-12)
    const = np.full((5, 1), 2.0)
    assert mean_r2(const, const) == r2_score(const[:, 0], const[:, 0]) == 1.0  # constant, perfect: 1
    assert np.isnan(mean_r2(np.full((3, 2), np.nan), np.zeros((3, 2))))


def test_bootstrap_interval_brackets_the_estimate_and_is_seeded() -> None:
    rng = np.random.default_rng(1)
    y = rng.standard_normal((60, 3))
    pred = y + rng.normal(0, 0.7, y.shape)
    groups = [f"g{i % 12}" for i in range(60)]
    a = bootstrap_interval(y, pred, groups, n_boot=200, seed=0)
    assert a == bootstrap_interval(y, pred, groups, n_boot=200, seed=0)
    assert a["low"] < a["mean_r2"] < a["high"] and a["n_groups"] == 12
    assert a["mean_r2"] == pytest.approx(_sklearn_mean_r2(y, pred), abs=1e-12)
    worse = bootstrap_interval(y, pred + rng.normal(0, 1.0, y.shape), groups, n_boot=200, seed=0)
    assert worse["high"] < a["high"]
