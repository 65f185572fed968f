"""Grouped multi-label stratified splits and folds (real 4Q labels + generated matrices)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from iterstrat.ml_stratifiers import IterativeStratification

from eno_hf.config import SplitConfig, load_config
from eno_hf.data.labels import clean_labels, label_matrix
from eno_hf.data.sources import load_recordings
from eno_hf.data.splits import (MIN_GROUPS_STRATIFIED, _deal, assign_folds, assign_splits,
                                group_labels, iterative_stratification)

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
    y = y.toarray()
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
    assert sp.issparse(agg)
    assert (agg[[member[0]]].toarray()[0] == y[:3].any(axis=0)).all()


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


# --- the sparse re-implementation reproduces iterstrat's IterativeStratification exactly ---


def _reference_group_labels(groups, y):
    """The former dict + dense ``np.logical_or.at`` aggregation."""
    keys = [g if g is not None else f"\x00row{i}" for i, g in enumerate(groups)]
    order: dict = {}
    member = np.array([order.setdefault(k, len(order)) for k in keys], dtype=np.int64)
    agg = np.zeros((len(order), y.shape[1]), dtype=bool)
    np.logical_or.at(agg, member, np.asarray(y).astype(bool))
    return list(order), agg, member


def _reference_rebalance(fold_of, agg, minimum, rng):
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


def _reference_stratify(agg: np.ndarray, fractions: np.ndarray, seed: int) -> np.ndarray:
    """The former ``_stratify``: iterstrat on the dense permuted group matrix, then rebalance."""
    rng = np.random.RandomState(seed)
    n_groups = agg.shape[0]
    perm = rng.permutation(n_groups)
    fold_of = np.empty(n_groups, dtype=np.int64)
    assert n_groups >= MIN_GROUPS_STRATIFIED
    fold_of[perm] = IterativeStratification(labels=agg[perm], r=np.asarray(fractions, dtype=float),
                                            random_state=rng)
    return _reference_rebalance(fold_of, agg, _deal(n_groups, fractions), rng)


def _reference_assign_splits(groups, y, cfg: SplitConfig) -> list[str]:
    fractions = np.array([cfg.train, cfg.validation, cfg.test], dtype=float)
    _, agg, member = _reference_group_labels(groups, y)
    active = [i for i, f in enumerate(fractions) if f > 0]
    fold_of = _reference_stratify(agg, fractions[active], cfg.seed)
    names = ["train", "validation", "test"]
    return [names[active[fold_of[g]]] for g in member]


def _random_problem(seed: int) -> np.ndarray:
    """A bool (n, n_labels) matrix with varied size, density, all-zero rows and columns, ties."""
    g = np.random.default_rng(seed)
    n, n_labels = int(g.integers(10, 301)), int(g.integers(1, 41))
    density = [0.0, 0.02, 0.1, 0.3, 0.8][seed % 5]
    y = g.random((n, n_labels)) < density
    if seed % 3 == 0:
        y[g.random(n) < 0.4] = False  # many all-zero rows
    if seed % 4 == 1:
        y[:, : n_labels // 2] = y[:, [0]]  # identical columns: label ties at every step
    return y


FRACTIONS = [np.array([0.8, 0.1, 0.1]), np.full(3, 1 / 3), np.full(5, 0.2), np.array([0.7, 0.3])]


@pytest.mark.parametrize("seed", range(120))
def test_iterative_stratification_equals_iterstrat(seed: int) -> None:
    y = _random_problem(seed)
    r = FRACTIONS[seed % len(FRACTIONS)]
    rs_ref = np.random.RandomState(seed)
    ref = IterativeStratification(y.copy(), r.copy(), rs_ref)
    ref_next = rs_ref.randint(2**31, size=4).tolist()
    for labels in (sp.csr_matrix(y), y.astype(np.uint8)):
        rs_new = np.random.RandomState(seed)
        got = iterative_stratification(labels, r.copy(), rs_new)
        assert got.tolist() == ref.tolist()
        # the generator was advanced exactly as iterstrat advances it
        assert rs_new.randint(2**31, size=4).tolist() == ref_next


@pytest.mark.parametrize("seed", range(40))
def test_assign_splits_and_folds_equal_the_iterstrat_version(seed: int) -> None:
    y = _random_problem(1000 + seed).astype(np.uint8)
    n = y.shape[0]
    g = np.random.default_rng(seed)
    groups = [None if g.random() < 0.2 else f"a{int(g.integers(0, max(n // 3, 12)))}"
              for _ in range(n)]
    n_groups = len(_reference_group_labels(groups, y)[0])
    if n_groups < MIN_GROUPS_STRATIFIED:
        pytest.skip("too few groups for stratification")
    cfg = [SplitConfig(seed=seed),
           SplitConfig(train=1 / 3, validation=1 / 3, test=1 / 3, seed=seed),
           SplitConfig(train=0.7, validation=0.0, test=0.3, seed=seed)][seed % 3]
    ref = _reference_assign_splits(groups, y, cfg)
    assert assign_splits(groups, y, cfg) == ref
    assert assign_splits(groups, sp.csr_matrix(y), cfg) == ref  # sparse input, same result
    _, agg, member = _reference_group_labels(groups, y)
    ref_folds = _reference_stratify(agg, np.full(5, 0.2), seed)[member].tolist()
    if n_groups >= 5:
        assert assign_folds(groups, y, 5, seed) == ref_folds
        assert assign_folds(groups, sp.csc_matrix(y), 5, seed) == ref_folds


def test_group_labels_equals_dict_aggregation() -> None:
    g = np.random.default_rng(5)
    n = 500
    groups = [None if g.random() < 0.3 else f"k{int(g.integers(0, 60))}" for _ in range(n)]
    y = (g.random((n, 12)) < 0.2).astype(np.uint8)
    y[3, 4] = 7  # any non-zero counts as 1
    keys, agg, member = group_labels(groups, sp.csr_matrix(y))
    ref_keys, ref_agg, ref_member = _reference_group_labels(groups, y)
    assert keys == ref_keys and member.tolist() == ref_member.tolist()
    assert agg.dtype == bool and np.array_equal(agg.toarray(), ref_agg)
    assert (agg.data == 1).all() and agg.has_canonical_format
    # an explicit zero in a sparse input is no label
    z = sp.csr_matrix((np.array([0, 1], dtype=np.uint8), np.array([0, 1]), np.array([0, 1, 2])),
                      shape=(2, 2))
    assert group_labels(["a", "b"], z)[1].toarray().tolist() == [[False, False], [False, True]]
    assert z.nnz == 2  # the caller's matrix is left alone


def test_fourq_splits_equal_the_iterstrat_version(fourq_labels) -> None:
    groups, y, _ = fourq_labels
    dense = y.toarray()
    for seed in (0, 1, 42):
        cfg = SplitConfig(seed=seed)
        assert assign_splits(groups, y, cfg) == _reference_assign_splits(groups, dense, cfg)
    _, agg, member = _reference_group_labels(groups, dense)
    ref_folds = _reference_stratify(agg, np.full(5, 0.2), 7)[member].tolist()
    assert assign_folds(groups, y, 5, 7) == ref_folds
    tv = list(range(0, 360, 2))
    sub_groups = [groups[i] for i in tv]
    _, agg, member = _reference_group_labels(sub_groups, dense[tv])
    assert (assign_folds(sub_groups, y[tv], 5, 3)
            == _reference_stratify(agg, np.full(5, 0.2), 3)[member].tolist())
