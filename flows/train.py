"""Prefect flow ``eno-train``: dataset (reused when unchanged) → train."""

from __future__ import annotations

from typing import Any

from eno_hf.flows.runner import flow_run_name, prefect_runner, prefect_state, publish_run_artifacts, settings_of
from prefect import flow

from eno_hf.config import Settings
from eno_hf.tagging import run_stages


@flow(name="eno-train", log_prints=True, flow_run_name=flow_run_name)
def eno_train(config: str = "small", overrides: list[str] | None = None,
              settings: Settings | None = None) -> dict[str, Any]:
    """The ``dataset`` and ``train`` stages. Returns ``{dataset, version, model_dir, cached}``."""
    s = settings_of(config, overrides, settings)
    state = run_stages(s, ["dataset", "train"], state=prefect_state(s), runner=prefect_runner)
    publish_run_artifacts(s, state)
    return {"dataset": str(state.dataset_path), "version": state.dataset_version,
            "model_dir": str(state.model_dir), "cached": state.cached}
