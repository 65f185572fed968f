"""Prefect flow ``eno-build-dataset``: per-file processing as cached, retried Prefect tasks.

    python -m flows.build --config configs/small.yaml --set dataset.limit=20

Thin wrapper: ``eno_hf.data.build.build_dataset(settings, map_fn=...)`` does everything; this
flow only replaces its process pool with Prefect tasks (``process_file_task``) run on a
``ThreadPoolTaskRunner`` with ``dataset.num_workers`` threads. Each task:

- calls ``eno_hf.data.build.process_file`` (which calls ``process_recording`` and writes the
  per-file ``.arrow`` cache) and returns a small outcome dict — rejected inputs come back as
  ``{"status": "rejected", reason, ...}`` values, not task failures;
- retries twice (1 s apart) on unexpected errors (I/O on a network share);
- is cached by Prefect under a key made of the file's content hash and the processing config
  hash (``FileJob.cache_key``), never by hashing arrays or inputs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import eno_hf  # noqa: F401  (offline env defaults, PREFECT_HOME, before Prefect reads settings)
from prefect import flow, get_run_logger, task
from eno_hf.config import Settings, load_config
from eno_hf.data.build import BuildResult, FileJob, _torch_threads, build_dataset, process_file
from flows.runners import task_runner


def file_cache_key(context: Any, parameters: dict[str, Any]) -> str:
    """Prefect cache key of ``process_file_task``: content hash + processing config hash (+ crop)."""
    job: FileJob = parameters["job"]
    return f"eno-process-file-{job.cache_key()}"


@task(name="eno-process-file", retries=2, retry_delay_seconds=1, cache_key_fn=file_cache_key,
      persist_result=True)
def process_file_task(job: FileJob) -> dict[str, Any]:
    """One file → per-file cache; returns ``process_file``'s small outcome dict (no arrays)."""
    return process_file(job)


def prefect_map_fn(settings: Settings) -> Callable[[Callable[[Any], Any], Sequence[FileJob]], list[dict]]:
    """A ``map_fn`` for ``build_dataset`` running ``process_file_task`` on the configured task runner
    (``flows.runners.task_runner``: threads by default, Dask with ``run.task_runner=dask``).

    An outcome restored from Prefect's cache whose ``.arrow`` file has since been deleted is recomputed
    directly, so the two caches can never disagree.
    """

    def map_fn(fn: Callable[[Any], Any], jobs: Sequence[FileJob]) -> list[dict[str, Any]]:
        with _torch_threads(1), task_runner(settings) as runner:
            futures = runner.map(process_file_task, {"job": list(jobs)})
            outcomes = futures.result()
        out = []
        for job, res in zip(jobs, outcomes):
            if res.get("status") == "ok" and not Path(res["cache_path"]).is_file():
                res = fn(job)
            out.append(res)
        return out

    return map_fn


@flow(name="eno-build-dataset", log_prints=True, validate_parameters=False)
def build_dataset_flow(config: str = "configs/small.yaml", overrides: list[str] | None = None,
                       progress: bool = False) -> BuildResult:
    """Build (or reuse) the versioned dataset of ``config`` + ``overrides``.

    Returns:
        ``eno_hf.data.build.BuildResult`` (path, version, dataset, report, cache_hit).
    """
    settings = load_config(config, list(overrides or []))
    result = build_dataset(settings, progress=progress,
                           map_fn=prefect_map_fn(settings))
    acc = result.report["accounting"]
    get_run_logger().info("%s %s (%s): %s", settings.dataset.name, result.version,
                          "cache hit" if result.cache_hit else f"{result.n_processed} files processed",
                          acc["statement"])
    return result


if __name__ == "__main__":  # pragma: no cover
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default="configs/small.yaml")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    res = build_dataset_flow(args.config, args.overrides)
    print(f"{res.path} version={res.version} cache_hit={res.cache_hit}")
