"""Prefect flow ``eno-clarity``: the clarity job (``eno_hf.clarity.job.CLARITY``), one
Prefect task per step.

    eno clarity run --config configs/clarity.yaml        # the CLI (no Prefect)
    eno run --config configs/clarity.yaml                 # this flow (ephemeral server)
    prefect deployment run 'eno-clarity/local'            # this flow, on a work pool

Thin wrapper over ``eno_hf.clarity.job.run_clarity`` with ``prefect_runner``: each step (init,
generate, scan, normalize, verify, extract, analyze, train, export) runs as a task
``eno-clarity-{step}``, retried once on unexpected errors. The steps cache themselves by content
hash (``.cache/{step}.json`` in the work dir), so Prefect's own result cache is off. Returns the
same summary as ``eno clarity run --json``.
"""

from __future__ import annotations

import logging
from typing import Any

import eno_hf  # noqa: F401  (offline env defaults before Prefect reads its settings)
from prefect import flow

from eno_hf.clarity.job import run_clarity
from eno_hf.config import Settings
from eno_hf.flows.runner import flow_run_name, prefect_runner, settings_of


@flow(name="eno-clarity", log_prints=True, flow_run_name=flow_run_name)
def clarity_flow(config: str = "configs/clarity.yaml", overrides: list[str] | None = None,
                 skip_init: bool = False, skip_generate: bool = False,
                 settings: Settings | None = None) -> dict[str, Any]:
    """Run every clarity step as a Prefect task; returns ``run_clarity``'s summary."""
    logger = logging.getLogger("eno_hf.flows.clarity")  # INFO reaches the run's logs (runner.route_eno_logs)
    settings = settings_of(config, overrides, settings)
    res = run_clarity(settings, skip_init=skip_init, skip_generate=skip_generate, runner=prefect_runner,
                      progress=lambda n, r: logger.info("%s: %.1f s%s", n, r.get("elapsed_s") or 0,
                                                        " (cached)" if r.get("cache_hit") else ""))
    logger.info("features: %s; model: %s; onnx: %s", res["features_csv"], res["model"], res["onnx"])
    return res
