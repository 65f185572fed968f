"""Warm librosa's numba kernels in one process before several processes use them.

librosa compiles its onset, peak-picking and beat-tracking kernels with numba and caches them on
disk (``cache=True``, next to librosa's sources). When two processes compile a ``guvectorize``
kernel at the same time, numba can pair one process's kernel file with the other's wrapper file;
the next process to load that pair gets a null function pointer and dies with a segmentation
fault (numba#10128, librosa#1998; hit by eno's CI with two pytest-xdist workers in
``librosa.onset.onset_detect``). Upstream's workaround is to compile once, sequentially, before
the parallel processes start: afterwards every process only reads the cache.

``warm_numba_cache()`` does that for the librosa functions eno calls (``features.fingerprint``,
``features.midi``). eno calls it before it starts worker processes (``data.workers.pool_map``);
``eno_hf.flows.runner.warm_dask_workers`` runs it on one Dask worker per host before the others; the
test suite calls it before pytest-xdist starts its workers.
"""

from __future__ import annotations

import numpy as np

__all__ = ["warm_numba_cache"]

_WARM = False


def warm_numba_cache() -> None:
    """Compile (first run after install) or load (later runs) librosa's cached numba kernels that
    eno uses, in this process, once per process.

    Runs ``librosa.onset.onset_detect`` (peak picking, local maxima), ``librosa.feature.tempo``
    and ``librosa.beat.beat_track`` on a short seeded float32 onset envelope. About 30 s the
    first time after librosa is installed (measured on the 2-core machine); afterwards only cache loads
    (not timed), nothing on later calls in the same process.

    Source: numba issue #10128 ("Race condition in GUFunc caching can lead to segmentation
    faults") and its workaround in librosa issue #1998.
    """
    global _WARM
    if _WARM:
        return
    import librosa

    env = np.random.default_rng(0).random(400).astype(np.float32)
    librosa.onset.onset_detect(onset_envelope=env, sr=22050, hop_length=512)
    librosa.feature.tempo(onset_envelope=env, sr=22050, hop_length=512)
    librosa.beat.beat_track(onset_envelope=env, sr=22050, hop_length=512, units="frames")
    librosa.beat.beat_track(onset_envelope=env.astype(np.float64), sr=100, hop_length=1, units="frames")
    _WARM = True
