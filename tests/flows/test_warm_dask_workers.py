"""``eno_hf.flows.runner.warm_dask_workers``: the numba cache is warmed on one worker per host before
the others (numba#10128), on a real in-process 2-worker Dask cluster; ``eno_hf.flows.dask_preload`` is a
valid Dask preload."""

from __future__ import annotations

import threading
import time

import pytest

distributed = pytest.importorskip("distributed")

import eno_hf.flows.runner as runner  # noqa: E402

_CALLS: list[tuple[str, float, float]] = []
_LOCK = threading.Lock()


def _record() -> None:
    start = time.monotonic()
    time.sleep(0.3)
    with _LOCK:
        _CALLS.append((distributed.get_worker().address, start, time.monotonic()))


def test_warm_dask_workers_one_per_host_first(monkeypatch: pytest.MonkeyPatch) -> None:
    _CALLS.clear()
    monkeypatch.setattr(runner, "warm_numba_cache", _record)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        runner.warm_dask_workers(client)
        workers = set(client.scheduler_info(n_workers=-1)["workers"])
    assert {address for address, _, _ in _CALLS} == workers  # every worker, once
    assert len(_CALLS) == 2
    (_, _, first_end), (_, second_start, _) = sorted(_CALLS, key=lambda c: c[1])
    assert second_start >= first_end  # same host: the second waits for the first


def test_dask_preload_is_a_valid_preload() -> None:
    """``--preload eno_hf.flows.dask_preload`` is accepted by a scheduler and its workers (Dask imports it
    and fails the start on an error) and is recorded as their preload."""
    preload = ["eno_hf.flows.dask_preload"]
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None,
                                  preload=preload, scheduler_kwargs={"preload": preload}) as cluster, \
            distributed.Client(cluster) as client:
        assert [p.name for p in cluster.scheduler.preloads] == preload
        (worker,) = cluster.workers.values()
        assert [p.name for p in worker.preloads] == preload
        assert client.submit(sum, [1, 2]).result() == 3
