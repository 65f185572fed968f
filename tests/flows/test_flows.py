"""flows/: the Prefect runner's policies, task bodies via ``.fn``, and real (ephemeral) flow runs.

The real runs happen in a subprocess with its own ``PREFECT_HOME`` (ephemeral server + SQLite in
tmp_path), so they never touch ``~/.eno/prefect``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from eno_hf.config import load_config
from eno_hf.data.build import FileJob, cache_path_for
from eno_hf.data.recording import Recording
from eno_hf.tagging import STAGES

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _job(tmp_path: Path, rec: Recording) -> FileJob:
    from eno_hf.audio.io import content_hash

    cfg = load_config("configs/base.yaml", ["dataset.features.fingerprint=false"]).dataset
    h = content_hash(rec.path)
    return FileJob(rec, cfg, h, str(cache_path_for(tmp_path / "data", rec, h, cfg)))


def test_process_files_task_returns_rejections_as_values(tmp_path: Path) -> None:
    from eno_hf.flows.runner import process_files_task

    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16_000 * 3, dtype=np.float32), 16_000)
    t = np.arange(16_000 * 11) / 16_000
    tone = tmp_path / "tone.wav"
    sf.write(tone, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16_000)
    job = _job(tmp_path, Recording("t", tone))
    rejected, out = process_files_task.fn([_job(tmp_path, Recording("s", silent)), job])  # order kept
    assert rejected["status"] == "rejected" and rejected["reason"] == "silent" and rejected["path"] == str(silent)
    assert out["status"] == "ok" and out["n_segments"] == 1
    assert Path(out["cache_path"]).is_file() and out["cache_path"] == job.cache_path
    assert "waveform" not in out  # small outcome: arrays stay in the cache file


def test_task_policies_follow_stage_resources() -> None:
    from prefect.cache_policies import NO_CACHE

    from eno_hf.flows.runner import _stage_task, process_files_task

    tasks = {s.name: _stage_task(s) for s in STAGES}
    assert tasks["register"].retries == 3 and tasks["register"].timeout_seconds == 1800
    assert tasks["register"].retry_delay_seconds == [2, 4, 8]  # exponential backoff
    assert tasks["train"].retries == 0 and tasks["dataset"].retries == 0
    assert process_files_task.retries == 3 and process_files_task.retry_condition_fn is not None
    assert all(t.cache_policy is NO_CACHE for t in [*tasks.values(), process_files_task])


def test_file_chunks_cover_every_job_once_in_order() -> None:
    from eno_hf.flows.runner import file_chunks

    jobs = list(range(13))  # any sequence: chunking never looks inside a job
    auto = file_chunks(jobs, load_config("configs/small.yaml", ["run.task_runner=dask", "run.dask_workers=2"]))
    assert [j for c in auto for j in c] == jobs and len(auto) == 7  # ceil(13 / 8) = 2 per chunk
    fixed = file_chunks(jobs, load_config("configs/small.yaml", ["run.files_per_task=5"]))
    assert [len(c) for c in fixed] == [5, 5, 3]
    assert file_chunks([], load_config("configs/small.yaml")) == []


def test_only_os_errors_are_retried() -> None:
    from prefect.states import Failed

    from eno_hf.errors import RejectedInput
    from eno_hf.utils.faults import TransientIOError
    from eno_hf.flows.runner import retry_on_os_error

    def state(exc):
        return Failed(data=exc)

    assert retry_on_os_error(None, None, state(TransientIOError("x")))
    assert retry_on_os_error(None, None, state(TimeoutError("slow share")))
    assert not retry_on_os_error(None, None, state(ValueError("bug")))
    assert not retry_on_os_error(None, None, state(RejectedInput("a.mp3", "silent", "")))


def test_settings_of_prefers_given_settings() -> None:
    from eno_hf.flows.runner import settings_of

    s = load_config("configs/small.yaml", ["train.epochs=2"])
    assert settings_of(settings=s) is s
    assert settings_of(settings=s, overrides=["train.epochs=4"]).train.epochs == 4
    assert settings_of("configs/small.yaml", ["train.epochs=3"]).train.epochs == 3


SCRIPT = r"""
import json, os, sys
from pathlib import Path
from eno_hf.flows.ingest import eno_ingest
from eno_hf.flows.build import eno_build
from eno_hf.flows.register import eno_register
cfg, data_root = sys.argv[1], sys.argv[2]
ov = [f"paths.data_root={data_root}", "dataset.limit=6", "dataset.num_workers=2", "dataset.segment.segment_s=10",
      "dataset.segment.hop_s=10", "dataset.split.train=0.5", "dataset.split.validation=0.25",
      "dataset.split.test=0.25", "registry.clearml=false"]
manifest = eno_ingest(cfg, ov)
first_state = eno_build(cfg, ov, return_state=True)
first = first_state.result()
second = eno_build(cfg, ov)

from prefect import flow, task
from eno_hf.flows.runner import flow_run_name, gpu_slot

@task
def gpu_work():
    with gpu_slot():  # no "gpu" limit on the ephemeral server: nothing held, nothing warned
        return 1

@flow(name="eno-gpu-probe", flow_run_name=flow_run_name)
def gpu_probe(config: str = cfg):
    return gpu_work()

gpu_state = gpu_probe(return_state=True)
model = Path(data_root) / "model"
model.mkdir()
(model / "config.json").write_text("{}")
os.environ["ENO_FAULTS"] = "register:1"
reg = eno_register(str(model), cfg, ov, return_state=True)
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, LogFilter, LogFilterFlowRunId
from prefect.logging.handlers import APILogWorker
APILogWorker.drain_all(timeout=30)
with get_client(sync_client=True) as client:
    runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[reg.state_details.flow_run_id])))
    attempts = {r.name.rsplit("-", 1)[0]: r.run_count for r in runs}
    states = [st.name for r in runs for st in client.read_task_run_states(r.id)]
    seen = {}
    for key, st in (("build", first_state), ("register", reg), ("gpu", gpu_state)):
        run_id = st.state_details.flow_run_id
        seen[key] = {
            "name": client.read_flow_run(run_id).name,
            "artifacts": [{"key": a.key, "type": a.type, "data": a.data}
                          for a in client.read_artifacts(artifact_filter=ArtifactFilter(
                              flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))],
            "logs": [{"name": lg.name, "level": lg.level, "message": lg.message}
                     for lg in client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))]}
print(json.dumps({"manifest": manifest, "first": first, "second": second, "attempts": attempts,
                  "states": states, "register": reg.result(), "register_state": reg.type.value, "seen": seen},
                 default=str))
"""


@pytest.mark.slow
@pytest.mark.flow
def test_real_flow_runs(tmp_path: Path, fourq_dir: Path, prefect_api_url: str) -> None:
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_LOGGING_LEVEL": "WARNING",
           "PREFECT_API_URL": prefect_api_url}  # the session's server: what the runs recorded is read back
    env.pop("ENO_FAULTS", None)
    proc = subprocess.run([sys.executable, "-c", SCRIPT, "configs/small.yaml", str(tmp_path / "data")],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    manifest = json.loads(Path(out["manifest"]).read_text())
    assert manifest["dataset"] == "4q" and manifest["n_recordings"] == 360
    assert "quadrant" in manifest["vocab"] and manifest["rejected"] == []
    first, second = out["first"], out["second"]
    assert [first["cache_hit"], second["cache_hit"]] == [False, True] and second["version"] == first["version"]
    assert first["accounting"]["invariant_holds"] and first["accounting"]["n_written"] == 6
    assert (Path(first["path"]) / "qc_report.json").is_file()
    # the injected transient I/O error was retried by Prefect and the flow completed
    assert out["register_state"] == "COMPLETED"
    assert out["register"]["registered"] == str(tmp_path / "data" / "hub" / "eno-tagger" / "v1")
    assert out["attempts"] == {"eno-register": 2}, out  # the server recorded two attempts ...
    assert "AwaitingRetry" in out["states"] or "Retrying" in out["states"], out["states"]  # ... and the retry
    seen = out["seen"]
    # runs are named after what they do; the build run, once the version was known, by it
    assert seen["build"]["name"] == f"eno-build/4q@{first['version']}", seen["build"]["name"]
    assert seen["register"]["name"].startswith("eno-register/data/model ")
    assert seen["gpu"]["name"].startswith("eno-gpu-probe/4q ")
    # eno's own INFO lines reach the run's logs although PREFECT_LOGGING_LEVEL=WARNING
    build_logs = seen["build"]["logs"]
    assert any(lg["name"] == "eno_hf.tagging" and lg["level"] == 20 and f"dataset 4q@{first['version']}" in lg["message"]
               and "6 written" in lg["message"] for lg in build_logs), build_logs
    assert any(lg["name"] == "eno_hf.flows.build" and lg["level"] == 20 for lg in build_logs), build_logs
    assert any("registered as" in lg["message"] for lg in seen["register"]["logs"]), seen["register"]["logs"]
    # no warning: not even for the "gpu" concurrency limit this server does not have
    for key in ("build", "gpu"):
        assert not [lg for lg in seen[key]["logs"] if lg["level"] >= 30], seen[key]["logs"]
    # artifacts: the build's markdown report with the QC summary; the register run's report
    (report,) = seen["build"]["artifacts"]
    assert report["key"] == "4q-dataset" and report["type"] == "markdown"
    assert "written: 6" in report["data"] and "| train |" in report["data"]
    assert [a["key"] for a in seen["register"]["artifacts"]] == ["eno-tagger-report"]
    assert str(tmp_path / "data" / "hub" / "eno-tagger" / "v1") in seen["register"]["artifacts"][0]["data"]


def test_run_report_markdown_and_metrics_rows(tmp_path: Path) -> None:
    from eno_hf.evaluation.run_report import metrics_rows, run_report_markdown
    from eno_hf.flows.runner import artifact_key

    metrics = {"quadrant": {"kind": "singlelabel", "accuracy": 0.5, "f1_macro": 0.4, "balanced_accuracy": None,
                            "roc_auc_macro": float("nan")}, "score": 0.4}
    baselines = {"label_prior": {"quadrant": {"kind": "singlelabel", "f1_macro": 0.1}, "score": 0.1}}
    rows = metrics_rows(metrics, baselines)
    assert rows[1] == {"head": "quadrant", "metric": "f1_macro", "model": 0.4, "label_prior": 0.1}
    assert rows[2]["model"] is None and rows[3]["model"] is None  # undefined: None, never NaN (JSON)
    assert rows[-1] == {"head": "score", "metric": "mean", "model": 0.4, "label_prior": 0.1}
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "confusion_quadrant.png").write_bytes(b"")
    iv = {"mean": 0.7, "ci_low": 0.6, "ci_high": 0.8}
    cv = {"n_folds": 5, "n_repeats": 3, "n_recordings": 360, "candidates": {"default": {"metrics": {"quadrant/f1_macro": iv}}}}
    qc = {"accounting": {"n_inputs": 13, "n_written": 12, "n_rejected": 1, "invariant_holds": True},
          "rejected_by_reason": {"too_short": 1}, "rejected": [{"path": "a.mp3", "reason": "too_short", "detail": "2 s"}],
          "splits": {"train": {"n_recordings": 8, "n_segments": 16, "n_groups": 4}}}
    md = run_report_markdown(title="eno-pipeline/4q@abc", dataset={"name": "4q", "version": "abc"}, qc_report=qc,
                             metrics=metrics, baselines=baselines, cv_report=cv, eval_dir=tmp_path / "eval",
                             registered=tmp_path / "hub" / "v1", cached={"dataset": True, "train": False})
    assert md.startswith("# eno-pipeline/4q@abc") and "Reused (inputs unchanged): dataset." in md
    assert "inputs: 13, written: 12, rejected: 1" in md and "| too_short | 1 |" in md and "| a.mp3 | too_short | 2 s |" in md
    assert "| quadrant | f1_macro | 0.400 | 0.100 |" in md and "| score | mean | 0.400 | 0.100 |" in md
    assert "0.700 [0.600, 0.800]" in md  # cross-validated interval
    assert str(tmp_path / "eval" / "confusion_quadrant.png") in md and str(tmp_path / "hub" / "v1") in md
    assert artifact_key("Eno_Tagger", "metrics") == "eno-tagger-metrics" and artifact_key("4q", "dataset") == "4q-dataset"
