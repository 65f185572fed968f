"""Prefect flow ``eno-performance``: the performance job (``eno_hf.performance.job.PERFORMANCE``),
each stage a task ``eno-performance-{stage}``.

    eno run --config configs/percepiano.yaml              # this flow (ephemeral server)
    eno run --config configs/percepiano.yaml --no-prefect # the same stages in this process
    prefect deployment run 'eno-performance/local'        # this flow, on a work pool

Thin wrapper over ``eno_hf.performance.job.run_performance`` with ``prefect_runner``. The
stages cache themselves (embeddings by shard, stage markers under
``{data_root}/performance/{name}/stages/``), so Prefect's own result cache is off. Returns
``PerformanceRun.to_dict()`` (``metrics``: the report, ``model``, ``registered``, ``tags``).
"""

from __future__ import annotations

import logging
from typing import Any

import eno_hf  # noqa: F401  (offline env defaults before Prefect reads its settings)
from prefect import flow

from eno_hf.config import Settings
from eno_hf.flows.runner import flow_run_name, prefect_runner, settings_of
from eno_hf.performance.job import run_performance


@flow(name="eno-performance", log_prints=True, flow_run_name=flow_run_name)
def performance_flow(config: str = "configs/percepiano.yaml", overrides: list[str] | None = None,
                     settings: Settings | None = None) -> dict[str, Any]:
    """inputs → select → cross_validate → fit → register → tag, each a Prefect task; returns
    ``PerformanceRun.to_dict()``."""
    log = logging.getLogger("eno_hf.flows.performance")  # INFO reaches the run's logs (runner.route_eno_logs)
    s = settings_of(config, overrides, settings)
    res = run_performance(s, runner=prefect_runner)
    log.info("performance model %s registered as %s", res.model_dir, res.registered)
    return res.to_dict()
