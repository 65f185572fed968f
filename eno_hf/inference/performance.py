"""Predictions of an ``EnoForPerformanceEvaluation`` on frame embeddings (no training imports)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["predict_heads"]


@torch.inference_mode()
def predict_heads(model: torch.nn.Module, tensors: Sequence[Tensor], batch_size: int = 64,
                  max_frames: int | None = 32) -> dict[str, np.ndarray]:
    """Every head's outputs for ``(frames_i, dim)`` embeddings, in input order.

    Returns:
        head name -> ``(n, dim)`` (regression, projection) or ``(n,)`` (ranking) float32, and
        ``"embedding"`` -> the trunk output ``(n, hidden)``.
    """
    from eno_hf.performance.data import collate_frames

    model.eval()
    parts: dict[str, list[np.ndarray]] = {}
    for k in range(0, len(tensors), batch_size):
        x, m = collate_frames(list(tensors[k: k + batch_size]), max_frames)
        out = model(embeddings=x, frame_mask=m)
        for name, v in {**out.heads, "embedding": out.embedding}.items():
            parts.setdefault(name, []).append(v.float().cpu().numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}
