"""Probabilities from logits, temperature scaling and expected calibration error.

Temperature scaling and top-label ECE: Guo, Pleiss, Sun & Weinberger (2017), "On calibration of
modern neural networks" (ICML).
"""

from __future__ import annotations

import math

import numpy as np

from eno_hf.models.heads import SINGLELABEL
from eno_hf.models.losses import labelled_mask

ECE_BINS = 15
"""Equal-width confidence bins of ``expected_calibration_error``."""


def probabilities(kind: str, logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """``(n, k)`` logits -> probabilities: softmax of ``logits / temperature`` for a single-label
    head, element-wise sigmoid otherwise. Returns float64 ``(n, k)``."""
    z = logits / temperature
    if kind == SINGLELABEL:
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
    return 1.0 / (1.0 + np.exp(-z))


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Temperature ``T`` minimising the NLL of ``softmax(logits / T)`` on labelled rows (bounded
    search over ``log T`` in ``[log 1e-3, log 100]``; 1.0 without a labelled row).

    Args:
        logits: ``(n, k)``. y: ``(n,)`` int class ids (< 0: missing).
    """
    from scipy.optimize import minimize_scalar

    keep = labelled_mask(SINGLELABEL, y)
    z, t = logits[keep], y[keep]
    if not len(t):
        return 1.0

    def nll(log_t: float) -> float:
        p = probabilities(SINGLELABEL, z, math.exp(log_t))
        return float(-np.mean(np.log(np.clip(p[np.arange(len(t)), t], 1e-12, None))))

    return float(math.exp(minimize_scalar(nll, bounds=(math.log(1e-3), math.log(100.0)), method="bounded").x))


def expected_calibration_error(y: np.ndarray, probs: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """Top-label ECE: ``sum_b |B_b|/n * |acc(B_b) - conf(B_b)|`` over ``n_bins`` equal-width
    confidence bins. ``y (n,)`` int (< 0 ignored), ``probs (n, K)``; NaN without a labelled row."""
    keep = labelled_mask(SINGLELABEL, y)
    y, probs = y[keep], probs[keep]
    if not len(y):
        return float("nan")
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            ece += m.mean() * abs((pred[m] == y[m]).mean() - conf[m].mean())
    return float(ece)
