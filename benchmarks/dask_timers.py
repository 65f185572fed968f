"""What a Dask LocalCluster spends on itself while its workers compute, with Dask's default timers
and with eno's (``eno_hf.flows.runner.LOCAL_CLUSTER_CONFIG``: no worker profiler, 1-s event-loop
tick, 5-s system monitor, no work stealing), side by side in one run.

    .venv/bin/python benchmarks/dask_timers.py --seconds 40 --repeats 2

Per setting (fresh cluster each, interleaved ``--repeats`` times): a ``LocalCluster`` of
``--workers`` single-threaded worker processes (``processes=True``, no dashboard: the flow's own
cluster) runs one task per worker that computes for ``--seconds`` of its thread's CPU time
(``time.thread_time``; small matrix products under a 30-frame-deep Python stack, like per-file work
under librosa/torch calls). Overhead = CPU of the whole process tree (psutil: this process, where
the scheduler and the nannies run, plus the workers) minus the tasks' own thread CPU, as a share
of the latter, split into the scheduler process and the workers. Prints, never asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
import psutil

def work(seconds):
    import numpy as np
    t0 = time.thread_time()
    def deep(n):
        if n == 0:
            a = np.random.default_rng(0).standard_normal((256, 256))
            for _ in range(20):
                a = np.tanh(a @ a.T / 256)
            return a
        return deep(n - 1)
    while time.thread_time() - t0 < seconds:
        deep(30)
    return time.thread_time() - t0

def cpu(p):
    try:
        t = p.cpu_times()
        return t.user + t.system
    except psutil.Error:
        return None

if __name__ == "__main__":
    cfg, seconds, n_workers = json.loads(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    import dask
    import distributed
    dask.config.set({"distributed.comm.timeouts.connect": "300s", **cfg})
    me = psutil.Process()
    with distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        client.submit(work, 0.5, pure=False).result()  # imports done, workers warm
        time.sleep(1)
        procs = [me, *me.children(recursive=True)]
        before = {p.pid: cpu(p) for p in procs}
        t0 = time.perf_counter()
        task_cpu = sum(f.result() for f in [client.submit(work, seconds, pure=False) for _ in range(n_workers)])
        wall = time.perf_counter() - t0
        after = {p.pid: cpu(p) for p in procs}
    used = {pid: after[pid] - before[pid] for pid in after if after[pid] is not None and before[pid] is not None}
    print(json.dumps({"wall_s": wall, "task_cpu_s": task_cpu, "tree_cpu_s": sum(used.values()),
                      "scheduler_process_cpu_s": used.get(me.pid, 0.0)}))
"""


def run_one(cfg: dict, seconds: float, workers: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cfg), str(seconds), str(workers)],
                          capture_output=True, text=True, env=env, timeout=30 * seconds + 600)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=40.0, help="thread CPU seconds of work per worker")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    sys.path.insert(0, str(PROJECT_ROOT))
    from eno_hf.flows.runner import LOCAL_CLUSTER_CONFIG

    settings = {"dask defaults": {}, "eno (LOCAL_CLUSTER_CONFIG)": LOCAL_CLUSTER_CONFIG}
    load = os.getloadavg()[0]
    print(f"dask timers benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
          f"load {load:.2f}; {args.workers} workers x {args.seconds:g} s of work, {args.repeats} repeats", flush=True)
    rows: dict[str, list[dict]] = {name: [] for name in settings}
    for _ in range(args.repeats):
        for name, cfg in settings.items():
            r = run_one(cfg, args.seconds, args.workers)
            rows[name].append(r)
            over = r["tree_cpu_s"] - r["task_cpu_s"]
            print(f"  {name:28s} wall {r['wall_s']:6.1f} s  work {r['task_cpu_s']:6.1f} CPU s  overhead "
                  f"{over:5.2f} CPU s ({100 * over / r['task_cpu_s']:5.2f} %): scheduler + nannies "
                  f"{r['scheduler_process_cpu_s']:.2f} s, workers {over - r['scheduler_process_cpu_s']:.2f} s", flush=True)
    print("\nmedian overhead (% of the work's CPU):")
    for name, rs in rows.items():
        pct = sorted(100 * (r["tree_cpu_s"] - r["task_cpu_s"]) / r["task_cpu_s"] for r in rs)
        print(f"  {name:28s} {pct[len(pct) // 2]:.2f} %  (all: {', '.join(f'{p:.2f}' for p in pct)})")


if __name__ == "__main__":
    main()
