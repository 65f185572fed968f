"""Outer and inner folds of the cross-validation: per protocol, stratified, seeded, saved.

Outer folds: ``n_repeats`` x ``n_folds`` folds over every recording of the dataset, stratified by
the single-label head, repeat ``r`` seeded ``seed + r`` (``eno_hf.data.folds``), by protocol:

* ``artist`` (default): artist-grouped, scikit-learn ``StratifiedGroupKFold(shuffle=True)``: no
  artist on both sides, the honest figure for unseen artists.
* ``random``: no grouping, scikit-learn ``StratifiedKFold(shuffle=True)`` over the clips: the
  protocol of Panda, Malheiro & Paiva, "Novel Audio Features for Music Emotion Recognition" (IEEE
  Trans. Affective Computing, 2018) on 4Q: 20 repetitions of stratified 10-fold CV
  (``--protocol random --folds 10 --repeats 20``). Optimistic where an artist has several clips.

Saved to ``folds_file(...)`` (the protocol in the name, so protocols never share a file) and reused
while the recording ids agree. Inner folds (model selection inside an outer training part):
scikit-learn ``GroupKFold`` by the protocol's groups (artists; each clip its own group under
``random``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from eno_hf.data.folds import fold_pairs, group_folds, random_folds, repeated_folds

log = logging.getLogger(__name__)

PROTOCOLS = ("artist", "random")
"""Outer-fold protocols of ``eno cv``: artist-grouped (default) or random (no grouping)."""


def make_folds(ids: Sequence[str], groups: Sequence[str], strata: np.ndarray, n_folds: int = 5,
               n_repeats: int = 3, seed: int = 0, protocol: str = "artist") -> np.ndarray:
    """``(n_repeats, n)`` int fold index of every recording, stratified by ``strata``, repeat ``r``
    seeded ``seed + r``: ``artist`` = grouped by ``groups`` (scikit-learn
    ``StratifiedGroupKFold(n_folds, shuffle=True)``), ``random`` = no grouping (``StratifiedKFold(n_folds,
    shuffle=True)``; ``RepeatedStratifiedKFold``'s protocol).

    Args:
        ids: ``n`` recording ids. groups: ``n`` artists. strata: ``(n,)`` int class ids (< 0: class 0).
        protocol: one of ``PROTOCOLS``.

    Raises:
        ValueError: unknown protocol; fewer groups (``artist``) or recordings (``random``) than folds.
    """
    if protocol == "artist":
        return repeated_folds(lambda s: group_folds(list(groups), n_folds, s, strata=strata), n_repeats, seed)
    if protocol == "random":
        return repeated_folds(lambda s: random_folds(len(ids), n_folds, s, strata=strata), n_repeats, seed)
    raise ValueError(f"unknown CV protocol {protocol!r} (one of {PROTOCOLS})")


def folds_file(n_folds: int, n_repeats: int, seed: int, protocol: str = "artist") -> str:
    """The name saved folds go by: ``folds-k{n_folds}-r{n_repeats}-s{seed}.json`` for ``artist``
    (the name it always had), ``folds-{protocol}-k...`` for any other protocol."""
    return ("folds-" if protocol == "artist" else f"folds-{protocol}-") + f"k{n_folds}-r{n_repeats}-s{seed}.json"


def load_or_make_folds(path: str | Path, ids: Sequence[str], groups: Sequence[str], strata: np.ndarray,
                       n_folds: int, n_repeats: int, seed: int, protocol: str = "artist") -> np.ndarray:
    """Folds from ``path`` if it holds the same ids, folds, repeats, seed and protocol; else made
    (``make_folds``) and written there (JSON: ``protocol, n_folds, n_repeats, seed, ids, groups, folds``;
    a file without ``protocol`` is ``artist``).

    Returns:
        ``(n_repeats, n)`` int64.
    """
    path = Path(path)
    if path.is_file():
        saved = json.loads(path.read_text())
        if (saved.get("ids") == list(ids) and saved.get("n_folds") == n_folds and saved.get("n_repeats") == n_repeats
                and saved.get("seed") == seed and saved.get("protocol", "artist") == protocol):
            return np.asarray(saved["folds"], dtype=np.int64)
        log.warning("%s: saved folds do not match (ids/folds/repeats/seed/protocol); making new ones", path)
    folds = make_folds(ids, groups, strata, n_folds, n_repeats, seed, protocol)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"protocol": protocol, "n_folds": n_folds, "n_repeats": n_repeats, "seed": seed,
                                "ids": list(ids), "groups": list(map(str, groups)), "folds": folds.tolist()}))
    return folds


def inner_folds(groups: np.ndarray, n_inner: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``min(n_inner, n_groups)`` grouped ``(train, validation)`` position pairs over ``groups``
    (scikit-learn ``GroupKFold``, deterministic)."""
    n_inner = min(n_inner, len(set(groups.tolist())))
    return fold_pairs(group_folds(groups, n_inner, seed=None))
