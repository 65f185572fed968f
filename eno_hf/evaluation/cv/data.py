"""The recording-level table cross-validation works on: ids, artists, labels, cached feature blocks
and (for the ``default`` candidate and the ``ensemble`` block) the cached frozen prefixes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from eno_hf.evaluation.baselines import recording_table, resolve_heads
from eno_hf.evaluation.cv.features import load_or_compute
from eno_hf.evaluation.cv.scores import cv_heads

if TYPE_CHECKING:  # pragma: no cover
    from eno_hf.config import Settings
    from eno_hf.models.heads import HeadSpec

ENSEMBLE_BLOCK = "ensemble"
"""Feature block of the default's frozen encoder: the pretrained (un-adapted) tops on the cached
prefixes, mean over a recording's windows (``default.frozen_features``, added by ``run.cross_validate``)."""


@dataclass
class PrefixPart:
    """Cached frozen prefixes of one dataset split (``training.cache.cached_encode_split``).

    Attributes:
        split: its rows (``recording_id`` and the heads' label columns, as the dataset holds them).
        features: ``(m, prefix_dim)`` float32 prefixes of every window (may be memory-mapped).
        rows: ``(m,)`` int64 row of ``split`` of each window.
        owner: ``(m,)`` int64 index into ``CVData.ids`` of each window's recording.
    """

    split: Any
    features: np.ndarray
    rows: np.ndarray
    owner: np.ndarray


@dataclass
class CVData:
    """Recording-level table.

    Attributes:
        ids: ``(n,)`` recording ids (sorted). groups: ``(n,)`` artists.
        heads: ``HeadSpec`` s with their label spaces (``baselines.resolve_heads``), of the kinds
            cross-validation scores (``scores.cv_heads``).
        labels: head -> ``(n,)`` int or ``(n, n_tags)`` int, -1 missing.
        blocks: feature block -> ``(n, d)``.
        settings: ``Settings`` of the model to cross-validate (``default`` candidates).
        prefix: the frozen prefixes of every split (``default`` candidates), or None.
    """

    ids: np.ndarray
    groups: np.ndarray
    heads: list[HeadSpec]
    labels: dict[str, np.ndarray]
    blocks: dict[str, np.ndarray]
    settings: Settings | None = None
    prefix: list[PrefixPart] | None = None

    def matrix(self, names: Sequence[str]) -> np.ndarray:
        """``(n, sum d)`` float64 concatenation of the blocks ``names``.

        Raises:
            KeyError: a block not loaded.
        """
        parts = []
        for name in names:
            if name not in self.blocks:
                raise KeyError(f"feature block {name!r} not loaded (have {sorted(self.blocks)})")
            parts.append(self.blocks[name])
        return np.concatenate(parts, axis=1).astype(np.float64) if parts else np.zeros((len(self.ids), 0))


def load_cv_data(dataset: Any, dataset_path: str | Path, data_root: str | Path, heads: Sequence[Any],
                 feature_sets: Sequence[str]) -> CVData:
    """All recordings of ``dataset`` (every split) with labels and the cached feature sets
    (``features.load_or_compute``; the ``ensemble`` block is left to ``default.frozen_features``).

    Raises:
        ValueError: no ``group`` column, or a feature set's ids differ from the dataset's.
    """
    first = next(iter(dataset.values()))
    rheads = cv_heads(resolve_heads(first.features, heads))
    if "group" not in first.column_names:
        raise ValueError("cross-validation needs a 'group' column (artist) in the dataset")
    ids, labels, groups = [], {h.name: [] for h in rheads}, {}
    for split in dataset.values():
        t = recording_table(split, rheads)
        ids += list(t.ids)
        for h in rheads:
            labels[h.name].append(t.labels[h.name])
        meta = split.select_columns(["recording_id", "group"]).to_dict()
        groups.update({str(r): str(g) for r, g in zip(meta["recording_id"], meta["group"])})
    order = np.argsort(np.asarray(ids, dtype=str))
    ids_arr = np.asarray(ids, dtype=str)[order]
    lab = {k: np.concatenate(v)[order] for k, v in labels.items()}
    sets = sorted(set(feature_sets) - {ENSEMBLE_BLOCK})
    blocks: dict[str, np.ndarray] = {}
    for name, arrays in load_or_compute(dataset, dataset_path, data_root, sets, rheads).items():
        if list(arrays["ids"]) != list(ids_arr):
            raise ValueError(f"feature set {name}: ids differ from the dataset's")
        blocks[name] = np.asarray(arrays["embedding"], dtype=np.float64)
    return CVData(ids_arr, np.asarray([groups[i] for i in ids_arr]), rheads, lab, blocks)


def owner_index(recording_ids: Sequence[str], ids: np.ndarray) -> np.ndarray:
    """Index into ``ids`` of every entry of ``recording_ids``.

    Raises:
        ValueError: an id not in ``ids``.
    """
    pos = {r: i for i, r in enumerate(np.asarray(ids).tolist())}
    missing = sorted(set(map(str, recording_ids)) - set(pos))
    if missing:
        raise ValueError(f"{len(missing)} recordings not in the CV data (e.g. {missing[:3]})")
    return np.asarray([pos[str(r)] for r in recording_ids], dtype=np.int64)


def labels_of(data: CVData, recordings: np.ndarray) -> Mapping[str, np.ndarray]:
    """head -> the labels of ``recordings`` (indices into ``data.ids``)."""
    return {h.name: data.labels[h.name][recordings] for h in data.heads}
