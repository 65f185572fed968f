"""The fold maker: grouped, stratified and random k folds, as one fold index per item.

Every cross-validation in eno takes its folds from here:

* ``group_folds``: no group on both sides of a fold. With ``strata``: scikit-learn
  ``StratifiedGroupKFold(shuffle=True, random_state=seed)``; without, and ``seed=None``:
  scikit-learn ``GroupKFold`` (deterministic); without, and an int ``seed``: the largest group
  first into the fold with the fewest items, equal-sized groups in a seeded order (the greedy
  assignment ``GroupKFold`` makes, with seeded tie-breaking), so folds are balanced in items.
* ``random_folds``: no grouping: scikit-learn ``StratifiedKFold(shuffle=True, random_state=seed)``
  with ``strata``, ``KFold(shuffle=True, random_state=seed)`` without.
* ``repeated_folds``: ``n_repeats`` of either, repeat ``r`` seeded ``seed + r`` (so repeat 0 is the
  plain call: ``RepeatedStratifiedKFold``'s protocol with explicit per-repeat seeds).
* ``fold_pairs``: ``(train, test)`` index pairs of a fold index; ``ALWAYS_TRAIN`` items are on
  every training side, ``SET_ASIDE`` items on no side (a protocol's own held-out test set).

Multi-label grouped stratification (the dataset's splits and ``dataset.split.k_folds``) is
``eno_hf.data.splits.assign_folds`` (iterative stratification), a different algorithm.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence

import numpy as np

__all__ = ["ALWAYS_TRAIN", "SET_ASIDE", "fold_pairs", "group_folds", "random_folds", "repeated_folds"]

ALWAYS_TRAIN = -1
"""Fold index of an item that is never held out (on every fold's training side)."""
SET_ASIDE = -2
"""Fold index of an item on no side of any fold (a protocol's separate test set)."""


def _strata(strata: Sequence[int] | np.ndarray) -> np.ndarray:
    """Integer class ids, negative (unlabelled) ones as class 0."""
    y = np.asarray(strata)
    return np.where(y < 0, 0, y) if y.dtype.kind in "iu" else y


def _balanced_group_folds(groups: Sequence[Hashable], n_folds: int, seed: int) -> np.ndarray:
    """Largest group first into the fold with the fewest items; equal sizes in a seeded order
    (groups ordered by ``str`` first, then a ``default_rng([seed, 7])`` permutation breaks ties)."""
    members: dict[Hashable, list[int]] = defaultdict(list)
    for i, k in enumerate(groups):
        members[k].append(i)
    names = sorted(members, key=str)
    tie = np.random.default_rng([seed, 7]).permutation(len(names))
    order = sorted(range(len(names)), key=lambda i: (-len(members[names[i]]), tie[i]))
    sizes = [0] * n_folds
    out = np.empty(len(groups), dtype=np.int64)
    for i in order:
        f = int(np.argmin(sizes))
        out[members[names[i]]] = f
        sizes[f] += len(members[names[i]])
    return out


def group_folds(groups: Sequence[Hashable] | np.ndarray, n_folds: int, seed: int | None = 0,
                strata: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """``(n,)`` int64 fold index (``0..n_folds-1``) of every item; all items of a group share a fold.

    Args:
        groups: ``n`` hashable group keys (artist, performer, passage, source recording).
        n_folds: folds (``k``); at most the number of groups.
        seed: the shuffle seed; ``None`` (only without ``strata``) = scikit-learn ``GroupKFold``.
        strata: ``(n,)`` class ids to stratify by (negative = class 0), or None.

    Raises:
        ValueError: fewer than 2 folds, or fewer groups than ``n_folds``.
    """
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    n_groups = len(set(groups.tolist() if isinstance(groups, np.ndarray) else groups))
    if n_folds < 2 or n_groups < n_folds:
        raise ValueError(f"{n_groups} groups for {n_folds} folds (need 2 <= folds <= groups)")
    if strata is None and seed is not None:
        return _balanced_group_folds(list(groups), n_folds, seed)
    out = np.full(len(groups), -1, dtype=np.int64)
    x = np.zeros(len(groups))
    if strata is None:
        splits = GroupKFold(n_splits=n_folds).split(x, groups=np.asarray(groups))
    else:
        splits = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(
            x, _strata(strata), np.asarray(groups))
    for f, (_, test) in enumerate(splits):
        out[test] = f
    return out


def random_folds(n: int, n_folds: int, seed: int = 0, strata: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """``(n,)`` int64 fold index of ``n`` items with no grouping: scikit-learn
    ``StratifiedKFold(n_folds, shuffle=True, random_state=seed)`` by ``strata`` (negative = class 0),
    ``KFold(n_folds, shuffle=True, random_state=seed)`` without.

    Raises:
        ValueError: fewer items than folds, or ``len(strata) != n``.
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    if strata is not None and len(strata) != n:
        raise ValueError(f"{len(strata)} strata for {n} items")
    if n < n_folds:
        raise ValueError(f"{n} items for {n_folds} folds")
    out = np.full(n, -1, dtype=np.int64)
    x = np.zeros(n)
    cv = (KFold(n_splits=n_folds, shuffle=True, random_state=seed) if strata is None
          else StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed))
    for f, (_, test) in enumerate(cv.split(x, None if strata is None else _strata(strata))):
        out[test] = f
    return out


def repeated_folds(make: Callable[[int], np.ndarray], n_repeats: int, seed: int = 0) -> np.ndarray:
    """``(n_repeats, n)`` int64: row ``r`` is ``make(seed + r)`` (e.g.
    ``lambda s: random_folds(n, 10, s, strata)``)."""
    return np.stack([make(seed + r) for r in range(n_repeats)]).astype(np.int64)


def fold_pairs(fold_of: Sequence[int] | np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(train, test)`` int64 index pairs, one per fold ``0..max``: ``test`` = the items of the fold,
    ``train`` = every other item but the ``SET_ASIDE`` ones (``ALWAYS_TRAIN`` items are in every
    ``train``)."""
    a = np.asarray(fold_of, dtype=np.int64)
    idx = np.arange(len(a))
    return [(idx[(a != f) & (a != SET_ASIDE)], idx[a == f]) for f in range(int(a.max(initial=-1)) + 1)]
