"""In-memory tables of frame embeddings for training (``EmbeddingTable``) and batch collation.

An ``EmbeddingTable`` holds ``(frames, dim)`` float32 tensors with their metadata rows; it is read
from an ``eno embed`` output folder / an exported layout (``from_folder``, tensors loaded with
``torch.load(weights_only=True)``) or an imported embeddings dataset (``from_dataset``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from eno_hf.embeddings.store import check_tensor, load_tensor, read_metadata

__all__ = ["EmbeddingTable", "collate_frames"]


@dataclass
class EmbeddingTable:
    """``tensors[i]`` ``(frames_i, dim)`` float32 and ``meta[i]`` (dict with at least ``segment_id``)."""

    tensors: list[Tensor]
    meta: list[dict[str, Any]]

    def __post_init__(self) -> None:
        if len(self.tensors) != len(self.meta):
            raise ValueError("tensors and meta differ in length")
        self.index = {m["segment_id"]: i for i, m in enumerate(self.meta)}

    def __len__(self) -> int:
        return len(self.meta)

    @property
    def dim(self) -> int:
        return int(self.tensors[0].shape[1])

    def column(self, key: str) -> list[Any]:
        return [m.get(key) for m in self.meta]

    def subset(self, idx: Sequence[int]) -> EmbeddingTable:
        return EmbeddingTable([self.tensors[i] for i in idx], [self.meta[i] for i in idx])

    @classmethod
    def from_folder(cls, folder: str | Path, ids: Sequence[str] | None = None) -> EmbeddingTable:
        """Read ``{folder}/metadata.jsonl`` + ``{folder}/embeddings/{segment_id}.pt|.npy`` (rows whose
        tensor is missing or invalid are skipped; use ``import_embeddings`` for a QC report)."""
        folder = Path(folder)
        rows = read_metadata(folder / "metadata.jsonl")
        want = set(ids) if ids is not None else None
        tensors, meta = [], []
        for r in rows:
            sid = str(r["segment_id"])
            if want is not None and sid not in want:
                continue
            for suffix in (".pt", ".npy"):
                p = folder / "embeddings" / f"{sid}{suffix}"
                if p.is_file():
                    tensors.append(torch.from_numpy(check_tensor(load_tensor(p), p, None)))
                    meta.append(r)
                    break
        return cls(tensors, meta)

    @classmethod
    def from_dataset(cls, ds: Any) -> EmbeddingTable:
        """From an imported embeddings ``datasets.Dataset`` (``embedding`` column ``(frames, dim)``)."""
        cols = [c for c in ds.column_names if c != "embedding"]
        ds_np = ds.with_format("numpy", columns=["embedding"], output_all_columns=False)
        tensors = [torch.as_tensor(np.stack(list(ds_np[i]["embedding"])).astype(np.float32)) for i in range(len(ds))]
        meta = [{c: ds[i][c] for c in cols} for i in range(len(ds))]
        return cls(tensors, meta)

    def frame_stats(self) -> tuple[Tensor, Tensor]:
        """Per-feature mean and std over all frames, ``(dim,)`` each."""
        allf = torch.cat(self.tensors)
        return allf.mean(dim=0), allf.std(dim=0)

    def pooled_mean_std(self) -> np.ndarray:
        """``(n, 2 * dim)`` float64: each performance's mean and population std over its frames
        (the features of the closed-form ridge maps and of the pooled-input baselines)."""
        return np.stack([np.concatenate([t.double().mean(0).numpy(), t.double().std(0, unbiased=False).numpy()])
                         for t in self.tensors])


def collate_frames(tensors: Sequence[Tensor], max_frames: int | None = None) -> tuple[Tensor, Tensor]:
    """Pad ``(frames_i, dim)`` tensors to ``(B, T, dim)`` float32 with a ``(B, T)`` bool mask
    (``max_frames``: keep the first ``max_frames`` frames)."""
    t = max(x.shape[0] for x in tensors)
    if max_frames:
        t = min(t, max_frames)
    out = torch.zeros(len(tensors), t, tensors[0].shape[1])
    mask = torch.zeros(len(tensors), t, dtype=torch.bool)
    for i, x in enumerate(tensors):
        n = min(x.shape[0], t)
        out[i, :n] = x[:n]
        mask[i, :n] = True
    return out, mask
