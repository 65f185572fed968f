"""Per-tag decision thresholds tuned for F1 on a validation split.

Grid search per tag (the usual multi-label practice, e.g. Fan & Lin 2007, "A study on threshold
selection for multi-label classification"): for each tag, the grid value maximising F1 on the
validation recordings; ties go to the value closest to 0.5.
"""

from __future__ import annotations

import numpy as np

DEFAULT_GRID = np.round(np.linspace(0.05, 0.95, 19), 2)
FALLBACK = 0.5


def tune_thresholds(
    y_val: np.ndarray,
    probs_val: np.ndarray,
    grid: np.ndarray = DEFAULT_GRID,
    fallback: float = FALLBACK,
) -> np.ndarray:
    """Per-tag F1-optimal thresholds.

    Args:
        y_val: ``(n, n_tags)`` validation labels in {0, 1}; entries < 0 are missing.
        probs_val: ``(n, n_tags)`` validation probabilities.
        grid: candidate thresholds (1-D, in (0, 1)); default 0.05, 0.10, ..., 0.95.
        fallback: threshold for tags without any positive validation label.

    Returns:
        ``(n_tags,)`` float64 thresholds.

    Raises:
        ValueError: shapes disagree or the grid is empty.
    """
    y = np.asarray(y_val, dtype=np.float64)
    p = np.asarray(probs_val, dtype=np.float64)
    if y.ndim == 1:
        y, p = y[:, None], p.reshape(-1, 1)
    if y.shape != p.shape or y.ndim != 2:
        raise ValueError(f"tune_thresholds: y shape {y.shape} != probs shape {p.shape}")
    grid = np.asarray(grid, dtype=np.float64).reshape(-1)
    if not len(grid):
        raise ValueError("tune_thresholds: empty grid")
    valid = (y >= 0)[:, :, None]                         # (n, tags, 1)
    pos = (y == 1)[:, :, None]
    pred = p[:, :, None] >= grid[None, None, :]          # (n, tags, grid)
    tp = np.sum(pred & pos & valid, axis=0)              # (tags, grid)
    fp = np.sum(pred & ~pos & valid, axis=0)
    fn = np.sum(~pred & pos & valid, axis=0)
    denom = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.zeros(tp.shape), where=denom > 0)
    # ties: prefer the threshold closest to 0.5 (stable under tiny validation sets)
    order = np.argsort(np.abs(grid - 0.5), kind="stable")
    best = order[np.argmax(f1[:, order], axis=1)]
    out = grid[best]
    out[pos[:, :, 0].sum(axis=0) == 0] = fallback
    return out
