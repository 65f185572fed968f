"""Prefect flow ``eno-build``: build (or reuse) the versioned dataset, per-file work as tasks."""

from __future__ import annotations

import logging
from typing import Any

from eno_hf.flows.runner import flow_run_name, prefect_runner, prefect_state, publish_run_artifacts, settings_of
from prefect import flow

from eno_hf.config import Settings
from eno_hf.tagging import run_stages


log = logging.getLogger("eno_hf.flows.build")


@flow(name="eno-build", log_prints=True, flow_run_name=flow_run_name)
def eno_build(config: str = "small", overrides: list[str] | None = None,
              settings: Settings | None = None) -> dict[str, Any]:
    """The ``dataset`` stage. Returns ``{path, version, cache_hit, accounting}``."""
    s = settings_of(config, overrides, settings)
    state = run_stages(s, ["dataset"], state=prefect_state(s), runner=prefect_runner)
    acc = state.qc_report["accounting"]
    publish_run_artifacts(s, state)
    log.info("%s %s%s: %s", s.dataset.name, state.dataset_version,
             " (cache hit)" if state.cached["dataset"] else "", acc["statement"])
    return {"path": str(state.dataset_path), "version": state.dataset_version,
            "cache_hit": state.cached["dataset"], "accounting": acc}
