"""`accelerate launch` training (2 CPU processes, DDP over gloo) on a built dataset larger than the
memory it may use: the page cache cannot hold it, so every epoch streams it from disk.

    .venv/bin/python benchmarks/train_scale.py --data-root /tmp/eno-scale/data-20000-pool2-... \\
        --dataset scale-audio --memory-gb 3 --epochs 1 --json /tmp/eno-scale/train-scale.json

What it does: runs ``accelerate launch --config_file configs/accelerate/cpu_2proc.yaml -m eno_hf.cli
train -c configs/mel-cnn.yaml --dataset NAME`` (the log-mel CNN reads each row's waveform from the
Arrow dataset every step: there is no feature cache to hide the dataset's size) with a small CNN
(``--channels``, ``--blocks``), inside a cgroup (v1 memory controller) whose limit
(``--memory-gb``) counts the processes' memory *and* the page cache of the files they read, so the
kernel must evict dataset pages as training goes (Linux ``memory.limit_in_bytes``; needs root;
without it the run has no limit and says so). The page cache is dropped first
(``/proc/sys/vm/drop_caches``) so the first epoch reads from disk.

Printed: the dataset's size on disk beside the limit; rc; wall time; training rows per second; the
cgroup's peak usage (processes + page cache) and how often it hit the limit (``failcnt``: reclaim,
not failure); the peak resident set of each training process and its peak anonymous memory
(RssAnon: what cannot be evicted), sampled every 0.5 s; the bytes read from disk
(``/proc/PID/io`` ``read_bytes`` summed over the training processes; the launcher's own figure
takes in its children's when they exit); the steps and the logged losses from ``trainer_state.json``. Never asserts; the last stdout line is a JSON object with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CGROUP_ROOT = Path("/sys/fs/cgroup/memory")


def dir_bytes(path: Path) -> int:
    """Total size in bytes of the regular files under ``path``."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def make_cgroup(limit_bytes: int) -> Path | None:
    """A fresh v1 memory cgroup with ``limit_bytes`` (processes + page cache), or None where it
    cannot be made (no v1 memory controller, not root)."""
    if not (CGROUP_ROOT / "memory.limit_in_bytes").is_file():
        return None
    cg = CGROUP_ROOT / f"eno-train-scale-{os.getpid()}"
    try:
        cg.mkdir(exist_ok=True)
        (cg / "memory.limit_in_bytes").write_text(str(limit_bytes))
    except OSError as exc:
        print(f"no cgroup ({exc}): the run has no memory limit", file=sys.stderr)
        return None
    return cg


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


class Sampler(threading.Thread):
    """Every 0.5 s: peak RSS and RssAnon of each process in the tree of ``pid``, and its disk reads."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        import psutil

        self.root = psutil.Process(pid)
        self.peak_rss: dict[int, int] = {}
        self.peak_anon: dict[int, int] = {}
        self.read_bytes: dict[int, int] = {}
        self.cmd_of: dict[int, str] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        import psutil

        while not self._halt.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                break
            for p in procs:
                try:
                    with open(f"/proc/{p.pid}/status") as fh:
                        status = {ln.split(":")[0]: ln.split()[1] for ln in fh if ln.startswith(("VmRSS", "RssAnon"))}
                    with open(f"/proc/{p.pid}/io") as fh:
                        io = {ln.split(":")[0]: int(ln.split()[1]) for ln in fh}
                    if p.pid not in self.cmd_of:
                        self.cmd_of[p.pid] = " ".join(p.cmdline()[1:4])[:60]
                except (OSError, psutil.Error, IndexError, ValueError):
                    continue
                self.peak_rss[p.pid] = max(self.peak_rss.get(p.pid, 0), int(status.get("VmRSS", 0)) * 1024)
                self.peak_anon[p.pid] = max(self.peak_anon.get(p.pid, 0), int(status.get("RssAnon", 0)) * 1024)
                self.read_bytes[p.pid] = max(self.read_bytes.get(p.pid, 0), io.get("read_bytes", 0))
            self._halt.wait(0.5)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", type=Path, required=True, help="data root holding the built dataset")
    ap.add_argument("--dataset", default="scale-audio", help="dataset name under {data-root}/datasets")
    ap.add_argument("--memory-gb", type=float, default=3.0, help="cgroup limit: processes + page cache")
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--batch-size", type=int, default=16, help="per process")
    ap.add_argument("--channels", type=int, default=8, help="model.mel_cnn_channels")
    ap.add_argument("--blocks", type=int, default=3, help="model.mel_cnn_blocks")
    ap.add_argument("--max-steps", type=int, default=-1, help="stop after this many optimizer steps (-1: epochs)")
    ap.add_argument("--no-drop-caches", action="store_true", help="keep the page cache as it is")
    ap.add_argument("--timeout-s", type=float, default=3600.0)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    ds_dir = args.data_root / "datasets" / args.dataset
    if not ds_dir.is_dir():
        sys.exit(f"{ds_dir}: no such dataset (build it first, e.g. benchmarks/scale.py --audio 20k)")
    ds_bytes = dir_bytes(ds_dir)
    limit = int(args.memory_gb * 2**30)
    out_root = Path(f"/tmp/eno-train-scale-{os.getpid()}")
    sets = [f"paths.data_root={args.data_root}", f"paths.hub_dir={out_root}/hub", f"train.epochs={args.epochs}", f"train.max_steps={args.max_steps}",
            f"train.batch_size={args.batch_size}", f"model.mel_cnn_channels={args.channels}",
            f"model.mel_cnn_blocks={args.blocks}", "registry.clearml=false", "train.num_workers=0"]
    cmd = [str(Path(sys.executable).with_name("accelerate")), "launch", "--config_file",
           "configs/accelerate/cpu_2proc.yaml", "--main_process_port", "0", "-m", "eno_hf.cli", "-q", "train",
           "-c", "configs/mel-cnn.yaml", "--dataset", args.dataset, "--json"]
    for s in sets:
        cmd += ["--set", s]
    env = dict(os.environ, ACCELERATE_USE_CPU="true", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=str(PROJECT_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               PREFECT_HOME=str(out_root / "prefect"), ENO_PROGRESS="0")
    print(f"dataset {ds_dir}: {ds_bytes / 2**30:.2f} GiB on disk; memory limit {args.memory_gb:g} GiB "
          f"(processes + page cache)", flush=True)
    cg = make_cgroup(limit)
    if not args.no_drop_caches:
        try:
            os.sync()
            Path("/proc/sys/vm/drop_caches").write_text("1")
        except OSError as exc:
            print(f"page cache not dropped ({exc})", flush=True)

    def enter_cgroup() -> None:
        if cg is not None:
            (cg / "cgroup.procs").write_text(str(os.getpid()))

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=enter_cgroup)
    sampler = Sampler(proc.pid)
    sampler.start()
    try:
        stdout, stderr = proc.communicate(timeout=args.timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    sampler.stop()
    res: dict[str, Any] = {"rc": proc.returncode, "wall_s": round(wall, 1), "dataset_gib": round(ds_bytes / 2**30, 2),
                           "limit_gib": args.memory_gb if cg is not None else None, "cmd": " ".join(cmd)}
    if cg is not None:
        res["cgroup_peak_gib"] = round(_read_int(cg / "memory.max_usage_in_bytes") / 2**30, 2)
        res["cgroup_failcnt"] = _read_int(cg / "memory.failcnt")
        try:
            cg.rmdir()
        except OSError:
            pass
    res["processes"] = [{"cmd": sampler.cmd_of[pid], "peak_rss_mb": round(sampler.peak_rss[pid] / 2**20),
                         "peak_anon_mb": round(sampler.peak_anon[pid] / 2**20),
                         "read_gib": round(sampler.read_bytes.get(pid, 0) / 2**30, 2)}
                        for pid in sampler.cmd_of if sampler.peak_rss.get(pid, 0) > 200 * 2**20]
    # the launcher's own count takes in its children's once they exit: the training processes' sum
    res["read_gib_total"] = round(sum(b for pid, b in sampler.read_bytes.items() if pid != proc.pid) / 2**30, 2)
    outs = [json.loads(ln) for ln in (stdout or "").splitlines() if ln.startswith("{")]
    model_dir = Path(outs[0]["model"]) if outs and outs[0].get("model") else None
    res["model"] = str(model_dir) if model_dir else None
    states = sorted((model_dir.parent / "checkpoints").rglob("trainer_state.json"),
                    key=lambda p: p.stat().st_mtime) if model_dir else []
    if states:
        st = json.loads(states[-1].read_text())
        losses = [h["loss"] for h in st.get("log_history", []) if "loss" in h]
        res.update(global_step=st.get("global_step"), first_loss=losses[0] if losses else None,
                   last_loss=losses[-1] if losses else None)
        n_rows = st.get("global_step", 0) * args.batch_size * 2
        res["rows_per_s"] = round(n_rows / wall, 1) if wall else None
    print(f"rc {res['rc']}; wall {res['wall_s']} s; steps {res.get('global_step')}, "
          f"{res.get('rows_per_s')} rows/s; loss {res.get('first_loss')} -> {res.get('last_loss')}")
    if cg is not None:
        print(f"cgroup peak {res['cgroup_peak_gib']} GiB of {args.memory_gb:g} (limit reached {res['cgroup_failcnt']} times)")
    print(f"read from disk {res['read_gib_total']} GiB (dataset {res['dataset_gib']} GiB)")
    for p in res["processes"]:
        print(f"  {p['cmd']}: peak RSS {p['peak_rss_mb']} MB, peak RssAnon {p['peak_anon_mb']} MB, read {p['read_gib']} GiB")
    if res["rc"] != 0:
        print(stderr[-3000:], file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
