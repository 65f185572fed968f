"""Dask workers and glibc's malloc: the nanny's ``MALLOC_TRIM_THRESHOLD_=65536`` made per-file
work ~2.7x slower (``eno_hf.flows.runner.restore_malloc_thresholds``); the flow's own
LocalCluster spawns its workers without it, and a worker of a running cluster undoes it; its
timers (profiler, event-loop tick) are quieted (``LOCAL_CLUSTER_CONFIG``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import eno_hf.flows.runner as runner
from eno_hf.config import load_config

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_own_cluster_workers_spawn_without_the_trim_threshold() -> None:
    import dask

    settings = load_config("small", ["run.task_runner=dask"])
    with dask.config.set({"distributed.nanny.pre-spawn-environ": {"MALLOC_TRIM_THRESHOLD_": 65536,
                                                                  "OMP_NUM_THREADS": 1}}):
        runner.task_runner(settings)
        environ = dask.config.get("distributed.nanny.pre-spawn-environ")
    assert runner.DASK_TRIM_ENV not in environ
    assert environ["OMP_NUM_THREADS"] == 1  # the thread limits stay


def test_restore_runs_once_and_only_where_the_variable_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "_malloc_restored", False)
    monkeypatch.delenv(runner.DASK_TRIM_ENV, raising=False)
    assert runner.restore_malloc_thresholds() is False
    monkeypatch.setenv(runner.DASK_TRIM_ENV, "65536")
    assert runner.restore_malloc_thresholds() is (sys.platform == "linux")
    assert runner.restore_malloc_thresholds() is False  # once per process


SCRIPT = r"""
import os
from distributed import Client, LocalCluster
from eno_hf.config import load_config
from eno_hf.flows.runner import task_runner
def env():
    return os.environ.get("MALLOC_TRIM_THRESHOLD_")
def timers():
    import dask
    return dask.config.get("distributed.worker.profile.enabled"), dask.config.get("distributed.admin.tick.interval")
if __name__ == "__main__":
    task_runner(load_config("small", ["run.task_runner=dask"]))  # sets the spawn environment and LOCAL_CLUSTER_CONFIG
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as c, Client(c) as cl:
        print("worker:", cl.submit(env).result())
        print("timers:", cl.submit(timers).result())
"""


@pytest.mark.slow
def test_spawned_worker_has_no_trim_threshold(tmp_path: Path) -> None:
    script = tmp_path / "probe.py"
    script.write_text(SCRIPT)
    proc = subprocess.run([sys.executable, str(script)], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "worker: None" in proc.stdout, proc.stdout
    assert "timers: (False, '1s')" in proc.stdout, proc.stdout  # the nanny passed LOCAL_CLUSTER_CONFIG on


def test_own_cluster_timers_quiet_and_a_running_cluster_keeps_its_own() -> None:
    import dask
    import distributed  # noqa: F401  (its import loads the distributed.* defaults)

    keys = list(runner.LOCAL_CLUSTER_CONFIG)
    dask_defaults = {"distributed.worker.profile.enabled": True, "distributed.admin.tick.interval": "20ms",
                     "distributed.admin.system-monitor.interval": "500ms", "distributed.scheduler.work-stealing": True}
    assert set(dask_defaults) == set(keys)
    with dask.config.set(dask_defaults):  # restored afterwards
        runner.task_runner(load_config("small", ["run.task_runner=dask", "run.dask_address=tcp://127.0.0.1:8786"]))
        assert {k: dask.config.get(k) for k in keys} == dask_defaults  # untouched
        runner.task_runner(load_config("small", ["run.task_runner=dask"]))
        assert {k: dask.config.get(k) for k in keys} == runner.LOCAL_CLUSTER_CONFIG
