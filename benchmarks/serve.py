"""Load test of ``eno serve`` on 127.0.0.1: requests/s and p50/p95/p99 latency at 1, 4 and 16
concurrent clients posting real 30-s clips to ``POST /predict``, unbatched (``max_batch_size=1``)
vs dynamically batched, in one run; bounded in request count and time.

    .venv/bin/python benchmarks/serve.py                     # default model architecture, random weights
    .venv/bin/python benchmarks/serve.py --model eno-tagger  # a registered / saved model
    .venv/bin/python benchmarks/serve.py --arch mel_cnn      # eno's light log-mel CNN, random weights

Without ``--model`` the model is the one ``configs/small.yaml`` trains (jamendo-fcn + msd-fcn +
jamendo-musicnn tagger ensemble, 30-s windows, hidden 256, the 4Q heads) built with random weights:
the same graph and cost as the trained model, without running ``make demo``.
Each mode starts its own ``eno serve`` process (a real uvicorn server) and sends one warm-up request;
each client is an ``httpx.AsyncClient`` loop that posts the next clip as soon as its answer came back
(closed loop). Latency = client-side wall time of one request. The machine load (1-min load average,
CPU count) is printed: on a shared machine the absolute figures are only comparable within one run.
Targets: batching raises throughput at 16 clients; p99 < 2 x p50 at 4 clients.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIPS_DIR = ROOT.parent / "shared" / "data" / "4q-dev"


def default_model(out: Path) -> Path:
    """Save the configs/small.yaml architecture with random weights to ``out``."""
    import torch

    from eno_hf.models import EnoFeatureExtractor, EnoForAudioTagging, EnoModelConfig

    torch.manual_seed(0)
    specs = [{"name": "jamendo-fcn", "arch": "fcn"}, {"name": "msd-fcn", "arch": "fcn"},
             {"name": "jamendo-musicnn", "arch": "musicnn"}]
    heads = [{"name": "quadrant", "kind": "singlelabel", "labels": ["Q1", "Q2", "Q3", "Q4"]},
             {"name": "descriptors", "kind": "multilabel", "labels": [f"d{i}" for i in range(20)]},
             {"name": "genres", "kind": "multilabel", "labels": [f"g{i}" for i in range(10)]}]
    cfg = EnoModelConfig(encoder_type="tagger_ensemble", encoder_kwargs={"taggers": specs, "native_input_s": 30.0},
                         hidden_dim=256, heads=heads, chunk_batch_size=4)
    EnoForAudioTagging(cfg).eval().save_pretrained(out)
    EnoFeatureExtractor(sampling_rate=16_000, target_lufs=-18.0).save_pretrained(out)
    return out


def mel_cnn_model(out: Path) -> Path:
    """Save eno's own log-mel CNN (``model.encoder=mel_cnn`` on ``configs/small.yaml``: 4 blocks of
    32 channels, 128 mels) with the same three 4Q heads and random weights to ``out``: a light
    model, ~100x cheaper per clip than the tagger ensemble, where batching can pay on a CPU."""
    import torch

    from eno_hf.config import load_config
    from eno_hf.models import EnoFeatureExtractor
    from eno_hf.models.factory import create_model
    from eno_hf.models.heads import HeadSpec

    torch.manual_seed(0)
    s = load_config(ROOT / "configs/small.yaml", ["model.encoder=mel_cnn"])
    heads = [HeadSpec("quadrant", "singlelabel", labels=["Q1", "Q2", "Q3", "Q4"]),
             HeadSpec("descriptors", "multilabel", labels=[f"d{i}" for i in range(20)]),
             HeadSpec("genres", "multilabel", labels=[f"g{i}" for i in range(10)])]
    create_model(s, heads).eval().save_pretrained(out)
    EnoFeatureExtractor(sampling_rate=s.dataset.audio.sample_rate, target_lufs=-18.0).save_pretrained(out)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, batch: int, wait_ms: float, log: Path) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", "eno_hf.cli", "serve", "--model", model, "--port", str(port),
           "--set", f"serve.max_batch_size={batch}", "--set", f"serve.max_wait_ms={wait_ms}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 600
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"eno serve exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("eno serve not ready after 600 s")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100])."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return ordered[k]


async def load(url: str, clips: list[tuple[str, bytes]], clients: int, requests: int, max_s: float) -> dict:
    """``clients`` closed-loop clients sharing ``requests`` requests (stop early after ``max_s``)."""
    import httpx

    latencies: list[float] = []
    errors = 0
    counter = iter(range(requests))
    t_end = time.perf_counter() + max_s

    async def client(c: httpx.AsyncClient) -> None:
        nonlocal errors
        for i in counter:
            if time.perf_counter() > t_end:
                return
            name, data = clips[i % len(clips)]
            t0 = time.perf_counter()
            r = await c.post("/predict", files={"file": (name, data, "audio/mpeg")})
            latencies.append(time.perf_counter() - t0)
            errors += r.status_code != 200

    async with httpx.AsyncClient(base_url=url, timeout=600) as c:
        t0 = time.perf_counter()
        await asyncio.gather(*(client(c) for _ in range(clients)))
        wall = time.perf_counter() - t0
        batching = (await c.get("/health")).json()["batching"]
    return {"clients": clients, "n": len(latencies), "errors": errors, "rps": len(latencies) / wall,
            "p50": percentile(latencies, 50), "p95": percentile(latencies, 95), "p99": percentile(latencies, 99),
            "batching": batching}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="model dir / name (default: configs/small.yaml architecture, random weights)")
    ap.add_argument("--arch", choices=["tagger_ensemble", "mel_cnn"], default="tagger_ensemble",
                    help="architecture of the random-weight model when --model is not given")
    ap.add_argument("--clients", default="1,4,16")
    ap.add_argument("--requests-per-client", type=int, default=3, help="requests = max(8, this x clients)")
    ap.add_argument("--max-s", type=float, default=240.0, help="time bound per concurrency level, seconds")
    ap.add_argument("--batch", type=int, default=8, help="max_batch_size of the batched mode")
    ap.add_argument("--wait-ms", type=float, default=20.0, help="max_wait_ms of the batched mode")
    args = ap.parse_args()

    clips = [(p.name, p.read_bytes()) for q in ("Q1", "Q2", "Q3", "Q4") for p in sorted((CLIPS_DIR / q).glob("*.mp3"))[:4]]
    if not clips:
        sys.exit(f"no clips in {CLIPS_DIR}")
    tmp = Path(tempfile.mkdtemp(prefix="eno-bench-serve-"))
    model = args.model or str((mel_cnn_model if args.arch == "mel_cnn" else default_model)(tmp / "model"))
    levels = [int(c) for c in args.clients.split(",")]
    load1 = os.getloadavg()[0]
    print(f"eno serve benchmark: model={args.model or 'random-weight ' + args.arch}; "
          f"{len(clips)} real 30-s 4Q clips (mp3); {os.cpu_count()} CPUs, load average {load1:.1f} at start")
    rows = []
    for mode, batch, wait in (("unbatched", 1, 0.0), (f"batched (max {args.batch}, {args.wait_ms:g} ms)", args.batch,
                                                       args.wait_ms)):
        proc, url = start_server(model, batch, wait, tmp / f"server-{batch}.log")
        try:
            asyncio.run(load(url, clips, 1, 1, 600))  # warm-up
            for clients in levels:
                r = asyncio.run(load(url, clips, clients, max(8, args.requests_per_client * clients), args.max_s))
                r.update(mode=mode, load=os.getloadavg()[0])
                rows.append(r)
                print(f"  {mode:28s} clients={clients:2d} n={r['n']:3d} err={r['errors']} "
                      f"req/s={r['rps']:.2f} p50={r['p50']:.2f}s p95={r['p95']:.2f}s p99={r['p99']:.2f}s "
                      f"mean batch={r['batching']['mean_batch_size']:.2f} load={r['load']:.1f}", flush=True)
        finally:
            proc.terminate()
            proc.wait(30)
    print("\n| mode | clients | requests | req/s | p50 s | p95 s | p99 s | p99/p50 | load avg |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['mode']} | {r['clients']} | {r['n']} | {r['rps']:.2f} | {r['p50']:.2f} | {r['p95']:.2f} | "
              f"{r['p99']:.2f} | {r['p99'] / r['p50']:.2f} | {r['load']:.1f} |")
    by = {(r["mode"].split()[0], r["clients"]): r for r in rows}
    if ("unbatched", 16) in by and ("batched", 16) in by:
        gain = by[("batched", 16)]["rps"] / by[("unbatched", 16)]["rps"]
        print(f"\nbatched / unbatched throughput at 16 clients: {gain:.2f}x")
    for mode in ("unbatched", "batched"):
        if (mode, 4) in by:
            r = by[(mode, 4)]
            print(f"{mode}: p99 / p50 at 4 clients = {r['p99'] / r['p50']:.2f} (target < 2)")


if __name__ == "__main__":
    main()
