"""Grouped, multi-label stratified train/validation/test splits and k folds.

Algorithm: iterative stratification (Sechidis, Tsoumakas & Vlahavas, "On the Stratification of
Multi-Label Data", ECML PKDD 2011, LNCS 6913), applied to *groups*: each group's label row is the
OR of its members' rows, groups are shuffled with the seed, stratified into splits with the
requested fractions, and every member inherits its group's split. So no group (artist, album,
source recording) crosses splits, and each label is spread over splits ≈ in proportion.

``iterative_stratification`` re-implements the routine of the ``iterative-stratification`` package
(``iterstrat.ml_stratifiers.IterativeStratification``, behind its
``MultilabelStratifiedShuffleSplit``/``KFold``) over a sparse label matrix and reproduces its
choices exactly: the same label and fold tie-breaking, the same ``RandomState.choice`` calls in the
same order, the same float arithmetic on the desired counts, the same all-zero-rows tail. So splits
built with the package come out identical. The package's cost is O(n_labels² · n_groups) (it
re-sums the whole remaining label matrix for every label); this one keeps per-label remaining
counts incrementally and costs O(nnz + n_labels² + n_groups · k), which takes 300k groups with
1,500 labels from hours to seconds.

Fractions are met in number of groups; with mostly small groups this is ≈ the sample fractions.
With fewer than ``MIN_GROUPS_STRATIFIED`` groups, stratification is meaningless: groups are
shuffled with the seed and dealt out by the fractions (at least one group per non-empty split),
and a ``UserWarning`` says so.

Label matrices may be dense arrays or ``scipy.sparse`` matrices (``label_matrix`` gives CSR); any
non-zero entry counts as "has the label".
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from eno_hf.config import SplitConfig
from eno_hf.errors import NoUsableInput

__all__ = ["SPLIT_NAMES", "MIN_GROUPS_STRATIFIED", "group_labels", "assign_splits", "assign_folds",
           "iterative_stratification", "TooFewGroups"]


class TooFewGroups(NoUsableInput):
    """Fewer groups (artists, albums, recordings) than the splits or folds asked for: each needs
    one group at least. A ``ValueError``; the CLI prints it on one line and exits 2."""


def _too_few(dataset: str | None, n_groups: int, what: str, hint: str) -> TooFewGroups:
    where = f"dataset {dataset!r}: " if dataset else ""
    return TooFewGroups(f"{where}{n_groups} group(s) of usable recordings cannot fill {what} "
                        f"(one group at least each); {hint}")

SPLIT_NAMES = ("train", "validation", "test")
MIN_GROUPS_STRATIFIED = 10


def _as_csr(label_matrix: np.ndarray | sp.spmatrix | sp.sparray) -> sp.csr_matrix:
    """``(n, n_labels)`` CSR of the non-zero entries (explicit zeros removed), any input dtype."""
    if sp.issparse(label_matrix):
        if label_matrix.ndim != 2:
            raise ValueError("label_matrix must be 2-D (n, n_labels), got shape "
                             f"{label_matrix.shape}")
        y = sp.csr_matrix(label_matrix)
        if not y.has_canonical_format or not y.data.all():
            y = y.copy()  # never canonicalize the caller's arrays in place
            y.sum_duplicates()
            y.eliminate_zeros()
        return y
    y = np.asarray(label_matrix)
    if y.ndim != 2:
        raise ValueError(f"label_matrix must be 2-D (n, n_labels), got shape {y.shape}")
    return sp.csr_matrix(y != 0)


def _group_index(groups: Sequence[str | None]) -> tuple[list[str], np.ndarray]:
    """Group keys in first-seen order and each sample's group index (None = own group).

    Same result as numbering ``g if g is not None else f"\\x00row{i}"`` in a dict by first sight,
    vectorized with ``pandas.factorize`` (first-seen order) for millions of keys.
    """
    n = len(groups)
    if n == 0:
        return [], np.zeros(0, dtype=np.int64)
    own = np.fromiter((g is None for g in groups), dtype=bool, count=n)
    named_rows = np.flatnonzero(~own)
    codes, uniques = pd.factorize(np.fromiter((groups[i] for i in named_rows.tolist()),
                                              dtype=object, count=len(named_rows)),
                                  use_na_sentinel=False)
    # first row of every named group (codes are numbered in first-seen order)
    first_row = np.full(len(uniques), n, dtype=np.int64)
    np.minimum.at(first_row, codes, named_rows)
    opens = own.copy()  # rows that open a new group: own-group rows and first sightings
    opens[first_row] = True
    new_id = np.cumsum(opens) - 1
    member = np.empty(n, dtype=np.int64)
    member[own] = new_id[own]
    member[named_rows] = new_id[first_row][codes]
    keys: list = [None] * int(opens.sum())
    for i, gid in zip(np.flatnonzero(own).tolist(), new_id[own].tolist()):
        keys[gid] = f"\x00row{i}"
    for key, gid in zip(uniques.tolist(), new_id[first_row].tolist()):
        keys[gid] = key
    return keys, member


def group_labels(groups: Sequence[str | None], label_matrix: np.ndarray | sp.spmatrix
                 ) -> tuple[list[str], sp.csr_matrix, np.ndarray]:
    """Aggregate sample labels per group (logical OR), without a dense matrix.

    Args:
        groups: n group keys; None means the sample is its own group.
        label_matrix: ``(n, n_labels)`` 0/1 array or ``scipy.sparse`` matrix (multi-hot;
            single-label tasks as one-hot); any non-zero counts as 1.

    Returns:
        (unique group keys in first-seen order (own-group samples as ``"\\x00row<i>"``),
        ``(n_groups, n_labels)`` bool ``scipy.sparse.csr_matrix`` with sorted indices and no
        explicit zeros, ``(n,)`` int64 index of each sample's group).

    Raises:
        ValueError: lengths differ or the matrix is not 2-D.
    """
    y = _as_csr(label_matrix)
    if y.shape[0] != len(groups):
        raise ValueError(f"{len(groups)} groups but label_matrix has {y.shape[0]} rows")
    keys, member = _group_index(groups)
    n_groups = len(keys)
    # (n_groups, n) membership indicator times the labels; bool sparse products accumulate by OR
    indptr = np.zeros(n_groups + 1, dtype=np.int64)
    np.cumsum(np.bincount(member, minlength=n_groups), out=indptr[1:])
    members = sp.csr_matrix((np.ones(len(member), dtype=bool), np.argsort(member, kind="stable"),
                             indptr), shape=(n_groups, len(member)))
    agg = sp.csr_matrix(members @ y.astype(bool, copy=False))
    agg.sort_indices()
    return keys, agg, member


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


def iterative_stratification(labels: np.ndarray | sp.spmatrix, r: np.ndarray,
                             random_state: np.random.RandomState) -> np.ndarray:
    """Iterative stratification of multi-label samples into folds of given fractions.

    Sechidis, Tsoumakas & Vlahavas (2011), Algorithm 1, as implemented by
    ``iterstrat.ml_stratifiers.IterativeStratification(labels, r, random_state)`` (0.1.9), whose
    result and ``random_state`` consumption this reproduces exactly: repeatedly take the label with
    the fewest (but > 0) remaining samples (ties: ``random_state.choice``), give each of its
    remaining samples, in row order, to the fold with the largest desired count for that label,
    then the largest desired count overall, then ``random_state.choice``; decrement that fold's
    desired counts by 1 (float arithmetic as the package). Rows left without any label are dealt
    in row order to the fold with the largest desired count (ties: ``random_state.choice``).

    Cost O(nnz + n_labels² + n_samples · k) time, O(nnz + n_labels · k) memory, where the package
    re-sums the remaining dense matrix for every label: O(n_labels² · n_samples).

    Args:
        labels: ``(n_samples, n_labels)`` 0/1 array or ``scipy.sparse`` matrix; non-zero = has the
            label.
        r: ``(k,)`` float fractions of samples per fold (e.g. ``[0.8, 0.1, 0.1]``).
        random_state: advanced exactly as the package advances it.

    Returns:
        ``(n_samples,)`` int fold index in ``0..k-1``.

    Raises:
        ValueError: ``labels`` is not 2-D.
    """
    csr = _as_csr(labels)
    n_samples, n_labels = csr.shape
    r = np.asarray(r, dtype=float)
    k = len(r)
    csc = csr.tocsc()
    csc.sort_indices()
    col_ptr, col_rows = csc.indptr, csc.indices
    row_ptr, row_labels = csr.indptr.tolist(), csr.indices
    label_sums = np.diff(col_ptr).astype(np.int64)
    # desired number of samples per fold, and per label and fold (stored label-major: one Python
    # list of k floats per label; Python floats are IEEE doubles, so "- 1" rounds as NumPy's)
    c_folds: list[float] = (r * n_samples).tolist()
    c_folds_labels: list[list[float]] = np.outer(r, label_sums).T.tolist()
    remaining = label_sums.copy()  # samples left per label
    processed = np.zeros(n_samples, dtype=bool)
    folds = np.zeros(n_samples, dtype=int)
    n_left = n_samples
    choice = random_state.choice
    folds_range = range(k)
    while n_left > 0:
        has_left = remaining > 0
        if not has_left.any():  # only all-zero rows left
            for sample in np.flatnonzero(~processed).tolist():
                top = max(c_folds)
                cands = [f for f in folds_range if c_folds[f] == top]
                fold = cands[choice(len(cands))] if len(cands) > 1 else cands[0]
                folds[sample] = fold
                c_folds[fold] -= 1
            break
        fewest = np.flatnonzero(remaining == remaining[has_left].min())
        label = int(fewest[choice(len(fewest))]) if len(fewest) > 1 else int(fewest[0])
        samples = col_rows[col_ptr[label]:col_ptr[label + 1]]
        samples = samples[~processed[samples]]
        label_folds = c_folds_labels[label]
        for sample in samples.tolist():
            top = max(label_folds)
            cands = [f for f in folds_range if label_folds[f] == top]
            if len(cands) > 1:
                top = max(c_folds[f] for f in cands)
                cands = [f for f in cands if c_folds[f] == top]
                fold = cands[choice(len(cands))] if len(cands) > 1 else cands[0]
            else:
                fold = cands[0]
            folds[sample] = fold
            for j in row_labels[row_ptr[sample]:row_ptr[sample + 1]].tolist():
                c_folds_labels[j][fold] -= 1
            c_folds[fold] -= 1
        processed[samples] = True
        n_left -= len(samples)
        remaining -= np.bincount(csr[samples].indices, minlength=n_labels)
    return folds


def _stratify(agg: sp.csr_matrix, fractions: np.ndarray, seed: int) -> np.ndarray:
    """Split index (0..len(fractions)-1) per group row of ``agg`` (sparse, non-zero = label)."""
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
    folds = iterative_stratification(agg[perm], np.asarray(fractions, dtype=float), rng)
    fold_of[perm] = folds
    return _rebalance(fold_of, agg, _deal(n_groups, fractions), rng)


def _rebalance(fold_of: np.ndarray, agg: sp.csr_matrix, minimum: np.ndarray,
               rng: np.random.RandomState) -> np.ndarray:
    """Move groups into splits that iterative stratification left below ``minimum`` groups.

    With few groups and many rare labels, iterative stratification can leave a small split empty
    (seen: 21 groups, 126 labels, 80/10/10 → 21/0/0). Groups are taken from the split with the
    largest surplus, preferring groups with the fewest labels (least damage to stratification).
    ``agg`` is the groups' CSR label matrix without explicit zeros (labels per group = stored
    entries per row).
    """
    fold_of = fold_of.copy()
    labels_per_group = np.diff(agg.indptr)
    for _ in range(len(fold_of)):
        counts = np.bincount(fold_of, minlength=len(minimum))
        short = np.flatnonzero(counts < minimum)
        if len(short) == 0:
            break
        donor = int(np.argmax(counts - minimum))
        candidates = np.flatnonzero(fold_of == donor)
        n_labels = labels_per_group[candidates]
        best = candidates[n_labels == n_labels.min()]
        fold_of[rng.choice(best)] = short[0]
    return fold_of


def assign_splits(groups: Sequence[str | None], label_matrix: np.ndarray | sp.spmatrix,
                  cfg: SplitConfig, dataset: str | None = None) -> list[str]:
    """Grouped multi-label stratified split into ``"train"``/``"validation"``/``"test"``.

    Args:
        groups: n group keys (None = own group).
        label_matrix: ``(n, n_labels)`` 0/1 array or ``scipy.sparse`` matrix (e.g.
            ``eno_hf.data.labels.label_matrix``).
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
    names = np.array([SPLIT_NAMES[i] for i in active], dtype=object)
    return names[fold_of[member]].tolist()


def assign_folds(groups: Sequence[str | None], label_matrix: np.ndarray | sp.spmatrix, k: int,
                 seed: int = 42, dataset: str | None = None) -> list[int]:
    """Grouped multi-label stratified k-fold assignment.

    Args:
        groups: n group keys (None = own group).
        label_matrix: ``(n, n_labels)`` 0/1 array or ``scipy.sparse`` matrix.
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
    return fold_of[member].tolist()
