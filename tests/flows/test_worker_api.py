"""Dask workers report to the flow's own Prefect API: ``eno_hf.flows.runner.worker_api_settings`` puts
the ephemeral server's URL into the settings prefect-dask ships with each task, for workers on
this machine only (else each worker process starts its own ephemeral server, measured ~14 s each,
and its task runs are out of the flow's sight)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.flow]

SCRIPT = r"""
import json, logging
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.context import serialize_context
from prefect.settings import get_current_settings
from eno_hf.config import load_config
from eno_hf.flows.runner import worker_api_settings

warnings = []
logging.getLogger("eno_hf.flows.runner").addHandler(type("H", (logging.Handler,), {"emit": lambda s, r: warnings.append(r.getMessage())})())

@flow
def probe() -> dict:
    s = load_config("configs/small.yaml")
    with get_client(sync_client=True) as c:
        flow_api = str(c.api_url).rstrip("/")
    out = {"flow_api": flow_api, "before": get_current_settings().api.url}
    for name, runner, address in (("local", "dask", "tcp://127.0.0.1:8786"), ("own", "dask", None),
                                  ("remote", "dask", "tcp://10.11.12.13:8786"), ("threads", "threads", None)):
        s.run.task_runner, s.run.dask_address = runner, address
        with worker_api_settings(s):
            st = serialize_context()["settings_context"]["settings"]  # what a Dask worker hydrates
            url = (st.get("api") or {}).get("url") if isinstance(st, dict) else st.api.url
            out[name] = str(url) if url else None
    out["after"] = get_current_settings().api.url
    return out

print(json.dumps({**probe(), "warnings": warnings}))
"""


def test_worker_api_settings(tmp_path: Path) -> None:
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_LOGGING_LEVEL": "WARNING"}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["before"] is None and out["after"] is None  # ephemeral mode, restored after the context
    assert out["flow_api"].startswith("http://127.0.0.1:")
    assert out["local"] == out["own"] == out["flow_api"]  # shipped to local workers
    assert out["remote"] is None and out["threads"] is None
    assert any("10.11.12.13" in w and "PREFECT_API_URL" in w for w in out["warnings"])
