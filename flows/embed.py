"""Prefect flow ``eno-embed``: dataset (reused when unchanged) → companion embeddings of every segment."""

from __future__ import annotations

from typing import Any

from eno_hf.flows.runner import flow_run_name, prefect_runner, prefect_state, publish_run_artifacts, settings_of
from prefect import flow

from eno_hf.config import Settings
from eno_hf.tagging import run_stages, select_stages


@flow(name="eno-embed", log_prints=True, flow_run_name=flow_run_name)
def eno_embed(config: str = "small", overrides: list[str] | None = None,
              settings: Settings | None = None) -> dict[str, Any]:
    """The ``dataset`` stage, then the ``embed`` stage (``eno_hf.embeddings.companion``; run even
    when ``embed.use_for_training`` is off). Returns ``{dataset, version, embeddings, cached}``."""
    s = settings_of(config, overrides, settings)
    state = run_stages(s, ["dataset"], state=prefect_state(s), runner=prefect_runner)
    state.update(prefect_runner(select_stages(["embed"])[0], s, state))
    publish_run_artifacts(s, state)
    return {"dataset": str(state.dataset_path), "version": state.dataset_version,
            "embeddings": str(state.embeddings), "cached": state.cached}
