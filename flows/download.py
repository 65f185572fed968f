"""Prefect flow ``eno-download``: fetch the audio listed by URL in a dataset's metadata.

Thin wrapper over ``eno_hf.data.download.download_dataset_audio`` (concurrency, retries with
backoff, resumable partial downloads, checksums, per-URL failures are the library's). The flow
adds Prefect's view: one ``io`` task (``eno_hf.flows.runner.IO_POLICY``: retried with backoff on
``OSError``, e.g. the data root's share went away), and the counts as the flow's return value. Never part of the default main job.
"""

from __future__ import annotations

from typing import Any

import eno_hf  # noqa: F401  (offline env defaults, PREFECT_HOME, before Prefect reads settings)
import logging

from eno_hf.flows.runner import IO_POLICY, flow_run_name, settings_of
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from eno_hf.config import Settings
from eno_hf.data.download import download_dataset_audio


@task(name="eno-download-urls", cache_policy=NO_CACHE, persist_result=False, timeout_seconds=6 * 3600, **IO_POLICY)
def download_task(settings: Settings) -> dict[str, Any]:
    res = download_dataset_audio(settings, progress=True)
    return {"manifest": str(res.manifest_path), "report": str(res.report_path),
            "downloaded": len(res.downloaded), "failed": len(res.failed)}


log = logging.getLogger("eno_hf.flows.download")


@flow(name="eno-download", log_prints=False, flow_run_name=flow_run_name)
def eno_download(config: str = "small", overrides: list[str] | None = None,
                 settings: Settings | None = None) -> dict[str, Any]:
    """Download the dataset's audio by URL; returns ``{manifest, report, downloaded, failed}``."""
    out = download_task(settings_of(config, overrides, settings))
    log.info("downloaded %d, failed %d (report: %s)", out["downloaded"], out["failed"], out["report"])
    return out
