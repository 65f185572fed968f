"""Prefect flow ``eno-pipeline``: the main job (``eno_hf.tagging.STAGES``), each stage a task.

Entry points: ``eno run`` (ephemeral server) and ``prefect deployment run 'eno-pipeline/local'``
(``prefect.yaml``). Parameters: ``config`` + ``overrides``, or a full ``settings`` object
(validated by the pydantic ``Settings``).
"""

from __future__ import annotations

import logging
from typing import Any

from eno_hf.flows.runner import flow_run_name, prefect_runner, prefect_state, publish_run_artifacts, settings_of
from prefect import flow

from eno_hf.config import Settings
from eno_hf.tagging import RunResult, run_stages


log = logging.getLogger("eno_hf.flows.tagging")


@flow(name="eno-pipeline", log_prints=True, flow_run_name=flow_run_name)
def eno_pipeline(config: str = "small", overrides: list[str] | None = None,
                 settings: Settings | None = None) -> dict[str, Any]:
    """dataset → baselines → train → evaluate → register → tag; publishes the run's report and
    metrics table as artifacts (``publish_run_artifacts``).

    Returns:
        ``RunResult.to_dict()``: paths of dataset, model, registered model, evaluation, tags,
        the test metrics, the baselines and which stages were reused (``cached``).
    """
    s = settings_of(config, overrides, settings)
    state = run_stages(s, state=prefect_state(s), runner=prefect_runner)
    result = RunResult.from_state(state)
    publish_run_artifacts(s, state)
    log.info("model %s registered as %s (reused: %s)", result.model, result.registered,
             ", ".join(k for k, v in result.cached.items() if v) or "nothing")
    return result.to_dict()
