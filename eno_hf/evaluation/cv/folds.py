"""Outer and inner folds of the cross-validation: artist-grouped, stratified, seeded, saved.

Outer folds: ``n_repeats`` x ``n_folds`` artist-grouped folds over every recording of the dataset,
stratified by the single-label head (scikit-learn ``StratifiedGroupKFold(shuffle=True,
random_state=seed + repeat)``), written to ``folds-k{k}-r{r}-s{seed}.json`` and reused while the
recording ids agree. Inner folds (model selection inside an outer training part): scikit-learn
``GroupKFold`` by artist.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def make_folds(ids: Sequence[str], groups: Sequence[str], strata: np.ndarray, n_folds: int = 5,
               n_repeats: int = 3, seed: int = 0) -> np.ndarray:
    """``(n_repeats, n)`` int fold index of every recording: artist-grouped, stratified by ``strata``
    (scikit-learn ``StratifiedGroupKFold(n_folds, shuffle=True, random_state=seed + repeat)``).

    Args:
        ids: ``n`` recording ids. groups: ``n`` artists. strata: ``(n,)`` int class ids (< 0: class 0).

    Raises:
        ValueError: fewer groups than folds.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    groups = np.asarray(groups)
    if len(set(groups.tolist())) < n_folds:
        raise ValueError(f"{len(set(groups.tolist()))} groups for {n_folds} folds")
    out = np.full((n_repeats, len(ids)), -1, dtype=np.int64)
    y = np.where(np.asarray(strata) < 0, 0, strata)
    for r in range(n_repeats):
        cv = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed + r)
        for f, (_, test) in enumerate(cv.split(np.zeros(len(ids)), y, groups)):
            out[r, test] = f
    return out


def folds_file(n_folds: int, n_repeats: int, seed: int) -> str:
    """``folds-k{n_folds}-r{n_repeats}-s{seed}.json``: the name saved folds go by."""
    return f"folds-k{n_folds}-r{n_repeats}-s{seed}.json"


def load_or_make_folds(path: str | Path, ids: Sequence[str], groups: Sequence[str], strata: np.ndarray,
                       n_folds: int, n_repeats: int, seed: int) -> np.ndarray:
    """Folds from ``path`` if it holds the same ids, folds, repeats and seed; else made
    (``make_folds``) and written there (JSON: ``n_folds, n_repeats, seed, ids, groups, folds``).

    Returns:
        ``(n_repeats, n)`` int64.
    """
    path = Path(path)
    if path.is_file():
        saved = json.loads(path.read_text())
        if (saved.get("ids") == list(ids) and saved.get("n_folds") == n_folds
                and saved.get("n_repeats") == n_repeats and saved.get("seed") == seed):
            return np.asarray(saved["folds"], dtype=np.int64)
        log.warning("%s: saved folds do not match (ids/folds/repeats/seed); making new ones", path)
    folds = make_folds(ids, groups, strata, n_folds, n_repeats, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"n_folds": n_folds, "n_repeats": n_repeats, "seed": seed, "ids": list(ids),
                                "groups": list(map(str, groups)), "folds": folds.tolist()}))
    return folds


def inner_folds(groups: np.ndarray, n_inner: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``min(n_inner, n_groups)`` artist-grouped ``(train, validation)`` position pairs over ``groups``
    (scikit-learn ``GroupKFold``, deterministic)."""
    from sklearn.model_selection import GroupKFold

    n_inner = min(n_inner, len(set(groups.tolist())))
    return list(GroupKFold(n_splits=n_inner).split(np.zeros(len(groups)), groups=groups))
