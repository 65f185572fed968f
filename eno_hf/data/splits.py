"""Grouped, multi-label stratified train/validation/test splits and k folds.

Algorithm: iterative stratification (Sechidis, Tsoumakas & Vlahavas, "On the Stratification of
Multi-Label Data", ECML PKDD 2011) as implemented by the ``iterative-stratification`` package
(``iterstrat.ml_stratifiers.IterativeStratification``, the routine behind its
``MultilabelStratifiedShuffleSplit``/``KFold``), applied to *groups*: each group's label row is the
OR of its members' rows, groups are shuffled with the seed, stratified into splits with the
requested fractions, and every member inherits its group's split. So no group (artist, album,
source recording) crosses splits, and each label is spread over splits ≈ in proportion.

Fractions are met in number of groups; with mostly small groups this is ≈ the sample fractions.
With fewer than ``MIN_GROUPS_STRATIFIED`` groups, stratification is meaningless: groups are
shuffled with the seed and dealt out by the fractions (at least one group per non-empty split),
and a ``UserWarning`` says so.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from iterstrat.ml_stratifiers import IterativeStratification

from eno_hf.config import SplitConfig
from eno_hf.errors import NoUsableInput

__all__ = ["SPLIT_NAMES", "MIN_GROUPS_STRATIFIED", "group_labels", "assign_splits", "assign_folds",
           "TooFewGroups"]


class TooFewGroups(NoUsableInput):
    """Fewer groups (artists, albums, recordings) than the splits or folds asked for: each needs
    one group at least. A ``ValueError``; the CLI prints it on one line and exits 2."""


def _too_few(dataset: str | None, n_groups: int, what: str, hint: str) -> TooFewGroups:
    where = f"dataset {dataset!r}: " if dataset else ""
    return TooFewGroups(f"{where}{n_groups} group(s) of usable recordings cannot fill {what} "
                        f"(one group at least each); {hint}")

SPLIT_NAMES = ("train", "validation", "test")
MIN_GROUPS_STRATIFIED = 10


def group_labels(groups: Sequence[str | None], label_matrix: np.ndarray
                 ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Aggregate sample labels per group (logical OR).

    Args:
        groups: n group keys; None means the sample is its own group.
        label_matrix: ``(n, n_labels)`` 0/1 array (multi-hot; single-label tasks as one-hot).

    Returns:
        (unique group keys in first-seen order, ``(n_groups, n_labels)`` bool matrix,
        ``(n,)`` int index of each sample's group).

    Raises:
        ValueError: lengths differ or the matrix is not 2-D.
    """
    y = np.asarray(label_matrix)
    if y.ndim != 2:
        raise ValueError(f"label_matrix must be 2-D (n, n_labels), got shape {y.shape}")
    if y.shape[0] != len(groups):
        raise ValueError(f"{len(groups)} groups but label_matrix has {y.shape[0]} rows")
    keys = [g if g is not None else f"\x00row{i}" for i, g in enumerate(groups)]
    order: dict[str, int] = {}
    member = np.array([order.setdefault(k, len(order)) for k in keys], dtype=np.int64)
    agg = np.zeros((len(order), y.shape[1]), dtype=bool)
    np.logical_or.at(agg, member, y.astype(bool))
    return list(order), agg, member


def _deal(n_groups: int, fractions: np.ndarray) -> np.ndarray:
    """Group counts per split by largest remainder, at least one per split."""
    raw = fractions * n_groups
    counts = np.maximum(np.floor(raw).astype(int), 1)
    while counts.sum() > n_groups:
        counts[np.argmax(counts)] -= 1
    rem = raw - np.floor(raw)
    for j in np.argsort(-rem, kind="stable"):
        if counts.sum() >= n_groups:
            break
        counts[j] += 1
    while counts.sum() < n_groups:
        counts[np.argmax(fractions)] += 1
    return counts


def _stratify(agg: np.ndarray, fractions: np.ndarray, seed: int) -> np.ndarray:
    """Split index (0..len(fractions)-1) per group row of ``agg``."""
    rng = np.random.RandomState(seed)
    n_groups = agg.shape[0]
    perm = rng.permutation(n_groups)
    fold_of = np.empty(n_groups, dtype=np.int64)
    if n_groups < MIN_GROUPS_STRATIFIED:
        warnings.warn(f"only {n_groups} groups (< {MIN_GROUPS_STRATIFIED}): splitting groups at "
                      "random by the fractions, without label stratification", stacklevel=3)
        counts = _deal(n_groups, fractions)
        fold_of[perm] = np.repeat(np.arange(len(fractions)), counts)
        return fold_of
    folds = IterativeStratification(labels=agg[perm], r=np.asarray(fractions, dtype=float),
                                    random_state=rng)
    fold_of[perm] = folds
    return _rebalance(fold_of, agg, _deal(n_groups, fractions), rng)


def _rebalance(fold_of: np.ndarray, agg: np.ndarray, minimum: np.ndarray,
               rng: np.random.RandomState) -> np.ndarray:
    """Move groups into splits that iterative stratification left below ``minimum`` groups.

    With few groups and many rare labels, IterativeStratification can leave a small split empty
    (seen: 21 groups, 126 labels, 80/10/10 → 21/0/0). Groups are taken from the split with the
    largest surplus, preferring groups with the fewest labels (least damage to stratification).
    """
    fold_of = fold_of.copy()
    for _ in range(len(fold_of)):
        counts = np.bincount(fold_of, minlength=len(minimum))
        short = np.flatnonzero(counts < minimum)
        if len(short) == 0:
            break
        donor = int(np.argmax(counts - minimum))
        candidates = np.flatnonzero(fold_of == donor)
        n_labels = agg[candidates].sum(axis=1)
        best = candidates[n_labels == n_labels.min()]
        fold_of[rng.choice(best)] = short[0]
    return fold_of


def assign_splits(groups: Sequence[str | None], label_matrix: np.ndarray,
                  cfg: SplitConfig, dataset: str | None = None) -> list[str]:
    """Grouped multi-label stratified split into ``"train"``/``"validation"``/``"test"``.

    Args:
        groups: n group keys (None = own group).
        label_matrix: ``(n, n_labels)`` 0/1 array (e.g. ``eno_hf.data.labels.label_matrix``).
        cfg: ``SplitConfig`` (fractions summing to 1, ``seed``).
        dataset: the dataset's name, for the error message.

    Returns:
        n split names; deterministic for a given seed and input order.

    Raises:
        TooFewGroups: fewer groups than splits with a non-zero fraction (names the dataset, the
            number of groups and the splits).
        ValueError: negative fractions, fractions not summing to 1, or shape mismatch.
    """
    fractions = np.array([cfg.train, cfg.validation, cfg.test], dtype=float)
    if (fractions < 0).any() or abs(fractions.sum() - 1.0) > 1e-6:
        raise ValueError(f"split fractions must be >= 0 and sum to 1, got {fractions.tolist()}")
    _, agg, member = group_labels(groups, label_matrix)
    if len(member) == 0:
        return []
    active = [i for i, f in enumerate(fractions) if f > 0]
    if len(active) == 1:
        return [SPLIT_NAMES[active[0]]] * len(member)
    if agg.shape[0] < len(active):
        names = [SPLIT_NAMES[i] for i in active]
        raise _too_few(dataset, int(agg.shape[0]), f"{len(active)} splits {names}",
                       "add recordings (or groups: dataset.source.group_column / folder_group) or "
                       "set a split's fraction to 0, e.g. --set dataset.split.test=0 with "
                       "train + validation = 1")
    fold_of = _stratify(agg, fractions[active], cfg.seed)
    names = [SPLIT_NAMES[i] for i in active]
    return [names[fold_of[g]] for g in member]


def assign_folds(groups: Sequence[str | None], label_matrix: np.ndarray, k: int,
                 seed: int = 42, dataset: str | None = None) -> list[int]:
    """Grouped multi-label stratified k-fold assignment.

    Args:
        groups: n group keys (None = own group).
        label_matrix: ``(n, n_labels)`` 0/1 array.
        k: number of folds (>= 2).
        seed: shuffling / tie-breaking seed.

    Returns:
        n fold indices in ``0..k-1``; members of a group share a fold.

    Raises:
        TooFewGroups: fewer groups than ``k`` (names ``dataset``).
        ValueError: ``k < 2`` or shape mismatch.
    """
    if k < 2:
        raise ValueError(f"k must be >= 2, got {k}")
    _, agg, member = group_labels(groups, label_matrix)
    if agg.shape[0] < k:
        raise _too_few(dataset, int(agg.shape[0]), f"{k} folds",
                       "add recordings or lower dataset.split.k_folds")
    fold_of = _stratify(agg, np.full(k, 1.0 / k), seed)
    return [int(fold_of[g]) for g in member]
