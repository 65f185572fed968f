"""Fixed-window segmentation."""

from __future__ import annotations

import numpy as np
import pytest

from eno_hf.audio.segment import iter_segments, segment_bounds, segment_id
from eno_hf.config import SegmentConfig

CFG = SegmentConfig(segment_s=10.0, hop_s=10.0, min_last_ratio=0.5)


@pytest.mark.parametrize(("duration_s", "expected"), [
    (30.0, [(0, 10), (10, 20), (20, 30)]),
    (30.06, [(0, 10), (10, 20), (20, 30)]),           # 0.06 s tail dropped
    (25.0, [(0, 10), (10, 20), (20, 25)]),            # 5 s tail = 0.5 of a window: kept
    (24.9, [(0, 10), (10, 20)]),                      # 4.9 s tail: dropped
    (6.0, [(0, 6)]),                                  # shorter than one window, >= ratio
    (4.0, []),
    (0.0, []),
])
def test_bounds(duration_s: float, expected: list[tuple[float, float]]) -> None:
    got = segment_bounds(duration_s, CFG)
    assert len(got) == len(expected)
    for (a, b), (ea, eb) in zip(got, expected):
        assert a == pytest.approx(ea) and b == pytest.approx(eb)


def test_overlapping_hop() -> None:
    cfg = SegmentConfig(segment_s=10.0, hop_s=5.0, min_last_ratio=0.5)
    assert segment_bounds(25.0, cfg) == [(0, 10), (5, 15), (10, 20), (15, 25)]
    assert segment_bounds(28.0, cfg) == [(0, 10), (5, 15), (10, 20), (15, 25), (20, 28)]


def test_invalid_config() -> None:
    with pytest.raises(ValueError, match=r"hop_s\s+Input should be greater than 0"):
        segment_bounds(10.0, SegmentConfig(hop_s=0.0))


def test_segment_id() -> None:
    assert segment_id("MT0000004637", 0) == "MT0000004637_seg000"
    assert segment_id("Séculaire", 12) == "Séculaire_seg012"


def test_iter_segments_views() -> None:
    sr = 16_000
    x = np.arange(int(25.5 * sr), dtype=np.float32)
    segs = list(iter_segments(x, sr, CFG))
    assert [s[0] for s in segs] == [0, 1, 2]
    assert [len(s[3]) for s in segs] == [10 * sr, 10 * sr, int(5.5 * sr)]
    n, start_s, end_s, view = segs[1]
    assert (start_s, end_s) == (10.0, 20.0)
    assert view[0] == 10 * sr and np.shares_memory(view, x)
    assert segs[2][2] == pytest.approx(25.5)
