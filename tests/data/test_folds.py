"""data.folds, the fold maker: the scikit-learn splitters it stands for give the same folds; grouped
folds keep groups whole; fold pairs leave set-aside items out and keep always-train items in."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold

from eno_hf.data.folds import ALWAYS_TRAIN, SET_ASIDE, fold_pairs, group_folds, random_folds, repeated_folds


def _example(seed: int = 0, n: int = 90) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return np.array([f"g{i:02d}" for i in rng.integers(0, 20, n)]), rng.integers(0, 3, n)


def _as_pairs(splits) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(np.asarray(a), np.asarray(b)) for a, b in splits]


def _same(a: list[tuple[np.ndarray, np.ndarray]], b: list[tuple[np.ndarray, np.ndarray]]) -> None:
    assert len(a) == len(b)
    for (tr1, te1), (tr2, te2) in zip(a, b):
        np.testing.assert_array_equal(tr1, tr2)
        np.testing.assert_array_equal(te1, te2)


@pytest.mark.parametrize("seed", [0, 3])
def test_the_sklearn_splitters_give_the_same_folds(seed: int) -> None:
    groups, y = _example(seed)
    x = np.zeros(len(y))
    _same(fold_pairs(group_folds(groups, 4, seed, strata=y)),
          _as_pairs(StratifiedGroupKFold(4, shuffle=True, random_state=seed).split(x, y, groups)))
    _same(fold_pairs(group_folds(groups, 4, None)), _as_pairs(GroupKFold(4).split(x, groups=groups)))
    _same(fold_pairs(random_folds(len(y), 5, seed, strata=y)),
          _as_pairs(StratifiedKFold(5, shuffle=True, random_state=seed).split(x, y)))
    _same(fold_pairs(random_folds(len(y), 5, seed)), _as_pairs(KFold(5, shuffle=True, random_state=seed).split(x)))


def test_balanced_group_folds_keep_groups_whole_and_folds_even() -> None:
    groups, _ = _example(1)
    fold_of = group_folds(groups, 4, seed=2)
    for g in set(groups):
        assert len(set(fold_of[groups == g].tolist())) == 1
    sizes = np.bincount(fold_of)
    largest = max(int((groups == g).sum()) for g in set(groups))
    assert len(sizes) == 4 and sizes.max() - sizes.min() <= largest
    np.testing.assert_array_equal(fold_of, group_folds(list(groups), 4, seed=2))  # list or array alike
    assert any(not np.array_equal(fold_of, group_folds(groups, 4, seed=s)) for s in range(3, 8))  # ties seeded
    with pytest.raises(ValueError, match="groups for 5 folds"):
        group_folds(["a", "a", "b", "c"], 5)


def test_repeated_folds_seed_each_repeat() -> None:
    _, y = _example()
    rep = repeated_folds(lambda s: random_folds(len(y), 3, s, strata=y), 4, seed=10)
    assert rep.shape == (4, len(y)) and rep.dtype == np.int64
    for r in range(4):
        np.testing.assert_array_equal(rep[r], random_folds(len(y), 3, 10 + r, strata=y))


def test_fold_pairs_keep_set_aside_items_out_and_always_train_items_in() -> None:
    fold_of = np.array([0, 1, ALWAYS_TRAIN, SET_ASIDE, 1, 0, ALWAYS_TRAIN])
    pairs = fold_pairs(fold_of)
    assert [te.tolist() for _, te in pairs] == [[0, 5], [1, 4]]
    assert [tr.tolist() for tr, _ in pairs] == [[1, 2, 4, 6], [0, 2, 5, 6]]
    assert fold_pairs(np.array([SET_ASIDE, ALWAYS_TRAIN])) == []
