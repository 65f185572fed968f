"""Prefect flow ``eno-tag``: tag audio files with a model into a JSONL file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eno_hf.flows.runner import flow_run_name, prefect_runner, publish_run_artifacts, settings_of
from prefect import flow

from eno_hf.config import Settings
from eno_hf.registry.hub import resolve
from eno_hf.tagging import PipelineState, run_stages


@flow(name="eno-tag", log_prints=True, flow_run_name=flow_run_name)
def eno_tag(paths: list[str], model: str, out_dir: str, config: str = "small",
            overrides: list[str] | None = None, settings: Settings | None = None) -> dict[str, Any]:
    """The ``tag`` stage: files/folders ``paths`` with ``model`` (directory, ``name`` or
    ``name@vN``) into ``{out_dir}/tags.jsonl``. Returns ``{tags, n_files}``."""
    s = settings_of(config, overrides, settings)
    s = s.model_copy(update={"run": s.run.model_copy(update={"tag_files": [Path(p) for p in paths]})})
    state = PipelineState(model_dir=resolve(model, s.paths.hub()).resolve(), run_dir=Path(out_dir).resolve())
    state = run_stages(s, ["tag"], state=state, runner=prefect_runner)
    publish_run_artifacts(s, state)
    return {"tags": str(state.tags), "n_files": sum(1 for _ in state.tags.open(encoding="utf-8"))}
