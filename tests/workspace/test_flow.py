"""flows/workspace.py: the tasks run the library steps (``task.fn``; no Prefect server), and one real
flow run (twice) through the ephemeral Prefect server."""

from __future__ import annotations

import pytest


def test_flow_tasks_run_the_library_steps(make_settings):
    from eno_hf.flows.workspace import create_task, synthesize_task, validate_task

    s = make_settings("workspace.synth.per_category=1")
    out = create_task.fn(s)
    assert out["samples"] == 0
    assert synthesize_task.fn(s)["created"] == 4
    rep = validate_task.fn(s)
    assert rep["counts"]["by_origin"] == {"synthetic": 4}
    assert "features extracted" in {c["check"] for c in rep["checks"] if not c["passed"]}


FLOW_SCRIPT = r"""
import json, sys
from eno_hf.flows.workspace import workspace_flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
root = sys.argv[1]
ov = [f"paths.data_root={root}", "workspace.dataset_id=flow", "workspace.num_workers=1", "dataset.num_workers=1",
      "workspace.sources.4q-dev.limit_per_folder=1", "workspace.sources.percepiano.limit=2",
      "workspace.synth.per_category=1", "workspace.target_per_category=2"]
state = workspace_flow("configs/workspace.yaml", ov, return_state=True)
first = state.result()
with get_client(sync_client=True) as client:
    runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
    tasks = sorted((r.name.rsplit("-", 1)[0], r.state_type.value) for r in runs)
    flow_run = client.read_flow_run(state.state_details.flow_run_id)
second = workspace_flow("configs/workspace.yaml", ov)
print(json.dumps({"first": first, "second": second, "tasks": tasks, "flow_state": flow_run.state_type.value}, default=str))
"""


@pytest.mark.slow
@pytest.mark.flow
def test_real_workspace_flow_run_on_the_ephemeral_server(tmp_path):
    """The flow through a real (ephemeral) Prefect server in a subprocess with its own PREFECT_HOME
    (not the session's shared server: there ``state.result()`` of the returned flow state once
    raised ``MissingResult``, the state read back from the API without its data):
    real 4Q clips + PercePiano MIDI + synthetic pieces; every task recorded COMPLETED by the server;
    a second run recomputes no features, copies or syntheses."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from ws_helpers import FOURQ, PERCEPIANO

    if not FOURQ.is_dir() or not PERCEPIANO.is_dir():
        pytest.skip("../shared/data/4q-dev or ../shared/data/percepiano absent")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_LOGGING_LEVEL": "WARNING",
           "PYTHONPATH": str(root), "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "600"}
    env.pop("PREFECT_API_URL", None)
    (tmp_path / "prefect-home").mkdir()
    proc = subprocess.run([sys.executable, "-c", FLOW_SCRIPT, str(tmp_path / "data")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=2400)  # 17 min at load 18
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    first, second = out["first"], out["second"]
    assert out["flow_state"] == "COMPLETED"
    names = {n for n, _ in out["tasks"]}
    assert names == {"workspace-create", "workspace-import", "workspace-annotate", "workspace-extract",
                     "workspace-augment", "workspace-synthesize", "workspace-split", "workspace-validate"}
    assert all(st == "COMPLETED" for _, st in out["tasks"]) and len(out["tasks"]) == 9  # extract runs twice
    assert first["import"]["samples"] == 6 and first["synthesize"]["created"] == 4
    assert first["augment"]["created"] == 6 and first["extract"]["extracted"] == 6
    assert first["extract_new"]["extracted"] == 10 and first["extract_new"]["cached"] == 6
    assert first["validate"]["counts"]["by_origin"] == {"imported": 6, "augmented": 6, "synthetic": 4}
    assert Path(first["split"]["dataset"]).is_dir() and sum(first["split"]["splits"].values()) == 16
    # resumable / idempotent: nothing recomputed, same dataset version
    assert second["extract"]["extracted"] == 0 and second["extract"]["cached"] == 16
    assert second["augment"]["created"] == 0 and second["synthesize"]["created"] == 0
    # the same dataset version: the workspace's own files written after the first build (splits/*.txt,
    # reports) are unsupported files no row names, which do not enter the version (data/build.py)
    assert second["split"]["version"] == first["split"]["version"]
    assert sum(second["split"]["splits"].values()) == 16
    # the workspace's own JSON/NPZ/TXT files are not reported as rejected inputs
    assert first["split"]["rejected"] == [] and second["split"]["rejected"] == []
