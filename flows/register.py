"""Prefect flow ``eno-register``: a trained model into the local hub (and ClearML)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eno_hf.flows.runner import flow_run_name, prefect_runner, publish_run_artifacts, settings_of
from prefect import flow

from eno_hf.config import Settings
from eno_hf.tagging import PipelineState, run_stages


@flow(name="eno-register", log_prints=True, flow_run_name=flow_run_name)
def eno_register(model: str, config: str = "small", overrides: list[str] | None = None,
                 settings: Settings | None = None) -> dict[str, Any]:
    """The ``register`` stage on the model directory ``model`` (its ``metrics.json``, if any, is
    recorded). Returns ``{registered, clearml}``."""
    s = settings_of(config, overrides, settings)
    state = run_stages(s, ["register"], state=PipelineState(model_dir=Path(model).resolve()),
                       runner=prefect_runner)
    publish_run_artifacts(s, state)
    return {"registered": str(state.registered), "clearml": state.clearml}
