"""Worker pools of the dataset build: content hashing on threads, per-file work on forked processes
with one torch/BLAS thread each, and the thread limits both need.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from eno_hf.errors import RejectedInput

__all__ = ["hash_files", "torch_threads", "pool_map", "progress"]


def content_hash(path: Path) -> str:
    from eno_hf.audio.io import content_hash

    return content_hash(path)


def hash_files(paths: Sequence[str], threads: int) -> dict[str, str | RejectedInput | OSError]:
    """``{path: sha256 hex}`` (or the ``RejectedInput``/``OSError`` raised for it), threaded."""
    from concurrent.futures import ThreadPoolExecutor

    def one(p: str) -> str | RejectedInput | OSError:
        try:
            return content_hash(Path(p))
        except (RejectedInput, OSError) as exc:
            return exc

    if threads <= 1 or len(paths) <= 1:
        return {p: one(p) for p in paths}
    with ThreadPoolExecutor(max_workers=threads) as ex:
        return dict(zip(paths, ex.map(one, paths)))


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Temporarily limit torch intra-op threads and BLAS/OpenMP pools (restored afterwards).

    Per-segment STFTs and matrix products are small: on the 2-core dev machine one thread
    processed a 4Q clip in 0.38 s vs 1.06 s with torch's default two, and the fingerprint took
    28 ms with one OpenBLAS thread vs ~80 ms with two (thread start-up/spinning dominates).
    BLAS pools are limited with ``threadpoolctl``.
    """
    from threadpoolctl import threadpool_limits

    try:
        import torch
    except ImportError:  # pragma: no cover
        with threadpool_limits(limits=n):
            yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(before)


def _worker_init() -> None:
    """One thread per worker process (torch intra-op, BLAS, OpenMP): the pool uses the cores."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


def pool_map(fn: Callable[[Any], Any], items: Sequence[Any], workers: int) -> Iterator[Any]:
    """``fn`` over ``items`` in ``workers`` processes (in order; inline when ``workers <= 1``).

    Workers are forked where the platform allows it (they start instantly with the parent's
    imports, as torch's DataLoader workers do), else spawned.
    """
    if workers <= 1 or len(items) <= 1:
        with torch_threads(1):
            for it in items:
                yield fn(it)
        return
    # the first item runs here: lazy imports and numba JIT compilation (librosa) happen once in
    # the parent and are inherited by the forked workers instead of being repeated in each;
    # librosa's kernels are warmed even if that item never reaches them (a rejected file), so no
    # two workers compile them at once (numba#10128, see features.numba_cache)
    from eno_hf.features.numba_cache import warm_numba_cache

    warm_numba_cache()
    with torch_threads(1):
        yield fn(items[0])
    items = items[1:]
    methods = multiprocessing.get_all_start_methods()
    ctx = get_context("fork" if "fork" in methods else None)
    with ProcessPoolExecutor(max_workers=min(workers, len(items)), mp_context=ctx,
                             initializer=_worker_init) as ex:
        yield from ex.map(fn, items, chunksize=1)


def progress(iterable: Iterable[Any], total: int, enabled: bool, desc: str, unit: str = "file") -> Iterable[Any]:
    """``iterable`` with progress shown through ``eno_hf.utils.progress.track`` (a bar on a
    terminal, INFO lines every ~10 % elsewhere, nothing when ``enabled`` is False or quiet)."""
    if not enabled:
        return iterable
    from eno_hf.utils.progress import track

    return track(iterable, total=total, description=desc, unit=unit)
