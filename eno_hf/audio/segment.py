"""Fixed-window segmentation of a conditioned recording.

Windows of ``cfg.segment_s`` seconds start every ``cfg.hop_s`` seconds from 0. Full windows are
always kept. After the last full window, one shorter final segment ``[start, duration_s]`` is kept
only if it is at least ``cfg.min_last_ratio * cfg.segment_s`` long *and* reaches past the end of the
last full window (with ``hop_s < segment_s`` a tail already covered by a full window adds nothing).
A recording shorter than one window but at least ``min_last_ratio`` of it gives one segment
``[0, duration_s]``; shorter still gives none.

Segment ids are ``f"{recording_id}_seg{n:03d}"`` with ``n`` counting from 0.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from eno_hf.config import SegmentConfig

__all__ = ["iter_segments", "segment_bounds", "segment_id"]

_TOL = 1e-9


def segment_bounds(duration_s: float, cfg: SegmentConfig) -> list[tuple[float, float]]:
    """Segment ``(start_s, end_s)`` pairs for a recording of ``duration_s`` seconds.

    Raises:
        ValueError: ``segment_s`` or ``hop_s`` not positive.
    """
    seg, hop = float(cfg.segment_s), float(cfg.hop_s)
    if seg <= 0 or hop <= 0:
        raise ValueError(f"segment_s and hop_s must be > 0, got {seg}, {hop}")
    bounds: list[tuple[float, float]] = []
    n_full = int(np.floor((duration_s - seg) / hop + _TOL)) + 1 if duration_s + _TOL >= seg else 0
    for i in range(n_full):
        start = i * hop
        bounds.append((start, start + seg))
    last_end = bounds[-1][1] if bounds else 0.0
    start = n_full * hop
    remaining = duration_s - start
    if (remaining > _TOL and duration_s > last_end + _TOL
            and remaining + _TOL >= cfg.min_last_ratio * seg):
        bounds.append((start, float(duration_s)))
    return bounds


def segment_id(recording_id: str, n: int) -> str:
    """``"{recording_id}_seg{n:03d}"``, e.g. ``segment_id("MT0001", 2) == "MT0001_seg002"``."""
    return f"{recording_id}_seg{n:03d}"


def iter_segments(samples: np.ndarray, sample_rate: int, cfg: SegmentConfig
                  ) -> Iterator[tuple[int, float, float, np.ndarray]]:
    """Yield ``(n, start_s, end_s, view)`` for each segment of a ``(n_samples,)`` signal.

    ``view`` is a slice (no copy) of ``samples``: ``samples[round(start_s*sr):round(end_s*sr)]``.
    Full segments all have exactly ``round(segment_s * sample_rate)`` samples.
    """
    duration_s = samples.shape[-1] / sample_rate
    seg_len = int(round(cfg.segment_s * sample_rate))
    for n, (start_s, end_s) in enumerate(segment_bounds(duration_s, cfg)):
        a = int(round(start_s * sample_rate))
        b = min(a + seg_len, samples.shape[-1])
        yield n, start_s, end_s, samples[..., a:b]
