"""Worker pools of the dataset build: content hashing on threads, per-file work on forked processes
with one torch/BLAS thread each, and the thread limits both need.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from eno_hf.errors import RejectedInput
from eno_hf.utils.io import atomic_write_json
from eno_hf.utils.progress import track

__all__ = ["hash_files", "torch_threads", "pool_map", "progress", "die_with_parent", "reap_orphans", "init_worker"]


def content_hash(path: Path) -> str:
    from eno_hf.audio.io import content_hash

    return content_hash(path)


def _stat_key(path: str) -> list[int] | None:
    """``[size, mtime_ns, ctime_ns, inode]`` of a regular file, else None (a chmod, a rewrite or a
    replacement changes it)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def hash_files(paths: Sequence[str], threads: int, cache_file: str | Path | None = None
               ) -> dict[str, str | RejectedInput | OSError]:
    """``{path: sha256 hex}`` (or the ``RejectedInput``/``OSError`` raised for it), threaded.

    With ``cache_file`` (JSON ``{path: [size, mtime_ns, ctime_ns, inode, sha256]}``) a file whose
    stat is unchanged since it was hashed is not read again (the stat is taken before hashing, so
    a file changed meanwhile is hashed again next time); the cache is rewritten atomically when
    it changed. An unreadable or invalid cache file counts as empty.
    """
    from concurrent.futures import ThreadPoolExecutor

    def one(p: str) -> str | RejectedInput | OSError:
        try:
            return content_hash(Path(p))
        except (RejectedInput, OSError) as exc:
            return exc

    cache: dict[str, list[Any]] = {}
    if cache_file is not None:
        try:
            loaded = json.loads(Path(cache_file).read_text(encoding="utf-8"))
            cache = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            cache = {}
    out: dict[str, str | RejectedInput | OSError] = {}
    stats: dict[str, list[int] | None] = {}
    todo: list[str] = []
    for p in paths:
        stats[p] = key = _stat_key(p) if cache_file is not None else None
        hit = cache.get(p)
        if key is not None and isinstance(hit, list) and len(hit) == 5 and hit[:4] == key:
            out[p] = str(hit[4])
        else:
            todo.append(p)
    if threads <= 1 or len(todo) <= 1:
        fresh = {p: one(p) for p in todo}
    else:
        with ThreadPoolExecutor(max_workers=threads) as ex:
            fresh = dict(zip(todo, ex.map(one, todo)))
    out.update(fresh)
    if cache_file is not None:
        updates = {p: [*stats[p], h] for p, h in fresh.items() if isinstance(h, str) and stats[p] is not None}
        if updates:
            cache.update(updates)
            atomic_write_json(cache_file, cache, indent=None)
    return {p: out[p] for p in paths}


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


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent_pid: int) -> bool:
    """Make this (forked) process receive SIGKILL when its parent dies (Linux
    ``prctl(PR_SET_PDEATHSIG)`` through ctypes), so a ``kill -9`` of the parent, e.g. by the OOM
    killer, does not leave idle workers holding their memory. Exits at once if the parent
    ``parent_pid`` already died before the call (the signal would never come).

    The signal fires when the *thread* that forked this process ends: pools must be created and
    used in one thread (``pool_map`` is). Returns False where the platform has no such signal
    (then ``reap_orphans`` of the next run cleans up).
    """
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        ok = libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent_pid:  # the parent died between fork and prctl
        os._exit(1)
    return ok


def _registry_dir() -> Path:
    """Folder of this user's worker pid files (``$XDG_RUNTIME_DIR`` or the temp dir)."""
    import tempfile

    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"eno-workers-{os.getuid() if hasattr(os, 'getuid') else 'user'}"


def _create_time(pid: int) -> float | None:
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return None


def _register_worker(parent_pid: int) -> None:
    """Record ``{pid, created, parent, parent_created}`` of this worker in ``_registry_dir()``."""
    try:
        d = _registry_dir()
        d.mkdir(mode=0o700, exist_ok=True)
        me = os.getpid()
        atomic_write_json(d / f"{me}.json", {"pid": me, "created": _create_time(me), "parent": parent_pid,
                                             "parent_created": _create_time(parent_pid)}, indent=None)
    except OSError:
        pass


def reap_orphans() -> list[int]:
    """Kill the pool workers of this user whose parent process is gone (left by a parent killed
    where ``die_with_parent`` is not available, or by an older eno), and forget finished ones.

    A worker is killed only when its pid file matches a live process with the recorded creation
    time and the recorded parent no longer exists (pid gone or reused); pid files of processes
    that ended are removed. Returns the pids killed.
    """
    import psutil

    d = _registry_dir()
    killed: list[int] = []
    if not d.is_dir():
        return killed
    for f in d.glob("*.json"):
        try:
            info = json.loads(f.read_text())
            pid, created = int(info["pid"]), info["created"]
            parent, parent_created = int(info["parent"]), info["parent_created"]
        except (OSError, ValueError, KeyError, TypeError):
            f.unlink(missing_ok=True)
            continue
        if _create_time(pid) != created or created is None:  # that worker ended
            f.unlink(missing_ok=True)
            continue
        if _create_time(parent) == parent_created and parent_created is not None:
            continue  # its parent still runs
        try:
            psutil.Process(pid).kill()
            killed.append(pid)
        except psutil.Error:
            pass
        f.unlink(missing_ok=True)
    return killed


def _forget_workers(pids: Iterable[int]) -> None:
    for pid in pids:
        (_registry_dir() / f"{pid}.json").unlink(missing_ok=True)


def init_worker(parent_pid: int | None = None) -> None:
    """Pool initializer (``initializer=init_worker, initargs=(os.getpid(),)``, forked or spawned
    workers): one thread per worker process (torch intra-op, BLAS, OpenMP), so the pool uses the
    cores. With ``parent_pid``: the worker dies with its parent (``die_with_parent``), even on
    ``kill -9``, and is recorded for ``reap_orphans``. The pool must be created in the thread
    that uses it (see ``die_with_parent``)."""
    if parent_pid is not None:
        die_with_parent(parent_pid)
        _register_worker(parent_pid)
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
    imports, as torch's DataLoader workers do), else spawned. They die with this process, even
    on ``kill -9`` (``die_with_parent``); workers left by a killed parent elsewhere are killed
    by the next call (``reap_orphans``).
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
    reap_orphans()
    ex = ProcessPoolExecutor(max_workers=min(workers, len(items)), mp_context=ctx,
                             initializer=init_worker, initargs=(os.getpid(),))
    pids: list[int] = []
    try:
        with ex:
            results = ex.map(fn, items, chunksize=1)  # submits every item: the workers exist now
            pids = list(getattr(ex, "_processes", None) or ())
            yield from results
    finally:
        _forget_workers(pids)


def progress(iterable: Iterable[Any], total: int, enabled: bool, desc: str, unit: str = "file") -> Iterable[Any]:
    """``iterable`` with progress shown through ``eno_hf.utils.progress.track`` (a bar on a
    terminal, INFO lines every ~10 % elsewhere, nothing when ``enabled`` is False or quiet)."""
    if not enabled:
        return iterable
    return track(iterable, total=total, description=desc, unit=unit)
