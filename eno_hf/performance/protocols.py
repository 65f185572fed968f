"""Evaluation protocols of the performance job: which performances each outer fold holds out.

Four protocols (``PerformanceConfig.protocols``), from the hardest to the easiest to generalise to:

* ``piece``: whole pieces held out (``n_folds`` balanced grouped folds by ``piece``,
  ``eno_hf.data.folds.group_folds``): unseen music, the hardest. PercePiano has 16 pieces, two of
  them (Schubert D960 mv2, mv3) 81 % of the performances, so folds are very unequal in difficulty.
* ``performer``: performers held out (grouped folds by ``performer``): unseen players; every
  passage is in the training side of every fold.
* ``composition4fold``: the dataset's own composition protocol (Kim et al., PercePiano, GitHub
  JonghoKimSNU/PercePiano, ``virtuoso/virtuoso/pyScoreParser/m2pf_dataset_compositionfold.py``):
  every performance of one *passage* (piece + bars + segment: ``PercePianoRow.passage``, the
  file name without the performer) is held out together; other passages of the same piece train.
  About 15 % of the performances (whole passages of more than one performance) are set aside as a
  test set first; the other passages go to 4 folds round-robin. ``composition4fold``.
* ``performer4fold``: the dataset's own performer protocol (``m2pf_dataset_performerfold.py``):
  performers 1-2 of the dataset's numbering are the set-aside test set, fold ``f`` holds out
  performers ``2f+3`` and ``2f+4``, every other player (and the deadpan ``Score`` renderings) is on
  every training side. ``performer4fold``.

Set-aside test performances are on no side of any fold (``eno_hf.data.folds.SET_ASIDE``); the
pooled out-of-fold figures cover only the held-out ones (``ProtocolFolds.evaluated``).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from eno_hf.data.folds import ALWAYS_TRAIN, SET_ASIDE, fold_pairs, group_folds
from eno_hf.performance.percepiano import PercePianoRow

__all__ = ["BEETHOVEN_PERFORMER_IDS", "PROTOCOLS", "ProtocolFolds", "composition4fold", "performer4fold",
           "performer_fold_id", "protocol_folds"]

PROTOCOLS = ("piece", "performer", "composition4fold", "performer4fold")
"""Protocol names, hardest first (see the module docstring)."""

BEETHOVEN_PERFORMER_IDS = (1, 2, 3, 4, 7, 11, 14, 18, 19, 22, 24, 26)
"""The Beethoven performers of PercePiano in the order that numbers them 0-11 in ``performer4fold``
(the dataset's ``BEETHOVEN_PERFORMER_IDS``)."""

COMPOSITION_SEED = 42
"""``random.seed`` of the dataset's composition-fold script."""


@dataclass(frozen=True)
class ProtocolFolds:
    """The outer folds of one protocol over ``n`` performances.

    Attributes:
        protocol: its name. fold_of: ``(n,)`` int64 fold index (``0..k-1`` held out in that fold,
            ``ALWAYS_TRAIN``, or ``SET_ASIDE``). groups: ``n`` keys of what is held out together
            (performer, piece, passage): the inner folds' grouping and the bootstrap's resampling unit.
    """

    protocol: str
    fold_of: np.ndarray
    groups: list[str]

    @property
    def folds(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(train, test)`` int64 index pairs (``eno_hf.data.folds.fold_pairs``)."""
        return fold_pairs(self.fold_of)

    @property
    def evaluated(self) -> np.ndarray:
        """Indices of the performances some fold holds out (sorted): the pooled figures' rows."""
        return np.flatnonzero(self.fold_of >= 0)

    @property
    def set_aside(self) -> np.ndarray:
        """Indices of the protocol's separate test set (empty for ``piece``/``performer``)."""
        return np.flatnonzero(self.fold_of == SET_ASIDE)


def composition4fold(segment_ids: Sequence[str], passages: Sequence[str], n_folds: int = 4,
                     test_fraction: float = 0.15, seed: int = COMPOSITION_SEED) -> np.ndarray:
    """``(n,)`` int64 fold index of the dataset's composition protocol (its
    ``m2pf_dataset_compositionfold.py``, reproduced step by step): the file names are shuffled
    (``random.Random(seed).shuffle``) and grouped by passage (first-seen order); passages drawn with
    ``random.choice`` (kept only when they hold more than one performance) are set aside
    (``SET_ASIDE``) until at least ``test_fraction`` of the performances are; the remaining passages
    go to fold ``i % n_folds`` in first-seen order.

    Differences from the script: the start order is the sorted ids (the script shuffles
    ``os.listdir`` order, which the file system decides), and the script may draw other random
    numbers between its ``random.seed(42)`` and the shuffle (its data loading), so the concrete
    split can differ from the published one; the rule and the seed are the same. Where no passage
    of more than one performance is left, the set-aside stops (the script would loop forever).

    Args:
        segment_ids: ``n`` performance ids (file names without ``.mid``). passages: ``n`` passage ids.

    Raises:
        ValueError: fewer than ``n_folds`` passages left for the folds.
    """
    order = sorted(range(len(segment_ids)), key=lambda i: segment_ids[i])
    rng = random.Random(seed)
    rng.shuffle(order)
    members: dict[str, list[int]] = defaultdict(list)
    for i in order:
        members[passages[i]].append(i)
    out = np.full(len(segment_ids), -1, dtype=np.int64)
    n_test = 0
    while n_test < test_fraction * len(segment_ids) and any(len(v) > 1 for v in members.values()):
        key = rng.choice(list(members))
        if len(members[key]) > 1:
            out[members[key]] = SET_ASIDE
            n_test += len(members.pop(key))
    if len(members) < n_folds:
        raise ValueError(f"{len(members)} passages left for {n_folds} composition folds")
    for i, key in enumerate(members):
        out[members[key]] = i % n_folds
    return out


def performer_fold_id(piece: str, performer: str) -> int:
    """The dataset's performer number (its ``get_performer_fold_map``): ``Score`` 0, ``Score2`` -1,
    a Beethoven performer its index in ``BEETHOVEN_PERFORMER_IDS``, any other its own number.

    Raises:
        ValueError: a Beethoven performer not in ``BEETHOVEN_PERFORMER_IDS``, or a non-numeric one.
    """
    if performer == "Score":
        return 0
    if performer == "Score2":
        return -1
    if "Beethoven" in piece:
        if int(performer) not in BEETHOVEN_PERFORMER_IDS:
            raise ValueError(f"Beethoven performer {performer!r} is not one of {BEETHOVEN_PERFORMER_IDS}")
        return BEETHOVEN_PERFORMER_IDS.index(int(performer))
    return int(performer)


def performer4fold(pieces: Sequence[str], performers: Sequence[str]) -> np.ndarray:
    """``(n,)`` int64 fold index of the dataset's performer protocol (its
    ``m2pf_dataset_performerfold.py``): by ``performer_fold_id``, 1-2 are set aside (``SET_ASIDE``),
    fold ``f`` (0-3) holds out ``2f+3`` and ``2f+4``, the rest (0, -1, 11 and up) train always
    (``ALWAYS_TRAIN``). Deterministic (the script's shuffle does not change who is in which fold)."""
    out = np.full(len(pieces), ALWAYS_TRAIN, dtype=np.int64)
    for i, (piece, performer) in enumerate(zip(pieces, performers)):
        pid = performer_fold_id(piece, performer)
        if pid in (1, 2):
            out[i] = SET_ASIDE
        elif 3 <= pid <= 10:
            out[i] = (pid - 3) // 2
    return out


def composer(piece: str) -> str:
    """The composer of a PercePiano piece id (its first ``_`` part: ``Beethoven``, ``Schubert``)."""
    return piece.split("_")[0]


def protocol_folds(rows: Sequence[PercePianoRow], protocol: str, n_folds: int = 5, seed: int = 0) -> ProtocolFolds:
    """The outer folds of ``protocol`` (``PROTOCOLS``) over ``rows``. ``piece``/``performer``:
    ``min(n_folds, groups)`` balanced grouped folds seeded ``seed``; ``composition4fold``/
    ``performer4fold``: the dataset's 4 folds (``n_folds`` and ``seed`` unused), grouped by passage and
    by ``{composer}/{performer}`` (the dataset numbers each composer's players separately).

    Raises:
        ValueError: unknown protocol; fewer than 2 groups; a fold of the dataset's protocols empty
            (e.g. a ``limit`` without those performers).
    """
    if protocol in ("piece", "performer"):
        groups = [str(getattr(r, protocol)) for r in rows]
        n_groups = len(set(groups))
        if n_groups < 2:
            raise ValueError(f"need at least 2 groups for {protocol} folds, got {n_groups}")
        return ProtocolFolds(protocol, group_folds(groups, min(n_folds, n_groups), seed), groups)
    if protocol == "composition4fold":
        fold_of = composition4fold([r.segment_id for r in rows], [r.passage for r in rows])
        groups = [r.passage for r in rows]
    elif protocol == "performer4fold":
        fold_of = performer4fold([r.piece for r in rows], [r.performer for r in rows])
        groups = [f"{composer(r.piece)}/{r.performer}" for r in rows]
    else:
        raise ValueError(f"unknown performance protocol {protocol!r} (one of {PROTOCOLS})")
    empty = [f for f in range(4) if not (fold_of == f).any()]
    if empty:
        raise ValueError(f"{protocol}: folds {empty} hold no performance of these {len(rows)}")
    return ProtocolFolds(protocol, fold_of, groups)
