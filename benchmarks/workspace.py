"""Run time of the README's workspace example (`eno dataset all`), cold and warm, per step.

Runs, as subprocesses from the project root, on a fresh data root and a fresh FluidSynth render
cache (what a fresh clone sees):

1. cold: ``eno dataset all --config CONFIG --json`` (4Q audio + PercePiano MIDI, augmentation,
   synthesis, split into the versioned dataset, validation);
2. warm: the same command again (everything cached: content-hash ids, features on disk, copies
   found by provenance, the dataset build's per-file cache);
3. train: ``eno train --config CONFIG --dataset {dataset_id}`` (the emotion recognizer on the
   workspace's DatasetDict; ``--no-train`` skips it).

and prints, side by side, each step's wall and CPU seconds (user + system of the process and its
worker processes, from ``eno dataset all``'s own ``steps.timings``), the totals of each
subprocess (wall; CPU from ``os.wait4`` rusage, children included), the peak RSS, the machine's
load average and core count. CPU time is the figure to compare across machines; on a shared
machine the wall time is mostly waiting for a core.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/workspace.py [--config configs/workspace.yaml]
        [--set key=value ...] [--root DIR] [--no-train]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STEPS = ["create", "import", "annotate", "extract", "augment", "synthesize", "extract_new", "split"]


def _run(args: list[str], env: dict[str, str], log: Path) -> dict:
    """Run ``python -m eno_hf.cli ARGS``; wall, CPU (rusage incl. children), peak RSS, last JSON line."""
    t0 = time.perf_counter()
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "eno_hf.cli", *args], cwd=PROJECT_ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=err, text=True)
        out = proc.stdout.read()
        _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    rc = os.waitstatus_to_exitcode(status)
    last = None
    for line in reversed(out.strip().splitlines()):
        if line.startswith("{"):
            last = json.loads(line)
            break
    return {"rc": rc, "wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "user_s": ru.ru_utime,
            "sys_s": ru.ru_stime, "max_rss_mb": ru.ru_maxrss / 1024.0, "json": last, "log": str(log)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/workspace.yaml")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="override key=value (repeatable)")
    ap.add_argument("--root", default=None, help="data root (default: a new temporary directory)")
    ap.add_argument("--no-train", action="store_true")
    a = ap.parse_args()

    root = Path(a.root or tempfile.mkdtemp(prefix="eno-ws-bench-")).resolve()
    env = {**os.environ, "ENO_RENDER_CACHE": str(root / "render-cache"),
           "PYTHONPATH": str(PROJECT_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    sets = [f"paths.data_root={root / 'data'}", *a.sets]
    base = ["--config", a.config, *sum((["--set", s] for s in sets), [])]
    load0 = os.getloadavg()
    runs = {"cold": _run(["dataset", "all", *base, "--json"], env, root / "cold.log"),
            "warm": _run(["dataset", "all", *base, "--json"], env, root / "warm.log")}
    ds_id = None
    if runs["cold"]["json"]:
        ds_id = Path(runs["cold"]["json"]["steps"]["split"]["dataset"]).parent.name
    if not a.no_train and ds_id:
        runs["train"] = _run(["train", *base, "--dataset", ds_id, "--json"], env, root / "train.log")
    load1 = os.getloadavg()

    print(f"eno dataset all benchmark  ({os.cpu_count()} cores; load average {load0[0]:.1f} at start, "
          f"{load1[0]:.1f} at end; config {a.config}; root {root})")
    cold = (runs["cold"]["json"] or {}).get("steps", {})
    warm = (runs["warm"]["json"] or {}).get("steps", {})
    print(f"{'step':<14}{'cold wall s':>12}{'cold CPU s':>12}{'warm wall s':>12}{'warm CPU s':>12}")
    for st in STEPS:
        c, w = cold.get("timings", {}).get(st, {}), warm.get("timings", {}).get(st, {})
        print(f"{st:<14}{c.get('wall_s', float('nan')):>12.1f}{c.get('cpu_s', float('nan')):>12.1f}"
              f"{w.get('wall_s', float('nan')):>12.1f}{w.get('cpu_s', float('nan')):>12.1f}")
    print(f"{'whole command':<14}{runs['cold']['wall_s']:>12.1f}{runs['cold']['cpu_s']:>12.1f}"
          f"{runs['warm']['wall_s']:>12.1f}{runs['warm']['cpu_s']:>12.1f}   (imports + validate included)")
    for name, r in runs.items():
        print(f"{name:<6} exit {r['rc']}  wall {r['wall_s']:.1f} s  CPU {r['cpu_s']:.1f} s "
              f"(user {r['user_s']:.1f} + sys {r['sys_s']:.1f})  peak RSS {r['max_rss_mb']:.0f} MB  log {r['log']}")
    if runs["cold"]["json"]:
        val = runs["cold"]["json"]["validation"]
        counts = val.get("counts", {})
        print(f"samples {counts.get('samples')} by origin {counts.get('by_origin')} by kind {counts.get('by_kind')}; "
              f"scores {val.get('scores')}; splits {cold.get('split', {}).get('splits')}")
    if "train" in runs and runs["train"]["json"]:
        print(f"model {runs['train']['json'].get('model')}")
    return 0 if all(r["rc"] in (0, 1) for r in runs.values()) else 1   # 1 = a score below threshold


if __name__ == "__main__":
    raise SystemExit(main())
