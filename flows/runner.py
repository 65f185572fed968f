"""How Prefect runs eno's stages: the runner behind every flow in ``flows/`` (no stage logic here).

- ``prefect_runner(stage, settings, state)``: the ``eno_hf.jobs.run_stages`` seam, for every job
  (``eno_hf.jobs.JOBS``). Each stage becomes one Prefect task (``Stage.task_name``, default
  ``eno-{stage}``); its scheduling follows ``Stage.resource``:

  ======== =========================================================================
  ``io``   3 retries, exponential backoff (2 s, 4 s, 8 s, ±50 % jitter), only on ``OSError``
           (``TimeoutError``, ``ConnectionError``, NFS hiccups; a bad input is not retried);
           30 min timeout (enforced: stage tasks run in the flow's main thread).
  ``gpu``  holds one slot of the Prefect global concurrency limit ``gpu`` while it runs, so a
           worker never runs two GPU stages at once (``prefect gcl create gpu --limit 1``;
           without that limit — e.g. the ephemeral server of ``eno run`` — nothing is held,
           quietly: Prefect's "do not exist" warning is logged at DEBUG).
  ``cpu``  run once (``Stage.retries`` more times, 5 s apart, on any error, when set).
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

What a flow run shows in the Prefect UI:

- its name (``flow_run_name``, given to every flow): ``{flow}/{dataset}`` and a UTC time stamp,
  or ``{flow}/{model}`` for flows on a given model; once a stage's output tells more (the job's
  state has ``run_label(settings, changes)``: the tagging job's dataset stage knows the version),
  ``prefect_runner`` renames the run, e.g. ``{flow}/{dataset}@{version}``;
- eno's own log lines (loggers under ``eno_hf``: dataset size, metrics, where the model went,
  progress) at INFO in the run's logs: ``route_eno_logs()`` (run on import) gives the ``eno_hf``
  logger Prefect's API log handler and level INFO when nobody set a level (the CLI's ``-v``/``-q``
  win). ``PREFECT_LOGGING_LEVEL`` only filters Prefect's own loggers;
- artifacts (``publish_run_artifacts``): a markdown report ``{model}-report`` / ``{dataset}-dataset``
  (dataset QC, metrics beside baselines, cross-validated intervals, paths of plots and models,
  ``eno_hf.evaluation.run_report``) and a table artifact ``{model}-metrics``.

No Prefect result persistence and no Prefect cache: eno's own caches (per file, per dataset
version, per stage marker) decide what is reused.
"""

from __future__ import annotations

import logging
import os
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timezone
from pathlib import Path
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
from eno_hf.jobs import Stage
from eno_hf.tagging import PipelineState

log = logging.getLogger(__name__)


def route_eno_logs() -> None:
    """Send the ``eno_hf`` loggers' records to the Prefect API (the flow run's Logs tab): add
    Prefect's ``APILogHandler`` to the ``eno_hf`` logger unless it has one (the env default
    ``PREFECT_LOGGING_EXTRA_LOGGERS=eno_hf`` of ``eno_hf.env`` already adds it where eno is imported
    before Prefect sets up logging; a worker's flow-run process imports Prefect first), and set
    its level when no level was set: ``eno_hf.utils.logs.configured_level()`` (a parent ``eno -v``/``-q``
    exports it as ``ENO_LOG_LEVEL``), INFO by default. Records logged outside a
    flow or task run are not sent (``PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW=ignore``)."""
    from prefect.logging.handlers import APILogHandler

    eno_log = logging.getLogger("eno_hf")
    if not any(isinstance(h, APILogHandler) for h in eno_log.handlers):
        eno_log.addHandler(APILogHandler())
    if eno_log.level == logging.NOTSET:
        try:  # the level a parent `eno -v/-q` exported (ENO_LOG_LEVEL), else INFO
            from eno_hf.utils.logs import configured_level
        except ImportError:
            eno_log.setLevel(logging.INFO)
        else:
            eno_log.setLevel(configured_level())


route_eno_logs()

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


def gpu_slot() -> AbstractContextManager[Any]:
    """Hold one slot of the global concurrency limit ``gpu`` while inside; where the server has no
    such limit, nothing is held and nothing is warned (Prefect's message goes to DEBUG, as for its
    own tag-based limits)."""
    try:
        from prefect.concurrency._sync import concurrency as _concurrency

        return _concurrency(GPU_LIMIT, occupy=1, strict=False, suppress_warnings=True)
    except (ImportError, TypeError):  # a Prefect without that (private) switch: the public API
        return concurrency(GPU_LIMIT, occupy=1, strict=False)


STAGE_RETRY_DELAY_S = 5
"""Seconds between the ``Stage.retries`` of a non-``io`` stage."""


def _run_stage(stage: Stage, settings: Settings, state: Any) -> dict[str, Any]:
    with gpu_slot() if stage.resource == "gpu" else nullcontext():
        return stage.fn(settings, state)


def _stage_task(stage: Stage):
    opts: dict[str, Any] = {"name": stage.task_name or f"eno-{stage.name}", "cache_policy": NO_CACHE,
                            "persist_result": False, "tags": [f"eno-{stage.resource}"]}
    if stage.resource == "io":
        opts.update(IO_POLICY, timeout_seconds=IO_TIMEOUT_S)
    elif stage.retries:
        opts.update(retries=stage.retries, retry_delay_seconds=STAGE_RETRY_DELAY_S)
    return task(_run_stage, **opts)


def prefect_runner(stage: Stage, settings: Settings, state: Any) -> dict[str, Any]:
    """Run ``stage`` of any job as a Prefect task (``stage.task_name``, default ``eno-{stage.name}``;
    policy by ``stage.resource``, see the module docstring). Must be called inside a flow run.
    When the job's state has ``run_label(settings, changes)`` and it names the stage's output
    (the tagging job: ``{dataset}@{version}`` after the dataset stage), the flow run is renamed
    ``{flow}/{label}``."""
    out = _stage_task(stage)(stage, settings, state)
    label = getattr(state, "run_label", None)
    what = label(settings, out) if callable(label) else None
    if what:
        rename_flow_run(what)
    return out


# ----------------------------------------------------------------------------- what the UI shows
def _settings_from_parameters(params: Mapping[str, Any]) -> Settings:
    given = params.get("settings")
    if isinstance(given, Mapping):
        given = Settings.model_validate(given)
    return settings_of(params.get("config", "small"), params.get("overrides"), given)


def _model_label(model: Any) -> str:
    """A hub name (``eno-tagger``, ``eno-tagger@v3``) as is; a path by its last two parts."""
    text = str(model)
    return "/".join(Path(text).parts[-2:]) if "/" in text or "\\" in text else text


def flow_run_name() -> str:
    """The ``flow_run_name`` of every eno flow (Prefect calls it when the run starts):
    ``{flow}/{what} {UTC time}``, ``what`` = the ``model`` parameter when the flow has one, else
    the dataset name from the run's ``config``/``overrides``/``settings`` (left out when they do
    not load: the flow run then fails with the config error itself)."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    job = ctx.flow.name if ctx is not None else "eno"
    params = dict(ctx.parameters or {}) if ctx is not None else {}
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%MZ")
    what = None
    if params.get("model"):
        what = _model_label(params["model"])
    else:
        try:
            what = _settings_from_parameters(params).dataset.name
        except Exception:  # noqa: BLE001 - a name is no place to fail a run
            what = None
    return f"{job}/{what} {stamp}" if what else f"{job} {stamp}"


def rename_flow_run(what: str) -> None:
    """Rename the current flow run ``{flow}/{what}`` (e.g. once the dataset version is known).
    Outside a flow run, or when the API refuses, nothing happens (logged at DEBUG)."""
    from prefect.client.orchestration import get_client
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None:
        return
    name = f"{ctx.flow.name}/{what}"
    try:
        with get_client(sync_client=True) as client:
            client.set_flow_run_name(ctx.flow_run.id, name)
        ctx.flow_run.name = name
    except Exception as exc:  # noqa: BLE001 - cosmetic
        log.debug("could not rename flow run %s to %s: %s", ctx.flow_run.id, name, exc)


def artifact_key(*parts: str) -> str:
    """A Prefect artifact key from ``parts``: lower case, ``[a-z0-9-]`` only (Prefect's rule)."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", "-".join(parts).lower())).strip("-") or "eno"


def publish_run_artifacts(settings: Settings, state: PipelineState) -> dict[str, str]:
    """Publish what ``state`` holds as artifacts of the current flow run.

    - markdown ``{model_name}-report`` (``{dataset}-dataset`` for runs without a model):
      ``eno_hf.evaluation.run_report.run_report_markdown`` of the dataset QC, test metrics beside the
      baselines, the dataset version's ``eno cv`` figures with intervals when present, and the paths
      of the evaluation (plots), model, registered model and tags;
    - table ``{model_name}-metrics`` (when test metrics are known): ``metrics_rows``.

    Returns:
        ``{"report": artifact id, "metrics": artifact id}`` (what was published; an API error is
        logged as a warning, not raised: the run's work is done).
    """
    import json

    from prefect.artifacts import create_markdown_artifact, create_table_artifact
    from prefect.context import FlowRunContext

    from eno_hf.evaluation.cv import report_dir
    from eno_hf.evaluation.run_report import metrics_rows, run_report_markdown

    ctx = FlowRunContext.get()
    title = ctx.flow_run.name if ctx is not None and ctx.flow_run is not None else "eno run"
    name = settings.dataset.name
    dataset = ({"name": name, "version": state.dataset_version,
                "path": str(state.dataset_path) if state.dataset_path else None}
               if state.dataset_version else None)
    cv_report = None
    if state.dataset_version and state.metrics:
        cv_path = report_dir(settings.paths.data_root, name, str(state.dataset_version)) / "cv_report.json"
        cv_report = json.loads(cv_path.read_text(encoding="utf-8")) if cv_path.is_file() else None
    has_model = bool(state.metrics or state.model_dir or state.registered)
    markdown = run_report_markdown(
        title=title, dataset=dataset, qc_report=state.qc_report, metrics=state.metrics,
        baselines=state.baselines, cv_report=cv_report, eval_dir=state.eval_dir, model_dir=state.model_dir,
        registered=state.registered, tags=state.tags, cached=state.cached)
    model_name = settings.registry.model_name
    rows = metrics_rows(state.metrics, state.baselines)
    out: dict[str, str] = {}
    try:  # the work is done: an API that refuses an artifact must not fail the run
        out["report"] = str(create_markdown_artifact(
            markdown=markdown, key=artifact_key(model_name, "report") if has_model else artifact_key(name, "dataset"),
            description=f"{title}: dataset, metrics, where the results are"))
        if rows:
            out["metrics"] = str(create_table_artifact(
                table=rows, key=artifact_key(model_name, "metrics"),
                description=f"{title}: test metrics (recording level) beside the baselines"))
    except Exception as exc:  # noqa: BLE001
        log.warning("could not publish the run's artifacts: %s", exc)
    return out


DASK_TRIM_ENV = "MALLOC_TRIM_THRESHOLD_"
"""The glibc variable Dask's nannies set for the processes they spawn (``distributed.nanny.
pre-spawn-environ``: 65,536 bytes), to hand freed memory back to the OS sooner."""

MMAP_THRESHOLD_BYTES = 32 * 2**20
TRIM_THRESHOLD_BYTES = 64 * 2**20
_malloc_restored = False


def restore_malloc_thresholds() -> bool:
    """Undo, in this process, the small glibc trim threshold a Dask nanny gave it
    (``MALLOC_TRIM_THRESHOLD_=65536``); once per process, a no-op where the variable is unset.

    Setting that variable also switches off glibc's dynamic mmap threshold, so every array over
    128 KiB is ``mmap``-ed and unmapped again and its pages faulted in anew on each use. The build's
    per-file work allocates and frees many such arrays (audio, spectrograms): measured on the
    2-core machine, 117 ms of CPU per 10-s file in a Dask worker against 44 ms in a plain process
    (42 ms in a worker spawned without the variable, 56 ms after this call). The call sets the
    thresholds ``mallopt(3)`` would have grown to (``M_MMAP_THRESHOLD`` 32 MiB, the 64-bit
    ``DEFAULT_MMAP_THRESHOLD_MAX``; ``M_TRIM_THRESHOLD`` twice that). The flow's own LocalCluster
    spawns its workers without the variable (``task_runner``); this covers workers of a running
    cluster (``run.dask_address``). Returns whether it changed anything (False off glibc).
    """
    global _malloc_restored
    if _malloc_restored or DASK_TRIM_ENV not in os.environ:
        return False
    _malloc_restored = True
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    return bool(libc.mallopt(m_mmap_threshold, MMAP_THRESHOLD_BYTES)
                and libc.mallopt(m_trim_threshold, TRIM_THRESHOLD_BYTES))


@task(name="eno-process-files", cache_policy=NO_CACHE, persist_result=False, **IO_POLICY)
def process_files_task(jobs: list[FileJob]) -> list[dict[str, Any]]:
    """A chunk of files → per-file Arrow caches; returns ``process_file``'s small outcome dict per
    file, in order (no arrays; rejected inputs are values ``{"status": "rejected", ...}``, not task
    failures). On a Dask worker, first ``restore_malloc_thresholds()``."""
    restore_malloc_thresholds()
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


LOCAL_CLUSTER_CONFIG: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.scheduler.work-stealing": False,
}
"""Dask settings of the flow's own LocalCluster: its timers off or slower. With Dask's defaults a
2-worker LocalCluster whose workers compute spent 7 % of the work's CPU on itself (measured on
the 2-core machine, 40 s of work per worker: 2.0 CPU s in the scheduler + nannies, 1.8 s in each
worker), mostly the statistical profiler sampling each worker's stack every 10 ms and the
event-loop health check every 20 ms; with these, 1.2 %. The profiler feeds only the dashboard's
profile page (the flow starts no dashboard). Work stealing has nothing to move: tasks are queued on
the scheduler until a worker thread is free (``distributed.scheduler.worker-saturation``). A
running cluster (``run.dask_address``) keeps its own settings."""


def task_runner(settings: Settings) -> TaskRunner:
    """A fresh task runner for ``settings.run.task_runner`` (see the module docstring)."""
    run = settings.run
    if run.task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        import dask

        # generous comm timeouts: on a loaded machine a worker process can take minutes to start and
        # answer (the defaults, 30 s, make LocalCluster start-up fail); nannies pass this config on
        dask.config.set({"distributed.comm.timeouts.connect": "300s", "distributed.comm.timeouts.tcp": "300s"})
        # our own LocalCluster's workers start without the nanny's small malloc trim threshold,
        # which made per-file work ~2.7x slower (``restore_malloc_thresholds``); the thread limits stay
        environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
        environ.pop(DASK_TRIM_ENV, None)
        dask.config.set({"distributed.nanny.pre-spawn-environ": environ})
        if run.dask_address:
            return DaskTaskRunner(address=run.dask_address)
        dask.config.set(LOCAL_CLUSTER_CONFIG)  # read by our scheduler here and passed on by the nannies
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
    """A ``PipelineState`` whose dataset build maps per-file work onto Prefect tasks. Progress is
    reported as everywhere (``eno_hf.utils.progress``: a bar on a terminal, INFO lines in a worker's
    log, which reach the flow run's logs)."""
    return PipelineState(progress=True, map_fn=prefect_map_fn(settings), **preset)
