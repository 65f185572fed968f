"""Prefect flow ``eno-evaluate``: evaluate a model on the test split of the dataset version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eno_hf.flows.runner import flow_run_name, prefect_runner, prefect_state, publish_run_artifacts, settings_of
from prefect import flow

from eno_hf.config import Settings
from eno_hf.registry.hub import resolve
from eno_hf.tagging import run_stages


@flow(name="eno-evaluate", log_prints=True, flow_run_name=flow_run_name)
def eno_evaluate(model: str | None = None, out_dir: str | None = None, config: str = "small",
                 overrides: list[str] | None = None, settings: Settings | None = None) -> dict[str, Any]:
    """``model``: a model directory, hub ``name`` or ``name@vN``; default: the model this config
    trains (trained first when missing). Returns ``{metrics, eval_dir, cached}``."""
    s = settings_of(config, overrides, settings)
    if model is None:
        state = run_stages(s, ["dataset", "train", "evaluate"], state=prefect_state(s), runner=prefect_runner)
    else:
        model_dir = resolve(model, s.paths.hub()).resolve()
        state = run_stages(s, ["dataset"], state=prefect_state(s), runner=prefect_runner)
        state.model_dir = model_dir
        state.eval_dir = Path(out_dir) if out_dir else model_dir.parent / f"eval-{state.dataset_version}"
        state = run_stages(s, ["evaluate"], state=state, runner=prefect_runner)
    publish_run_artifacts(s, state)
    return {"metrics": state.metrics, "eval_dir": str(state.eval_dir), "cached": state.cached}
