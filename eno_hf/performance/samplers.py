"""Deterministic, seeded pair/batch samplers built from metadata columns.

* ``group_batches``: batches of ``groups_per_batch`` groups x ``per_group`` items (e.g. passages x
  performers): serves T1 (ratings + within-group ranking pairs) and T3 (InfoNCE positives = same
  passage, negatives = other passages) at once.
* ``ordered_group_batches``: whole groups (e.g. one performance and its degraded versions) for T2.
* ``paired_batches``: ``(clean, augmented)`` index pairs for T4.
* ``grouped_folds``: balanced grouped folds by a metadata column (piece or performer), so no
  ``segment_id``, and no value of the column, is on both sides (``eno_hf.data.folds.group_folds``).

Every sampler takes a ``seed`` and an ``epoch``: the same (seed, epoch) always gives the same
batches.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence

import numpy as np

from eno_hf.data.folds import fold_pairs, group_folds

__all__ = ["group_batches", "grouped_folds", "ordered_group_batches", "paired_batches"]


def _groups(keys: Sequence[Hashable]) -> dict[Hashable, list[int]]:
    g: dict[Hashable, list[int]] = defaultdict(list)
    for i, k in enumerate(keys):
        g[k].append(i)
    return dict(sorted(g.items(), key=lambda kv: str(kv[0])))


def group_batches(keys: Sequence[Hashable], groups_per_batch: int = 8, per_group: int = 4, seed: int = 0,
                  epoch: int = 0) -> list[list[int]]:
    """One epoch of batches: every item appears once; groups are visited in a seeded order,
    ``per_group`` of their items at a time (a group's items are spread over several batches when
    it has more). Singleton groups fill batches too (they add no pairs)."""
    rng = np.random.default_rng([seed, epoch])
    chunks: list[list[int]] = []
    for _, idx in _groups(keys).items():
        idx = list(rng.permutation(idx))
        chunks.extend(idx[i: i + per_group] for i in range(0, len(idx), per_group))
    order = rng.permutation(len(chunks))
    batches, cur, n_groups = [], [], 0
    for j in order:
        cur.extend(int(i) for i in chunks[j])
        n_groups += 1
        if n_groups == groups_per_batch:
            batches.append(cur)
            cur, n_groups = [], 0
    if cur:
        batches.append(cur)
    return batches


def ordered_group_batches(keys: Sequence[Hashable], groups_per_batch: int = 4, seed: int = 0, epoch: int = 0) -> list[list[int]]:
    """Batches of whole groups (all items of ``groups_per_batch`` groups), seeded order."""
    rng = np.random.default_rng([seed, epoch, 2])
    groups = list(_groups(keys).values())
    order = rng.permutation(len(groups))
    return [[int(i) for j in order[k: k + groups_per_batch] for i in groups[j]]
            for k in range(0, len(order), groups_per_batch)]


def paired_batches(pairs: Sequence[tuple[int, int]], pairs_per_batch: int = 16, seed: int = 0, epoch: int = 0) -> list[list[int]]:
    """Batches ``[clean_1..clean_k, aug_1..aug_k]`` of ``(clean, augmented)`` index pairs."""
    rng = np.random.default_rng([seed, epoch, 4])
    order = rng.permutation(len(pairs))
    out = []
    for k in range(0, len(order), pairs_per_batch):
        chosen = [pairs[j] for j in order[k: k + pairs_per_batch]]
        out.append([int(a) for a, _ in chosen] + [int(b) for _, b in chosen])
    return out


def grouped_folds(groups: Sequence[Hashable], n_folds: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(train_idx, test_idx)`` folds with every group wholly on one side
    (``eno_hf.data.folds.group_folds`` with an int seed: largest group first into the fold with the
    fewest items, seeded tie order, so folds are balanced). ``n_folds`` is capped at the number of
    groups.

    Raises:
        ValueError: fewer than 2 groups.
    """
    n_groups = len(set(groups))
    if n_groups < 2:
        raise ValueError(f"need at least 2 groups for grouped folds, got {n_groups}")
    return fold_pairs(group_folds(groups, min(n_folds, n_groups), seed))
