"""Which Prefect task runner runs per-file and per-shard work: one place, chosen in config.

``run.task_runner: threads`` (default) runs tasks on a ``ThreadPoolTaskRunner`` in the flow's
process; ``dask`` runs them on Dask through prefect-dask's ``DaskTaskRunner``: on the scheduler
at ``run.dask_address`` (a cluster other machines joined with ``dask worker tcp://...``), or on a
``distributed.LocalCluster`` of ``run.dask_workers`` single-threaded worker processes. eno never
schedules work itself: scale-out is Dask's.
"""

from __future__ import annotations

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from eno_hf.config import Settings


def task_runner(settings: Settings, max_workers: int | None = None) -> TaskRunner:
    """A fresh task runner for ``settings.run.task_runner``.

    Args:
        settings: eno settings (``run.task_runner``, ``run.dask_address``, ``run.dask_workers``).
        max_workers: threads of the thread-pool runner (default ``dataset.num_workers``).
    """
    run = settings.run
    if run.task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        if run.dask_address:
            return DaskTaskRunner(address=run.dask_address)
        return DaskTaskRunner(cluster_class="distributed.LocalCluster",
                              cluster_kwargs={"n_workers": run.dask_workers, "threads_per_worker": 1,
                                              "processes": True, "dashboard_address": None})
    return ThreadPoolTaskRunner(max_workers=max(1, max_workers or settings.dataset.num_workers))
