"""Grouped multi-label stratified splits and folds (real 4Q labels + generated matrices)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from eno_hf.config import SplitConfig, load_config
from eno_hf.data.labels import clean_labels, label_matrix
from eno_hf.data.sources import load_recordings
from eno_hf.data.splits import assign_folds, assign_splits, group_labels

FOURQ_YAML = Path(__file__).resolve().parents[2] / "configs" / "datasets" / "4q.yaml"


@pytest.fixture(scope="module")
def fourq_labels(fourq_dir: Path):
    ds = load_config(FOURQ_YAML).dataset
    res = clean_labels(load_recordings(ds.source).recordings, ds.labels)
    return [r.group for r in res.recordings], label_matrix(res.recordings, res.vocab), res


def _group_split(groups, splits) -> dict:
    seen: dict = {}
    for g, s in zip(groups, splits):
        if g is not None:
            seen.setdefault(g, set()).add(s)
    return seen


def test_fourq_split_grouped_sized_and_covering(fourq_labels) -> None:
    groups, y, res = fourq_labels
    splits = assign_splits(groups, y, SplitConfig())
    assert len(splits) == 360
    assert all(len(s) == 1 for s in _group_split(groups, splits).values())  # artist-disjoint
    sizes = Counter(splits)
    assert abs(sizes["train"] / 360 - 0.8) < 0.05
    assert abs(sizes["validation"] / 360 - 0.1) < 0.04
    assert abs(sizes["test"] / 360 - 0.1) < 0.04
    s = np.array(splits)
    assert (y[s == "train"].sum(axis=0) > 0).all()  # every label seen in training
    quadrant = [r.singlelabel["quadrant"] for r in res.recordings]
    for name in ("train", "validation", "test"):
        assert {q for q, sp in zip(quadrant, splits) if sp == name} == {"q1", "q2", "q3", "q4"}
    # labels with >= 10 examples reach both evaluation splits most of the time
    frequent = y.sum(axis=0) >= 20
    assert (y[s == "test"][:, frequent].sum(axis=0) > 0).mean() > 0.9
    assert (y[s == "validation"][:, frequent].sum(axis=0) > 0).mean() > 0.9


def test_fourq_split_seeded(fourq_labels) -> None:
    groups, y, _ = fourq_labels
    a = assign_splits(groups, y, SplitConfig(seed=1))
    assert a == assign_splits(groups, y, SplitConfig(seed=1))
    assert a != assign_splits(groups, y, SplitConfig(seed=2))


def test_fourq_folds(fourq_labels) -> None:
    groups, y, _ = fourq_labels
    folds = assign_folds(groups, y, k=5, seed=0)
    assert set(folds) == {0, 1, 2, 3, 4}
    assert all(len(s) == 1 for s in _group_split(groups, folds).values())
    counts = Counter(folds)
    assert min(counts.values()) >= 360 / 5 * 0.6 and max(counts.values()) <= 360 / 5 * 1.4


def test_groups_never_cross_and_none_is_own_group() -> None:
    rng = np.random.default_rng(0)
    groups = [f"g{i // 3}" for i in range(120)] + [None] * 30
    y = (rng.random((150, 6)) < 0.3).astype(np.uint8)
    splits = assign_splits(groups, y, SplitConfig(train=0.6, validation=0.2, test=0.2, seed=3))
    assert all(len(s) == 1 for s in _group_split(groups, splits).values())
    assert set(splits) == {"train", "validation", "test"}
    keys, agg, member = group_labels(groups, y)
    assert len(keys) == 40 + 30 and agg.shape == (70, 6) and agg.dtype == bool
    assert (agg[member[0]] == y[:3].any(axis=0)).all()


def test_single_column_and_zero_fractions() -> None:
    y = np.eye(2, dtype=np.uint8)[np.arange(40) % 2][:, :1]  # one label column
    groups = [str(i) for i in range(40)]
    splits = assign_splits(groups, y, SplitConfig(train=0.5, validation=0.0, test=0.5))
    assert Counter(splits) == {"train": 20, "test": 20}
    assert set(assign_splits(groups, y, SplitConfig(train=1.0, validation=0, test=0))) == {"train"}
    unlabelled = assign_splits(groups, np.zeros((40, 0)), SplitConfig())  # no label columns
    assert Counter(unlabelled) == {"train": 32, "validation": 4, "test": 4}


def test_tiny_input_fallback_and_errors() -> None:
    y = np.ones((5, 2), dtype=np.uint8)
    with pytest.warns(UserWarning, match="only 4 groups"):
        splits = assign_splits(["a", "a", "b", "c", "d"], y, SplitConfig())
    assert set(splits) == {"train", "validation", "test"} and splits[0] == splits[1]
    with pytest.raises(ValueError, match="cannot fill 3 splits"):
        assign_splits(["a", "b"], y[:2], SplitConfig())
    with pytest.raises(ValueError, match="sum to 1"):
        assign_splits(["a"] * 5, y, SplitConfig(train=0.9, validation=0.2, test=0.1))
    with pytest.raises(ValueError, match="rows"):
        assign_splits(["a", "b"], y, SplitConfig())
    with pytest.raises(ValueError, match="cannot fill 5 folds"):
        assign_folds(["a", "b", "c"], y[:3], k=5)
    with pytest.raises(ValueError, match="k must be"):
        assign_folds(["a", "b", "c"], y[:3], k=1)
    assert assign_splits([], np.zeros((0, 2)), SplitConfig()) == []


def test_small_split_with_many_rare_labels_fills_every_split() -> None:
    """Regression: 21 groups x 126 rare labels left validation/test empty before rebalancing."""
    from eno_hf.config import SplitConfig
    from eno_hf.data.splits import assign_splits

    rng = np.random.RandomState(0)
    n = 24
    y = (rng.rand(n, 126) < 0.05).astype(int)
    groups = [f"artist{i % 21}" for i in range(n)]
    names = assign_splits(groups, y, SplitConfig())
    counts = {s: len({g for g, nm in zip(groups, names) if nm == s}) for s in ("train", "validation", "test")}
    assert counts["validation"] >= 2 and counts["test"] >= 2, counts
    for g in set(groups):  # still grouped
        assert len({nm for gg, nm in zip(groups, names) if gg == g}) == 1
