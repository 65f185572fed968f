"""How Prefect runs eno's stages: the runner behind every flow in ``flows/`` (no stage logic here).

- ``prefect_runner(stage, settings, state)``: the ``eno_hf.pipeline.run_stages`` seam. Each stage
  becomes one Prefect task ``eno-{stage}``; its scheduling follows ``Stage.resource``:

  ======== =========================================================================
  ``io``   3 retries, exponential backoff (2 s, 4 s, 8 s, ±50 % jitter), only on ``OSError``
           (``TimeoutError``, ``ConnectionError``, NFS hiccups; a bad input is not retried);
           30 min timeout (enforced: stage tasks run in the flow's main thread).
  ``gpu``  holds one slot of the Prefect global concurrency limit ``gpu`` while it runs, so a
           worker never runs two GPU stages at once (``prefect gcl create gpu --limit 1``;
           without that limit — e.g. the ephemeral server of ``eno run`` — nothing is held).
  ``cpu``  run once.
  ======== =========================================================================

- ``prefect_map_fn(settings)``: the ``build_dataset(map_fn=...)`` seam. Per-file work runs as
  Prefect tasks ``eno-process-files`` on ``task_runner(settings)``, each over a chunk of
  ``run.files_per_task`` files (default: about four chunks per worker, so the scheduler's per-task
  round trip — ~0.1 s of the flow process's CPU, on the same cores as the workers — does not
  dominate short files). ``io`` retries re-run one chunk; its finished files are per-file cache
  hits. No timeout: Prefect cannot interrupt a synchronous task in a worker thread.
- ``task_runner(settings)``: ``run.task_runner: threads`` (default) is a ``ThreadPoolTaskRunner`` in
  the flow's process; ``dask`` is prefect-dask's ``DaskTaskRunner`` on the scheduler at
  ``run.dask_address`` (a cluster other machines joined with ``dask worker tcp://...``) or on a
  ``distributed.LocalCluster`` of ``run.dask_workers`` single-threaded worker processes. eno never
  schedules work itself: scale-out is Dask's.
  Nothing is cached by Prefect: the per-file Arrow cache is the cache.
- ``settings_of(config, overrides, settings)``: the flows' parameters → ``Settings`` (validated by
  pydantic; a bad value fails the flow run at once with the offending key).

No Prefect result persistence and no Prefect cache: eno's own caches (per file, per dataset
version, per stage marker) decide what is reused.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import eno_hf  # noqa: F401  (offline env defaults, PREFECT_HOME, before Prefect reads settings)
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency
from prefect.futures import as_completed
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from prefect.tasks import exponential_backoff

from eno_hf.config import Settings, apply_overrides, load_config
from eno_hf.data.build import FileJob, _torch_threads, process_file
from eno_hf.features.numba_cache import warm_numba_cache
from eno_hf.pipeline import PipelineState, Stage

log = logging.getLogger(__name__)

GPU_LIMIT = "gpu"
"""Name of the Prefect global concurrency limit GPU stages take a slot of."""

IO_RETRIES = 3
IO_TIMEOUT_S = 30 * 60


def retry_on_os_error(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry only transient I/O failures (``OSError`` and
    subclasses: timeouts, connection errors, injected ``TransientIOError``)."""
    try:
        exc = state.result(raise_on_failure=False)
    except Exception:  # noqa: BLE001 - the failure could not be read back: be safe, retry
        return True
    return isinstance(exc, OSError)


IO_POLICY: dict[str, Any] = {
    "retries": IO_RETRIES,
    "retry_delay_seconds": exponential_backoff(backoff_factor=2),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": retry_on_os_error,
}


def settings_of(config: str | None = "small", overrides: Sequence[str] | None = None,
                settings: Settings | None = None) -> Settings:
    """``settings`` when given (passed by the CLI or a caller), else ``load_config(config, overrides)``.

    Raises:
        eno_hf.config.ConfigError: missing/invalid config file or override.
    """
    if settings is None:
        return load_config(config, list(overrides or []))
    if not overrides:
        return settings
    return Settings.model_validate(apply_overrides(settings.model_dump(mode="json"), list(overrides)))


def _run_stage(stage: Stage, settings: Settings, state: PipelineState) -> dict[str, Any]:
    slot = concurrency(GPU_LIMIT, occupy=1, strict=False) if stage.resource == "gpu" else nullcontext()
    with slot:
        return stage.fn(settings, state)


def _stage_task(stage: Stage):
    opts: dict[str, Any] = {"name": f"eno-{stage.name}", "cache_policy": NO_CACHE, "persist_result": False,
                            "tags": [f"eno-{stage.resource}"]}
    if stage.resource == "io":
        opts.update(IO_POLICY, timeout_seconds=IO_TIMEOUT_S)
    return task(_run_stage, **opts)


def prefect_runner(stage: Stage, settings: Settings, state: PipelineState) -> dict[str, Any]:
    """Run ``stage`` as the Prefect task ``eno-{stage.name}`` (policy by ``stage.resource``, see
    the module docstring). Must be called inside a flow run."""
    return _stage_task(stage)(stage, settings, state)


@task(name="eno-process-files", cache_policy=NO_CACHE, persist_result=False, **IO_POLICY)
def process_files_task(jobs: list[FileJob]) -> list[dict[str, Any]]:
    """A chunk of files → per-file Arrow caches; returns ``process_file``'s small outcome dict per
    file, in order (no arrays; rejected inputs are values ``{"status": "rejected", ...}``, not task
    failures)."""
    return [process_file(job) for job in jobs]


def _workers(settings: Settings) -> int:
    run = settings.run
    if run.task_runner == "dask":
        return run.dask_workers
    return max(1, settings.dataset.num_workers)


def file_chunks(jobs: Sequence[FileJob], settings: Settings) -> list[list[FileJob]]:
    """``jobs`` cut into consecutive chunks of ``run.files_per_task`` (default
    ``ceil(len(jobs) / (4 * workers))``, at least 1), order kept."""
    size = settings.run.files_per_task or max(1, math.ceil(len(jobs) / (4 * _workers(settings))))
    return [list(jobs[i:i + size]) for i in range(0, len(jobs), size)]


def task_runner(settings: Settings) -> TaskRunner:
    """A fresh task runner for ``settings.run.task_runner`` (see the module docstring)."""
    run = settings.run
    if run.task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        import dask

        # generous comm timeouts: on a loaded machine a worker process can take minutes to start and
        # answer (the defaults, 30 s, make LocalCluster start-up fail); nannies pass this config on
        dask.config.set({"distributed.comm.timeouts.connect": "300s", "distributed.comm.timeouts.tcp": "300s"})
        if run.dask_address:
            return DaskTaskRunner(address=run.dask_address)
        return DaskTaskRunner(cluster_class="distributed.LocalCluster",
                              cluster_kwargs={"n_workers": run.dask_workers, "threads_per_worker": 1,
                                              "processes": True, "dashboard_address": None})
    return ThreadPoolTaskRunner(max_workers=_workers(settings))


def _is_local(address: str | None) -> bool:
    """Whether a Dask scheduler ``address`` (``tcp://host:port``; None = our own LocalCluster) is
    on this machine by name: loopback or this host's name (no DNS lookup, which can hang offline;
    this machine's LAN address counts as remote)."""
    if not address:
        return True
    import socket
    from urllib.parse import urlsplit

    host = urlsplit(address if "://" in address else f"tcp://{address}").hostname or ""
    return host in {"localhost", "127.0.0.1", "::1", socket.gethostname()}


def worker_api_settings(settings: Settings) -> AbstractContextManager[Any]:
    """A context in which Prefect tasks submitted to Dask workers report to *this* flow's API.

    With no ``PREFECT_API_URL`` (the ephemeral server of ``eno run`` / ``eno build``), the
    settings that prefect-dask ships with each task (``prefect.context.serialize_context``) hold
    no API URL, so every Dask worker process started its own ephemeral Prefect server (measured:
    ~14 s and a uvicorn process per worker, on the same cores as the work) and recorded its task
    runs there, out of the flow's sight. This context sets the flow's ephemeral server URL
    (``http://127.0.0.1:{port}/api``) while tasks are submitted, for workers on this machine
    (our own LocalCluster, or ``run.dask_address`` on localhost). A remote cluster cannot reach
    an ephemeral server: run a Prefect server and set ``PREFECT_API_URL`` (docs/deployments.md).
    Threads runner, or an API URL already set: a no-op.
    """
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    run = settings.run
    if run.task_runner != "dask" or get_current_settings().api.url:
        return nullcontext()
    if not _is_local(run.dask_address):
        log.warning("run.dask_address %s is not loopback or this host's name, and PREFECT_API_URL is unset: "
                    "remote workers cannot reach this flow's ephemeral Prefect server (each starts its own); "
                    "run a Prefect server and set PREFECT_API_URL", run.dask_address)
        return nullcontext()
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:  # the flow's client: the ephemeral server is up
        url = str(client.api_url).rstrip("/")
    return temporary_settings(updates={PREFECT_API_URL: url})


def warm_dask_workers(client: Any) -> None:
    """Warm librosa's numba cache (``features.numba_cache``) on the Dask workers of ``client``
    (a ``distributed.Client``): first one worker per host, then all the other workers.

    numba caches compiled kernels next to librosa's sources on each host; two processes compiling
    the same kernel at once can corrupt that cache (numba#10128). So one worker per host compiles
    (first run after an install) or loads it, and only then do that host's other workers load it
    in parallel. On long-lived workers that already ran a build this is two round trips (the
    warm-up is once per process). Workers that join the cluster later are not warmed: they load
    the cache their host's first worker wrote. Plain Dask futures (``Client.submit`` pinned to one
    worker), not Prefect tasks: nothing to record.

    Used for a running cluster (``run.dask_address``). For the flow's own LocalCluster the flow
    process warms its host instead (``warm_numba_cache()``) and the fresh workers load in
    parallel: warming fresh workers one after the other made the own-cluster build slower
    (measured, ``benchmarks/embed.py``), while the flow-process warm-up (~7 s of librosa
    imports and cache loads) was a fixed cost of every build on a running cluster and no help to
    a remote one.

    Raises:
        Exception: whatever ``warm_numba_cache`` raised on a worker (re-raised by ``gather``),
            e.g. ``ImportError`` when librosa is missing there.
    """
    from uuid import uuid4

    by_host: dict[str, list[str]] = {}
    for address, info in client.scheduler_info(n_workers=-1)["workers"].items():
        by_host.setdefault(info.get("host", address), []).append(address)
    first = [addresses[0] for addresses in by_host.values()]
    others = [a for addresses in by_host.values() for a in addresses[1:]]
    for group in (first, others):
        futures = [client.submit(warm_numba_cache, workers=[a], allow_other_workers=False, pure=False,
                                 key=f"eno-warm-numba-{uuid4().hex}") for a in group]
        client.gather(futures)


def prefect_map_fn(settings: Settings) -> Callable[[Callable[[Any], Any], Sequence[FileJob]], list[dict]]:
    """A ``map_fn`` for ``build_dataset``: ``process_files_task`` over ``file_chunks(jobs)`` on
    ``task_runner(settings)`` (torch limited to one thread per worker thread); outcomes are yielded
    chunk by chunk as they finish (the build's progress bar moves), every job's exactly once."""

    def map_fn(fn: Callable[[Any], Any], jobs: Sequence[FileJob]) -> Iterator[dict[str, Any]]:
        with _torch_threads(1), task_runner(settings) as runner:
            if settings.run.task_runner == "dask":
                if settings.run.dask_address:
                    warm_dask_workers(runner.client)
                else:  # our own LocalCluster, on this host: warm here, its workers then load in parallel
                    warm_numba_cache()
            with worker_api_settings(settings):  # captured with the task context at submit time
                futures = runner.map(process_files_task, {"jobs": file_chunks(jobs, settings)})
            for fut in as_completed(futures):
                yield from fut.result()

    return map_fn


def prefect_state(settings: Settings, **preset: Any) -> PipelineState:
    """A ``PipelineState`` whose dataset build maps per-file work onto Prefect tasks."""
    return PipelineState(progress=False, map_fn=prefect_map_fn(settings), **preset)
