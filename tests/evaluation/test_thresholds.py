"""Per-tag threshold tuning."""

from __future__ import annotations

import numpy as np
import pytest

from eno_hf.metrics import multilabel_metrics
from eno_hf.evaluation.thresholds import DEFAULT_GRID, tune_thresholds


def _calibrated_low(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positives score around 0.3, negatives around 0.1: 0.5 misses every positive."""
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 3)) < 0.3).astype(int)
    probs = np.clip(np.where(y == 1, 0.3, 0.1) + rng.normal(0, 0.05, y.shape), 0, 1)
    return y, probs


def test_known_thresholds():
    y = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 0]])
    p = np.array([[0.3, 0.1, 0.2], [0.25, 0.2, 0.9], [0.1, 0.8, 0.1], [0.2, 0.3, 0.2]])
    thr = tune_thresholds(y, p)
    assert thr.shape == (3,)
    assert thr[0] == pytest.approx(0.25)   # only (0.2, 0.25] separates; 0.25 is on the grid
    assert thr[1] == pytest.approx(0.5)    # any of 0.35..0.8 is perfect: tie -> closest to 0.5
    assert thr[2] == pytest.approx(0.5)    # no positives: fallback


def test_tuned_thresholds_improve_f1_on_held_out_data():
    y_val, p_val = _calibrated_low(300, 0)
    y_test, p_test = _calibrated_low(300, 1)
    thr = tune_thresholds(y_val, p_val)
    assert np.all((thr > 0.1) & (thr < 0.35))
    default = multilabel_metrics(y_test, p_test)["f1_macro"]
    tuned = multilabel_metrics(y_test, p_test, thresholds=thr)["f1_macro"]
    assert default == pytest.approx(0.0, abs=0.05)
    assert tuned > 0.9


def test_missing_labels_ignored_and_grid():
    y = np.array([[1], [0], [-1], [-1]])
    p = np.array([[0.7], [0.2], [0.0], [0.0]])  # missing rows would pull the threshold down
    assert tune_thresholds(y, p)[0] == pytest.approx(0.5)
    assert tune_thresholds(y, p, grid=[0.6, 0.65])[0] == pytest.approx(0.6)
    assert len(DEFAULT_GRID) == 19 and DEFAULT_GRID[0] == 0.05 and DEFAULT_GRID[-1] == 0.95


def test_shape_errors():
    with pytest.raises(ValueError, match=r"y shape \(3, 2\) != probs shape \(3, 3\)"):
        tune_thresholds(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="empty grid"):
        tune_thresholds(np.zeros((3, 2)), np.zeros((3, 2)), grid=[])
