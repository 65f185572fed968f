"""prefect.yaml and deployments/: every flow deployed, parameters valid, job templates schema-valid,
and (slow) the real thing: server + process pool + deploy + worker + `prefect deployment run --watch`.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import jsonschema
import pytest
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENTS = PROJECT_ROOT / "deployments"


def _prefect_yaml() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text())


def _flow_of(entrypoint: str):
    path, name = entrypoint.split(":")
    return getattr(importlib.import_module(path[:-3].replace("/", ".")), name)


def test_every_flow_has_a_deployment() -> None:
    from prefect import Flow

    flows = set()
    for f in sorted((PROJECT_ROOT / "flows").glob("*.py")):
        mod = importlib.import_module(f"eno_hf.flows.{f.stem}")
        flows |= {f"flows/{f.name}:{n}" for n, obj in vars(mod).items()
                  if isinstance(obj, Flow) and obj.__module__ == mod.__name__}
    deployed = {d["entrypoint"] for d in _prefect_yaml()["deployments"]}
    assert flows == deployed
    assert {"flows/tagging.py:eno_pipeline", "flows/build.py:eno_build", "flows/train.py:eno_train",
            "flows/evaluate.py:eno_evaluate", "flows/register.py:eno_register", "flows/tag.py:eno_tag",
            "flows/embed.py:eno_embed"} <= flows


def test_deployment_parameters_are_valid_settings() -> None:
    """What `prefect deployment run` would pass: the flow accepts the keys, pydantic Settings accepts
    the values (a wrong key or value raises ConfigError here, as it would fail the flow run)."""
    from eno_hf.config import ConfigError
    from eno_hf.flows.runner import settings_of

    seen = set()
    for d in _prefect_yaml()["deployments"]:
        flow = _flow_of(d["entrypoint"])
        key = (flow.name, d["name"])
        assert key not in seen, f"duplicate deployment {key}"
        seen.add(key)
        params = d.get("parameters", {})
        assert set(params) <= set(inspect.signature(flow.fn).parameters), d
        s = settings_of(params.get("config"), params.get("overrides"), params.get("settings"))
        assert s.dataset.name
        assert d["work_pool"]["name"] in {"eno-local", "eno-gpu"}
    with pytest.raises(ConfigError, match="epochs"):
        settings_of("configs/small.yaml", ["train.epochs=many"])


def test_nightly_schedule() -> None:
    nightly = [d for d in _prefect_yaml()["deployments"] if d["name"] == "nightly"]
    assert len(nightly) == 1 and nightly[0]["entrypoint"] == "flows/tagging.py:eno_pipeline"
    (sched,) = nightly[0]["schedules"]
    assert sched["cron"] == "0 3 * * *" and sched["timezone"] == "UTC"


# Fields of the workers' job configuration classes: ProcessJobConfiguration (installed) and, from the
# prefect-docker / prefect-kubernetes API references, DockerWorkerJobConfiguration and
# KubernetesWorkerJobConfiguration (not installed here).
DOCKER_FIELDS = {"command", "env", "labels", "name", "image", "image_pull_policy", "networks", "network_mode",
                 "auto_remove", "volumes", "stream_output", "mem_limit", "memswap_limit", "privileged",
                 "container_create_kwargs", "registry_credentials"}
K8S_FIELDS = {"command", "env", "labels", "name", "namespace", "job_manifest", "cluster_config",
              "job_watch_timeout_seconds", "pod_watch_timeout_seconds", "stream_output"}


@pytest.mark.parametrize("name", ["process-gpu", "docker-gpu", "kubernetes-gpu"])
def test_gpu_job_templates_are_schema_valid(name: str) -> None:
    from prefect.server.schemas.actions import WorkPoolCreate
    from prefect.utilities.templating import apply_values
    from prefect.workers.process import ProcessJobConfiguration

    template = json.loads((DEPLOYMENTS / f"{name}.json").read_text())
    kind = {"process-gpu": "process", "docker-gpu": "docker", "kubernetes-gpu": "kubernetes"}[name]
    WorkPoolCreate(name=f"eno-{name}", type=kind, base_job_template=template)  # the server's own check
    variables = template["variables"]
    jsonschema.Draft202012Validator.check_schema(variables)
    defaults = {k: v["default"] for k, v in variables["properties"].items() if "default" in v}
    jsonschema.validate(defaults, variables)
    job = apply_values(template["job_configuration"], defaults)
    fields = {"process": set(ProcessJobConfiguration.model_fields), "docker": DOCKER_FIELDS,
              "kubernetes": K8S_FIELDS}[kind]
    assert set(job) <= fields, set(job) - fields
    if kind == "process":
        assert job["env"]["CUDA_VISIBLE_DEVICES"] == "0" and job["env"]["HF_HUB_OFFLINE"] == "1"
    elif kind == "docker":
        (req,) = job["container_create_kwargs"]["device_requests"]
        assert req["capabilities"] == [["gpu"]] and req["count"] == 1
    else:
        pod = job["job_manifest"]["spec"]["template"]["spec"]
        assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
        assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])


# ----------------------------------------------------------------------------- the real server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _procs_with(marker: str) -> list[int]:
    """PIDs whose environment carries ``ENO_TEST_MARKER=marker`` (every child of server/worker does)."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            if f"ENO_TEST_MARKER={marker}".encode() in (d / "environ").read_bytes().split(b"\0"):
                found.append(int(d.name))
        except OSError:
            continue
    return found


def _run_record(api: str, flow_run_id: str) -> tuple[list, list]:
    """The flow run's artifacts and every one of its log lines, read with Prefect's client."""
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import (ArtifactFilter, ArtifactFilterFlowRunId, LogFilter,
                                                LogFilterFlowRunId)
    from prefect.client.schemas.sorting import LogSort

    with SyncPrefectClient(api) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
        logs: list = []
        while True:  # the server returns at most 200 per call
            page = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])),
                                    limit=200, offset=len(logs), sort=LogSort.TIMESTAMP_ASC)
            logs += page
            if len(page) < 200:
                return artifacts, logs


def _stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.mark.slow
@pytest.mark.flow
def test_pipeline_deployment_runs_on_a_real_server(tmp_path: Path, fourq_dir: Path) -> None:
    if not Path("/proc/self/environ").exists():
        pytest.skip("needs /proc to check for stray processes")
    port, marker = _free_port(), uuid.uuid4().hex
    api = f"http://127.0.0.1:{port}/api"
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_API_URL": api,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "INFO",
           "ENO_HOME": str(PROJECT_ROOT), "ENO_TEST_MARKER": marker,
           "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")]),
           "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
    env.pop("ENO_FAULTS", None)
    logs = {n: (tmp_path / f"{n}.log").open("w") for n in ("server", "worker")}

    def prefect(*args: str, timeout: float = 900, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", *args], cwd=PROJECT_ROOT,
                              env={**env, **kw}, capture_output=True, text=True, timeout=timeout)

    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)], cwd=tmp_path, env=env, stdout=logs["server"],
                              stderr=subprocess.STDOUT, start_new_session=True)
    worker = None
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "server did not come up in 180 s"
            time.sleep(1)

        setup = subprocess.run(["bash", str(DEPLOYMENTS / "setup-work-pools.sh")], env=env,
                               capture_output=True, text=True, timeout=900)  # 5 prefect CLI calls; ~90 s each at load 19
        assert setup.returncode == 0, setup.stdout[-2000:] + setup.stderr[-2000:]
        pools = {p["name"]: p for p in httpx.post(f"{api}/work_pools/filter", json={}).json()}
        assert pools["eno-local"]["type"] == "process" and pools["eno-gpu"]["concurrency_limit"] == 1
        assert httpx.get(f"{api}/v2/concurrency_limits/gpu").json()["limit"] == 1

        deployed = prefect("deploy", "--all")
        assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
        names = {d["name"] for d in httpx.post(f"{api}/deployments/filter", json={}).json()}
        assert len(names) >= 3 and {"local", "nightly", "gpu"} <= names
        nightly = [d for d in httpx.post(f"{api}/deployments/filter", json={}).json() if d["name"] == "nightly"]
        assert nightly[0]["schedules"][0]["schedule"]["cron"] == "0 3 * * *"

        # One transient I/O failure is injected into the register task of the flow run.
        worker = subprocess.Popen([sys.executable, "-m", "prefect", "worker", "start", "--pool", "eno-local",
                                   "--limit", "1"], cwd=PROJECT_ROOT, env={**env, "ENO_FAULTS": "register:1"},
                                  stdout=logs["worker"], stderr=subprocess.STDOUT, start_new_session=True)
        overrides = [f"paths.data_root={tmp_path / 'data'}", "dataset.limit=12", "dataset.num_workers=2", "run.files_per_task=4",
                     "train.epochs=1", "train.batch_size=8", "registry.clearml=false", "run.baselines=false"]
        run = prefect("deployment", "run", "eno-pipeline/local", "--params", json.dumps({"overrides": overrides}),
                      "--watch", "--watch-timeout", "900", timeout=960)
        worker_log = (tmp_path / "worker.log").read_text()
        assert run.returncode == 0 and "Completed" in run.stdout, (
            run.stdout[-3000:] + run.stderr[-2000:] + "\nWORKER:\n" + worker_log[-6000:])
        flow_run_id = re.search(r"UUID: ([0-9a-f-]{36})", run.stdout).group(1)

        flow_run = httpx.get(f"{api}/flow_runs/{flow_run_id}").json()
        assert flow_run["state_type"] == "COMPLETED"
        version = next(p.name for p in (tmp_path / "data" / "datasets" / "4q").iterdir() if p.is_dir())
        assert flow_run["name"] == f"eno-pipeline/4q@{version}"  # named after what it did

        # what the UI shows: the artifacts (report + metrics table) and eno's own log lines
        artifacts, run_logs = _run_record(api, flow_run_id)
        by_key = {a.key: a for a in artifacts}
        assert set(by_key) == {"eno-tagger-report", "eno-tagger-metrics"}, by_key
        table = by_key["eno-tagger-metrics"]
        assert table.type == "table"
        rows = json.loads(table.data) if isinstance(table.data, str) else table.data
        metrics = json.loads(next((tmp_path / "data" / "runs").glob("*/eval/metrics.json")).read_text())
        score = next(r for r in rows if r["head"] == "score")
        assert score["model"] == pytest.approx(metrics["score"])
        assert {r["head"] for r in rows} == {h for h, m in metrics.items() if isinstance(m, dict)} | {"score"}
        report = by_key["eno-tagger-report"].data
        assert "## Dataset" in report and "## Test metrics" in report and "registered model" in report
        eno_lines = [lg for lg in run_logs if lg.name.startswith("eno_hf") and lg.level == 20]
        said = " ".join(lg.message for lg in eno_lines)
        for fact in (f"dataset 4q@{version}", "12 written", "model trained into", "test metrics", "registered as",
                     "tagged 2 files"):
            assert fact in said, (fact, said[-3000:])
        assert not [(lg.name, lg.message) for lg in run_logs if lg.level >= 30]  # no WARNING (or worse)
        task_runs = httpx.post(f"{api}/task_runs/filter",
                               json={"flow_runs": {"id": {"any_": [flow_run_id]}}}).json()
        by_name = {t["name"].rsplit("-", 1)[0]: t for t in task_runs if not t["name"].startswith("eno-process-file")}
        assert set(by_name) == {"eno-dataset", "eno-train", "eno-evaluate", "eno-register", "eno-tag"}, by_name
        assert all(t["state_type"] == "COMPLETED" for t in task_runs)
        register = by_name["eno-register"]
        assert register["run_count"] == 2  # failed once (injected), retried, completed
        states = [s["name"] for s in httpx.get(f"{api}/task_run_states/",
                                              params={"task_run_id": register["id"]}).json()]
        assert "AwaitingRetry" in states or "Retrying" in states, states
        messages = " ".join(x["message"] for x in httpx.post(
            f"{api}/logs/filter", json={"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200}).json())
        assert "injected transient I/O error" in messages  # the failure is in the run's logs
        assert sum(t["name"].startswith("eno-process-files") for t in task_runs) == 3  # 12 files, 4 per task
        assert httpx.get(f"{api}/v2/concurrency_limits/gpu").json()["active_slots"] == 0  # slots given back
        assert list((tmp_path / "data" / "hub" / "eno-tagger").glob("v1/config.json"))

        # The server's scheduler has created the nightly runs (it failed with SQLAlchemy 2.1: "bulk DML").
        deadline = time.monotonic() + 180
        while True:
            scheduled = httpx.post(f"{api}/flow_runs/filter", json={
                "deployments": {"id": {"any_": [nightly[0]["id"]]}},
                "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}}}).json()
            if scheduled or time.monotonic() > deadline:
                break
            time.sleep(5)
        assert scheduled, (tmp_path / "server.log").read_text()[-3000:]
        assert all(r["expected_start_time"][11:16] == "03:00" for r in scheduled)
        assert "bulk DML" not in (tmp_path / "server.log").read_text()
    finally:
        if worker is not None:
            _stop(worker)
        _stop(server)
        for fh in logs.values():
            fh.close()
    deadline = time.monotonic() + 20
    while _procs_with(marker) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _procs_with(marker) == [], "stray processes after shutdown"
    assert worker.returncode is not None and server.returncode is not None
