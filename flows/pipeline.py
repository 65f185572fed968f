"""Prefect flow ``eno-pipeline``: the main job (``eno_hf.pipeline.STAGES``), each stage a task.

Entry points: ``eno run`` (ephemeral server) and ``prefect deployment run 'eno-pipeline/local'``
(``prefect.yaml``). Parameters: ``config`` + ``overrides``, or a full ``settings`` object
(validated by the pydantic ``Settings``).
"""

from __future__ import annotations

from typing import Any

from eno_hf.flows.runner import prefect_runner, prefect_state, settings_of
from prefect import flow, get_run_logger

from eno_hf.config import Settings
from eno_hf.pipeline import RunResult, run_stages


@flow(name="eno-pipeline", log_prints=True)
def eno_pipeline(config: str = "small", overrides: list[str] | None = None,
                 settings: Settings | None = None) -> dict[str, Any]:
    """dataset → baselines → train → evaluate → register → tag.

    Returns:
        ``RunResult.to_dict()``: paths of dataset, model, registered model, evaluation, tags,
        the test metrics, the baselines and which stages were reused (``cached``).
    """
    s = settings_of(config, overrides, settings)
    result = RunResult.from_state(run_stages(s, state=prefect_state(s), runner=prefect_runner))
    get_run_logger().info("model %s registered as %s (reused: %s)", result.model, result.registered,
                          ", ".join(k for k, v in result.cached.items() if v) or "nothing")
    return result.to_dict()
