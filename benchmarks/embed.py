"""Embedding benchmark: one-by-one vs batched, 1 vs 2 worker processes, and the dataset build on
1 vs 2 Dask workers.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/embed.py --clips 16

Prints (never asserts), one line per setting, side by side: segments/s, × real time (audio seconds
embedded per wall second), wall s, CPU s (this process + finished children) and the 1-min load:

1. the default encoder of ``configs/small.yaml`` (``tagger_ensemble``: jamendo-fcn + msd-fcn +
   jamendo-musicnn, ``eno_hf.embeddings.frames``) on the first ``--clips`` 4q-dev clips (~30 s each),
   torch on ONE thread everywhere, so that the worker comparison is about processes:
   one-by-one (``FrameEmbedder.embed`` per clip) vs batched (``embed_batch``, ``--batch`` clips per
   call) with the device's default pass size (``FrameEmbedder.windows_per_pass``: on CPU
   ``frames.CPU_PASS_S`` of audio) and with all ``--batch`` clips' windows in one pass;
   ``--repeats`` rounds, interleaved, medians;
2. batched in 1 vs 2 worker processes (``multiprocessing`` spawn, the clips split in two halves,
   one torch thread each; the model load is outside the timed part of each worker);
3. ``eno-build`` (the Prefect flow, ``run.task_runner=dask``) on ``--build-clips`` clips (default
   all 360 of 4q-dev) with 1 vs 2 single-threaded Dask worker processes, each build on a fresh
   data root (no cache hit), in a subprocess, in four set-ups (``--clusters``):
   (a) ``server``, production: a *running cluster* — a ``LocalCluster`` started with
   ``--preload eno_hf.flows.dask_preload`` on scheduler and workers and warmed up (imports, numba cache)
   by the benchmark, passed as ``run.dask_address`` — and a running ``prefect server start``
   (``PREFECT_API_URL``); (b) ``running``: the same cluster, with the flow's ephemeral Prefect
   server (``eno build`` without a server: its start-up is inside the run); (c) ``own``: the
   flow's *own LocalCluster* (``run.dask_workers``) and ephemeral server, both started inside the
   run; and (d) ``pool``: ``build_dataset`` called directly, no Prefect and no Dask, on
   ``dataset.num_workers`` forked processes — what two cores give this work at all. Two figures
   each: the flow's whole wall time and the per-file phase alone (``process_wall_s`` of the QC
   report: the ``eno-process-files`` tasks at the ``run.files_per_task`` default), then where
   the whole time went (outside ``build_dataset``: flow and Prefect start; the QC report's
   ``load_s``, ``hash_s``, ``process_wall_s``, ``write_s``). One untimed warm-up
   build first (cold page cache, numba's cache); then ``--repeats`` builds per setting, 1 and 2
   workers alternating, and the medians (each run is printed too).

Targets: batched never slower than one-by-one; 2 workers ≥ 1.7× one (both embedding and
build). Clips are decoded once, before anything is timed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "4q-dev"
if not DATA.is_dir():
    DATA = ROOT / ".." / ".." / "shared" / "data" / "4q-dev"


def _cpu() -> float:
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def _clips(n: int) -> list[Path]:
    files = []
    for q in ("Q1", "Q2", "Q3", "Q4"):
        files += sorted((DATA / q).glob("*.mp3"))
    files.sort(key=lambda p: (p.name[1:], p.name))  # interleave quadrants deterministically
    return files[:n]


def _embedder():
    import torch

    from eno_hf.config import load_config
    from eno_hf.embeddings.companion import embedder_spec
    from eno_hf.embeddings.frames import build_frame_embedder

    torch.set_num_threads(1)
    return build_frame_embedder(embedder_spec(load_config(ROOT / "configs/small.yaml")))


def _worker(args: tuple[list, int]) -> tuple[int, float]:
    waves, batch = args
    emb = _embedder()
    emb.embed_batch(waves[:1])  # warm-up (allocator, first-call overheads)
    t = time.perf_counter()
    for i in range(0, len(waves), batch):
        emb.embed_batch(waves[i: i + batch])
    return len(waves), time.perf_counter() - t


def _line(label: str, n: int, audio_s: float, wall: float, cpu: float, extra: str = "") -> None:
    print(f"{label:<38} {n / wall:8.2f} seg/s {audio_s / wall:8.1f} x RT   wall {wall:7.1f} s   "
          f"CPU {cpu:7.1f} s   load {os.getloadavg()[0]:5.1f} {extra}", flush=True)


BUILD = r"""
import json, sys, time
from eno_hf.flows.build import eno_build
root, n, workers, address, per_task = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
ov = [f"paths.data_root={root}", f"dataset.limit={n}", "run.task_runner=dask", f"run.dask_workers={workers}"]
if address != "-":
    ov.append(f"run.dask_address={address}")
if per_task:
    ov.append(f"run.files_per_task={per_task}")
t = time.perf_counter()
res = eno_build("configs/small.yaml", ov)
wall = time.perf_counter() - t
build = json.load(open(f"{res['path']}/qc_report.json"))["build"]
print(json.dumps({"wall": wall, "process_wall": build["process_wall_s"], "n": res["accounting"]["n_written"],
                  "hit": res["cache_hit"], "build_wall": build["wall_s"], "load": build["load_s"],
                  "hash": build["hash_s"], "write": build["write_s"]}))
"""


POOL_BUILD = r"""
import json, sys, time
from eno_hf.config import load_config
from eno_hf.data.build import build_dataset
root, n, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = load_config("configs/small.yaml", [f"paths.data_root={root}", f"dataset.limit={n}", f"dataset.num_workers={workers}"])
t = time.perf_counter()
res = build_dataset(s, progress=False)
wall = time.perf_counter() - t
b = res.report["build"]
print(json.dumps({"wall": wall, "process_wall": b["process_wall_s"], "n": res.report["accounting"]["n_written"],
                  "hit": res.cache_hit, "build_wall": b["wall_s"], "load": b["load_s"], "hash": b["hash_s"],
                  "write": b["write_s"]}))
"""


def _warm_worker() -> str:
    """Import what a build task needs (torch, librosa, eno's per-file code, Prefect's task engine)
    and run the fingerprint's librosa code once, as a long-lived cluster worker already has."""
    import numpy as np

    import eno_hf.flows.runner  # noqa: F401
    from eno_hf.features.fingerprint import fingerprint

    fingerprint(np.random.default_rng(0).standard_normal(16_000 * 3).astype(np.float32) * 0.1, 16_000)
    return "ok"


def _pool_build(n: int, workers: int) -> dict:
    """``build_dataset`` called directly (no Prefect, no Dask) with ``dataset.num_workers`` forked
    processes, in a subprocess on a fresh data root: the reference for what two cores give this work."""
    with tempfile.TemporaryDirectory(prefix="eno-bench-pool-") as tmp:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "PREFECT_HOME": f"{tmp}/prefect"}
        c0 = _cpu()
        proc = subprocess.run([sys.executable, "-c", POOL_BUILD, f"{tmp}/data", str(n), str(workers)], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=3600)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-3000:])
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        out["cpu"] = _cpu() - c0
        return out


def _build(n: int, workers: int, running_cluster: bool, files_per_task: int = 0, api_url: str | None = None) -> dict:
    """One ``eno-build`` subprocess on a fresh data root. ``running_cluster``: on a LocalCluster of
    ``workers`` started (and warmed up) here, passed as ``run.dask_address`` (long-lived workers);
    else the flow starts its own LocalCluster (start-up inside the run). ``api_url``: a running
    Prefect server's API (the production set-up, ``PREFECT_API_URL``); None: the flow's ephemeral
    server, started inside the run. ``files_per_task``: ``run.files_per_task`` (0 = the flow's default)."""
    with tempfile.TemporaryDirectory(prefix="eno-bench-embed-") as tmp, contextlib.ExitStack() as stack:
        address = "-"
        if running_cluster:
            from distributed import Client, LocalCluster

            # the scheduler and workers preload eno's modules, as docs/deployments.md says to start
            # a long-lived cluster (else the scheduler imports them when the first graph arrives,
            # stalling the cluster ~15-20 s); numba's cache is warmed per host as the flow does it
            from eno_hf.flows.runner import warm_dask_workers

            preload = ["eno_hf.flows.dask_preload"]
            cluster = stack.enter_context(LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                       dashboard_address=None, preload=preload,
                                                       scheduler_kwargs={"preload": preload}))
            client = stack.enter_context(Client(cluster))
            warm_dask_workers(client)
            client.run(_warm_worker)
            address = cluster.scheduler_address
        env = {**os.environ, "PREFECT_HOME": f"{tmp}/prefect", "PREFECT_LOGGING_LEVEL": "WARNING",
               "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        env.pop("PREFECT_API_URL", None)
        if api_url:
            env["PREFECT_API_URL"] = api_url
        c0 = _cpu()
        proc = subprocess.run([sys.executable, "-c", BUILD, f"{tmp}/data", str(n), str(workers), address,
                               str(files_per_task)], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=3600)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-3000:])
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        out["cpu"] = _cpu() - c0  # the build subprocess (and, for its own cluster, the workers)
        return out


@contextlib.contextmanager
def _prefect_server() -> Iterator[str]:
    """A ``prefect server start`` on a free loopback port with its own PREFECT_HOME; yields its API URL."""
    import socket
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="eno-bench-prefect-") as home:
        env = {**os.environ, "PREFECT_HOME": home, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        env.pop("PREFECT_API_URL", None)
        log = open(f"{home}/server.log", "w")
        server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                                   "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        api = f"http://127.0.0.1:{port}/api"
        try:
            deadline = time.monotonic() + 300
            while True:
                try:
                    with urllib.request.urlopen(f"{api}/health", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"prefect server did not start: {open(f'{home}/server.log').read()[-2000:]}")
                time.sleep(1)
            yield api
        finally:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
            log.close()


def _embedding_part(args: argparse.Namespace) -> None:
    from eno_hf.audio.io import load_audio

    emb = _embedder()
    waves = [load_audio(p, sample_rate=emb.sample_rate) for p in _clips(args.clips)]
    waves = [w[0] if isinstance(w, tuple) else w for w in waves]
    audio_s = sum(len(w) for w in waves) / emb.sample_rate
    print(f"encoder {emb.spec.key} (dim {emb.dim}), {len(waves)} clips, {audio_s:.0f} s of audio, torch 1 thread")
    emb.embed_batch(waves[:1])  # warm-up

    def one_by_one() -> None:
        for w in waves:
            emb.embed(w)

    def batched(max_windows: int | None) -> None:
        for i in range(0, len(waves), args.batch):
            emb.embed_batch(waves[i: i + args.batch], max_windows=max_windows)

    per_pass = emb.windows_per_pass()
    settings = {"one-by-one (1 process)": lambda: one_by_one(),
                f"batched x{args.batch}, {per_pass} window(s)/pass": lambda: batched(None),
                f"batched x{args.batch}, {args.batch} windows/pass": lambda: batched(args.batch)}
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in settings}
    for _ in range(args.repeats):  # interleaved: drift hits every setting alike
        for label, fn in settings.items():
            c, t = _cpu(), time.perf_counter()
            fn()
            runs[label].append((time.perf_counter() - t, _cpu() - c))
    base = float(np.median([w for w, _ in runs["one-by-one (1 process)"]]))
    for label, rs in runs.items():
        wall = float(np.median([w for w, _ in rs]))
        ratio = "" if label.startswith("one-by-one") else f"[{base / wall:.2f}x one-by-one] "
        _line(label, len(waves), audio_s, wall, float(np.median([c for _, c in rs])),
              f"{ratio}(median of {len(rs)}: {'/'.join(f'{w:.1f}' for w, _ in rs)} s)")

    ctx = mp.get_context("spawn")
    times = {}
    for n_workers in (1, 2):
        parts = [waves[i::n_workers] for i in range(n_workers)]
        c = _cpu()
        with ctx.Pool(n_workers) as pool:
            res = pool.map(_worker, [(p, args.batch) for p in parts])
        times[n_workers] = max(r[1] for r in res)  # the slowest worker ends the run
        _line(f"batched x{args.batch}, {n_workers} worker process(es)", len(waves), audio_s, times[n_workers],
              _cpu() - c, f"[{times[1] / times[n_workers]:.2f}x 1 worker]" if n_workers == 2 else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=16, help="4q-dev clips to embed (default 16)")
    ap.add_argument("--batch", type=int, default=8, help="clips per batch (default 8)")
    ap.add_argument("--build-clips", type=int, default=360,
                    help="clips for the Dask build (default 360: all of 4q-dev; 0 skips)")
    ap.add_argument("--only-build", action="store_true", help="skip the embedding part")
    ap.add_argument("--files-per-task", type=int, nargs="*", default=[0],
                    help="run.files_per_task values to compare (0 = the flow's default; default: 0)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="rounds of the embedding settings (interleaved) and builds per (set-up, workers), "
                         "alternating 1 and 2 workers; medians (default 3)")
    ap.add_argument("--clusters", nargs="*", choices=["server", "running", "own", "pool"],
                    default=["server", "running", "own", "pool"],
                    help="which set-ups to build on: server = running Dask cluster + running Prefect server "
                         "(production), running = running Dask cluster + the flow's ephemeral Prefect server, "
                         "own = the flow's own LocalCluster and ephemeral server, pool = build_dataset alone "
                         "(no Prefect, no Dask) on dataset.num_workers forked processes (default all)")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if not args.only_build:
        _embedding_part(args)

    if args.build_clips:
        # untimed: the first build of a fresh machine reads the clips from a cold page cache and
        # fills numba's on-disk cache (measured here: 79 s per-file on 1 worker, vs 63-68 s after)
        _build(min(args.build_clips, 16), 1, True)
        for per_task in args.files_per_task:
            for setup in args.clusters:
                running = setup != "own"
                where = {"server": "running cluster + Prefect server", "running": "running cluster",
                         "own": "own LocalCluster", "pool": "no Prefect, process pool"}[setup] + \
                    (f", {per_task} files/task" if per_task and setup != "pool" else "")
                with _prefect_server() if setup == "server" else contextlib.nullcontext() as api:
                    runs: dict[int, list[dict]] = {1: [], 2: []}
                    for _ in range(args.repeats):  # 1, 2, 1, 2, ...: drift hits both settings alike
                        for n_workers in (1, 2):
                            runs[n_workers].append(_pool_build(args.build_clips, n_workers) if setup == "pool" else
                                                   _build(args.build_clips, n_workers, running, per_task, api))
                    med = {w: {k: float(np.median([r[k] for r in rs])) for k in ("wall", "process_wall")}
                           for w, rs in runs.items()}
                    for n_workers, b in med.items():
                        n = runs[n_workers][0]["n"]
                        cpu = float(np.median([r["cpu"] for r in runs[n_workers]]))
                        for label, key, c in (("whole flow", "wall", cpu), ("per-file", "process_wall", float("nan"))):
                            each = "/".join(f"{r[key]:.0f}" for r in runs[n_workers])
                            ratio = f"[{med[1][key] / b[key]:.2f}x 1 worker] " if n_workers == 2 else ""
                            what = (f"build_dataset, {n_workers} process(es)" if setup == "pool"
                                    else f"eno-build, {n_workers} Dask worker(s)")
                            _line(f"{what}, {where}, {label}", n, n * 30.0, b[key], c,
                                  f"{ratio}(median of {len(runs[n_workers])}: {each} s)")
                        ph = {k: float(np.median([r[k] for r in runs[n_workers]]))
                              for k in ("wall", "build_wall", "load", "hash", "process_wall", "write")}
                        print(f"  where the whole flow's {ph['wall']:.1f} s went (medians): outside build_dataset "
                              f"(flow/Prefect start, task runner) {ph['wall'] - ph['build_wall']:.1f}, metadata "
                              f"{ph['load']:.1f}, hashing {ph['hash']:.1f}, per-file {ph['process_wall']:.1f}, "
                              f"Arrow writing {ph['write']:.1f}, rest of build_dataset "
                              f"{ph['build_wall'] - ph['load'] - ph['hash'] - ph['process_wall'] - ph['write']:.1f}",
                              flush=True)
        print("(build x RT assumes ~30-s clips; CPU = the build subprocess incl. imports, plus its own cluster's "
              "workers; a running cluster's workers are not in it)")


if __name__ == "__main__":
    main()
