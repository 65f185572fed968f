"""Prefect flow ``eno-dataset-workspace``: the workspace job (``eno_hf.workspace.steps.WORKSPACE``),
each stage a task ``workspace-{step}``.

Thin wrapper over ``eno_hf.jobs.run_stages`` with ``prefect_runner`` (each step opens the
workspace, works, saves the manifest atomically and returns a JSON-able summary); bad inputs are
the library's per-file rejections, never task failures. Tasks run one after another (each depends
on the manifest the previous one wrote); a failed run resumes where it stopped because every step
skips finished work (content-hash ids, features already on disk, copies found by provenance).

The module also keeps each step as a standalone task (``create_task`` ... ``validate_task``) for
flows that compose them.
"""

from __future__ import annotations

import logging
from typing import Any

import eno_hf  # noqa: F401  (offline env defaults, PREFECT_HOME, before Prefect reads settings)
from prefect import flow, task

from eno_hf.config import Settings
from eno_hf.flows.runner import flow_run_name, prefect_runner, settings_of
from eno_hf.jobs import run_stages
from eno_hf.workspace import steps

create_task = task(name="workspace-create")(steps.step_create)
import_task = task(name="workspace-import")(steps.step_import)
annotate_task = task(name="workspace-annotate")(steps.step_annotate)
extract_task = task(name="workspace-extract", retries=1, retry_delay_seconds=5)(steps.step_extract)
augment_task = task(name="workspace-augment", retries=1, retry_delay_seconds=5)(steps.step_augment)
synthesize_task = task(name="workspace-synthesize")(steps.step_synthesize)


@task(name="workspace-split")
def split_task(settings: Settings) -> dict[str, Any]:
    return steps.step_split(settings, progress=True)


@task(name="workspace-validate")
def validate_task(settings: Settings) -> dict[str, Any]:
    return steps.step_validate(settings).to_dict()


@flow(name="eno-dataset-workspace", log_prints=False, flow_run_name=flow_run_name)
def workspace_flow(config: str = "configs/workspace.yaml", overrides: list[str] | None = None,
                   settings: Settings | None = None) -> dict[str, Any]:
    """create → import → annotate → extract → augment → synthesize → extract → split → validate.

    Returns ``{step: summary}`` (``eno_hf.workspace.steps.workspace_result``);
    ``summary["validate"]["passed"]`` tells whether every score reached its threshold (the flow
    itself does not fail on low scores: the CLI exits non-zero).
    """
    log = logging.getLogger("eno_hf.flows.workspace")  # INFO reaches the run's logs (runner.route_eno_logs)
    settings = settings_of(config, overrides, settings)
    state = run_stages(steps.WORKSPACE, settings, state=steps.WorkspaceState(), runner=prefect_runner)
    out = steps.workspace_result(settings, state)
    log.info("workspace %s: dataset %s, scores %s", out["create"]["workspace"], out["split"]["dataset"],
             out["validate"]["scores"])
    return out
