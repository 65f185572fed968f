"""warm_numba_cache fills numba's on-disk cache with the librosa kernels eno's features use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_warm_numba_cache_compiles_the_gufuncs_into_an_empty_cache(tmp_path: Path) -> None:
    # a fresh process with an empty cache dir: what a worker sees on a fresh install
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    code = "from eno_hf.features.numba_cache import warm_numba_cache; warm_numba_cache(); warm_numba_cache()"
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=300)
    cached = {p.name for p in tmp_path.rglob("*.nbc")}
    # the kernel and its gufunc wrapper that segfaulted in CI (onset_detect -> peak_pick), and
    # the beat tracker's (features.midi)
    assert any(n.startswith("utils.__peak_pick") for n in cached), sorted(cached)
    assert any(n.startswith("guf-utils.__peak_pick") for n in cached), sorted(cached)
    assert any(n.startswith("guf-beat.") for n in cached), sorted(cached)
