"""Fixtures of the cross-validation package tests: a synthetic recording table."""

from __future__ import annotations

import numpy as np
import pytest

from eno_hf.evaluation.cv import CVData
from eno_hf.models.heads import HeadSpec


def synthetic_data(n: int = 160, n_groups: int = 40, signal: float = 2.0, seed: int = 0) -> CVData:
    """``n`` recordings of ``n_groups`` artists: a 4-class quadrant, 6 tags (tag 0 = quadrant 0), an
    informative block ``good`` (one-hot quadrant + tags times ``signal``, plus noise) and a ``noise`` block."""
    rng = np.random.default_rng(seed)
    groups = np.repeat([f"artist{i:02d}" for i in range(n_groups)], n // n_groups)
    quadrant = rng.integers(0, 4, n)
    tags = (rng.random((n, 6)) < 0.3).astype(np.int64)
    tags[:, 0] = (quadrant == 0).astype(np.int64)  # one tag follows the quadrant
    informative = np.concatenate([np.eye(4)[quadrant], tags], axis=1) * signal
    X = informative + rng.standard_normal((n, 10))
    noise = rng.standard_normal((n, 10))
    heads = [HeadSpec("quadrant", "singlelabel", ("q1", "q2", "q3", "q4")),
             HeadSpec("descriptors", "multilabel", tuple(f"t{i}" for i in range(6)))]
    return CVData(np.asarray([f"r{i:03d}" for i in range(n)]), groups, heads,
                  {"quadrant": quadrant, "descriptors": tags}, {"good": X, "noise": noise})


@pytest.fixture()
def make_cv_data():
    """``synthetic_data(n, n_groups, signal, seed)``."""
    return synthetic_data


@pytest.fixture()
def cv_data() -> CVData:
    """``synthetic_data()`` (160 recordings, 40 artists)."""
    return synthetic_data()
