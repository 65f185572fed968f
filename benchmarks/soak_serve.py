"""Soak test of ``eno serve`` on 127.0.0.1: a bounded run of hostile and ordinary traffic at 32
concurrent clients, watching the server's memory, file descriptors and ``/health`` latency.

    .venv/bin/python benchmarks/soak_serve.py                 # 10 minutes
    .venv/bin/python benchmarks/soak_serve.py --minutes 2

One ``eno serve`` process (default limits and timeouts of ``ServeConfig``; eno's light log-mel CNN
with random weights, ``benchmarks/serve.py --arch mel_cnn``) gets, from ``--clients`` (32) client
loops, a mix of request classes, each loop picking the next class in turn, and from
``--slow-clients`` (8) more loops, slow clients (held by the server up to its deadlines, so kept out
of the 32 that carry the traffic):

- ``clip``: a real 30-s 4Q MP3 clip to ``POST /predict``;
- ``garbage``: 64 KiB of random bytes named ``.wav``;
- ``midi_bomb``: a 40-byte MIDI, one note_on and its note_off 7,000 ticks later at
  ``ticks_per_beat=1`` (3,500 s of playing time);
- ``batch``: a max-size ``POST /predict/batch`` (``serve.max_files`` real clips);
- ``slow_headers``: a connection that sends half a request line and then one byte per second;
- ``slow_body``: a ``/predict`` whose body arrives at one byte per second.

Everything is bounded: no new request starts after ``--minutes``, the slow clients are cut by the
server's deadlines, every client call has a timeout. A monitor prints the server's RSS and open FDs
every 30 s (the first third and the last third of the samples under load are compared), a prober
process (its own, so the clients' work does not delay it) measures ``GET /health`` every 0.5 s. The summary: requests
per class and status, ``/health`` p50/p99, RSS and FDs of the first vs the last third of the samples,
5xx other than 503. Targets: RSS and FDs of the last third at most 10 % above the first third, ``/health``
p99 < 200 ms, no 5xx except 503 ``overloaded``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import io
import itertools
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("eno_bench_serve", Path(__file__).with_name("serve.py"))
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

CLASSES = ("clip", "garbage", "clip", "midi_bomb", "clip", "batch")
"""The order each request client loop cycles through (offset by the client's index)."""
SLOW_CLASSES = ("slow_headers", "slow_body")
"""The order each slow client loop cycles through."""


def midi_bomb() -> bytes:
    """One note lasting 7,000 beats at ``ticks_per_beat=1`` (3,500 s at 120 bpm) as MIDI bytes."""
    import mido

    mid = mido.MidiFile(ticks_per_beat=1)
    track = mido.MidiTrack()
    track.append(mido.Message("note_on", note=60, velocity=100, time=0))
    track.append(mido.Message("note_off", note=60, velocity=0, time=7000))
    mid.tracks.append(track)
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def server_stats(pid: int) -> tuple[float, int]:
    """``(RSS in MiB, open file descriptors)`` of process ``pid``."""
    import psutil

    proc = psutil.Process(pid)
    return proc.memory_info().rss / 2**20, proc.num_fds()


async def slow_headers(port: int, limit_s: float = 60.0) -> tuple[str, float]:
    """Half a request line, then one byte per second until the server closes; ``("closed", s)``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    t0 = time.monotonic()
    writer.write(b"GET /health HTTP/1.1\r\nHost: soak\r\nX-Slow: ")
    try:
        while time.monotonic() - t0 < limit_s:
            try:
                if await asyncio.wait_for(reader.read(1), 1.0) == b"":
                    return "closed", time.monotonic() - t0
            except asyncio.TimeoutError:
                writer.write(b"a")
                await writer.drain()
        return "held", time.monotonic() - t0
    except (ConnectionError, OSError):
        return "closed", time.monotonic() - t0
    finally:
        writer.close()


async def slow_body(port: int, limit_s: float = 300.0) -> tuple[str, float]:
    """A ``/predict`` announcing 1 MB and sending one byte per second; ``("closed", s)`` when cut."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    t0 = time.monotonic()
    writer.write(b"POST /predict HTTP/1.1\r\nHost: soak\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                 b"Content-Length: 1000000\r\n\r\n--b\r\n")
    try:
        while time.monotonic() - t0 < limit_s:
            try:
                data = await asyncio.wait_for(reader.read(4096), 1.0)
                if data == b"":
                    return "closed", time.monotonic() - t0
                return f"answered {data[:12].decode(errors='replace').split(' ')[1]}", time.monotonic() - t0
            except asyncio.TimeoutError:
                writer.write(b"x")
                await writer.drain()
        return "held", time.monotonic() - t0
    except (ConnectionError, OSError):
        return "closed", time.monotonic() - t0
    finally:
        writer.close()


def _probe(url: str, stop_at_wall: float, out) -> None:
    """``GET /health`` every 0.5 s until ``stop_at_wall`` (``time.time()``), in its own process so the
    client loops' work does not delay it; puts ``(latencies_ms, failures)`` on ``out``."""
    import httpx

    ms: list[float] = []
    fail: Counter = Counter()
    with httpx.Client(base_url=url, timeout=10) as c:
        while time.time() < stop_at_wall:
            t0 = time.perf_counter()
            try:
                r = c.get("/health")
                if r.status_code == 200:
                    ms.append((time.perf_counter() - t0) * 1000.0)
                else:
                    fail[str(r.status_code)] += 1
            except httpx.HTTPError as exc:
                fail[type(exc).__name__] += 1
            time.sleep(0.5)
    out.put((ms, dict(fail)))


async def soak(url: str, port: int, pid: int, clips: list[tuple[str, bytes]], minutes: float, clients: int,
               max_files: int, slow_clients: int = 8) -> dict:
    import httpx

    bomb = midi_bomb()
    rng = random.Random(0)
    stop_at = time.monotonic() + minutes * 60.0
    counts: dict[str, Counter] = defaultdict(Counter)
    slow_times: dict[str, list[float]] = defaultdict(list)
    health_ms: list[float] = []
    health_fail = Counter()
    samples: list[tuple[float, float, int]] = []
    t_start = time.monotonic()

    async def client(i: int, c: httpx.AsyncClient, classes: tuple[str, ...] = CLASSES) -> None:
        for kind in itertools.islice(itertools.cycle(classes), i % len(classes), None):
            if time.monotonic() >= stop_at:
                return
            try:
                if kind == "clip":
                    name, data = rng.choice(clips)
                    r = await c.post("/predict", files={"file": (name, data, "audio/mpeg")})
                elif kind == "garbage":
                    r = await c.post("/predict", files={"file": ("g.wav", rng.randbytes(65536), "audio/wav")})
                elif kind == "midi_bomb":
                    r = await c.post("/predict", files={"file": ("bomb.mid", bomb, "audio/midi")})
                elif kind == "batch":
                    files = [("files", (n, d, "audio/mpeg")) for n, d in rng.sample(clips, max_files)]
                    r = await c.post("/predict/batch", files=files)
                else:
                    outcome, took = await (slow_headers(port) if kind == "slow_headers" else slow_body(port))
                    counts[kind][outcome] += 1
                    slow_times[kind].append(took)
                    continue
                reason = r.json().get("error", {}).get("reason", "") if r.status_code != 200 else ""
                counts[kind][f"{r.status_code} {reason}".strip()] += 1
            except (httpx.HTTPError, OSError) as exc:
                counts[kind][type(exc).__name__] += 1

    async def monitor() -> None:
        while True:
            rss, fds = server_stats(pid)
            samples.append((time.monotonic() - t_start, rss, fds))
            print(f"[{samples[-1][0]:6.0f} s] server RSS {rss:7.1f} MiB, open FDs {fds:4d}", flush=True)
            if time.monotonic() >= stop_at:
                return
            await asyncio.sleep(min(30.0, max(0.0, stop_at - time.monotonic()) + 0.01))

    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    probe = ctx.Process(target=_probe, args=(url, time.time() + minutes * 60.0, out), daemon=True)
    probe.start()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as c:
        mon = asyncio.create_task(monitor())
        await asyncio.gather(*(client(i, c) for i in range(clients)),
                             *(client(i, c, SLOW_CLASSES) for i in range(slow_clients)))
        await mon
    ms, fail = await asyncio.get_running_loop().run_in_executor(None, out.get)
    probe.join(10)
    health_ms.extend(ms)
    health_fail.update(fail)
    await asyncio.sleep(2.0)
    async with httpx.AsyncClient(base_url=url, timeout=10) as c:
        inflight = (await c.get("/health")).json()["inflight"]
    rss, fds = server_stats(pid)
    samples.append((time.monotonic() - t_start, rss, fds))
    return {"counts": counts, "slow": slow_times, "health_ms": health_ms, "health_fail": health_fail,
            "samples": samples, "wall_s": time.monotonic() - t_start, "inflight": inflight}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="how long new requests are started (default 10)")
    ap.add_argument("--clients", type=int, default=32, help="concurrent client loops (default 32)")
    ap.add_argument("--slow-clients", type=int, default=8, help="slow-client loops besides them (default 8)")
    ap.add_argument("--clips", type=int, default=24, help="real 4Q clips in the rotation (default 24)")
    ap.add_argument("--model", default=None, help="model dir/name (default: the light mel_cnn, random weights)")
    ap.add_argument("--server-log", type=Path, default=None, help="keep the server's log here")
    args = ap.parse_args()
    if not 0 < args.minutes <= 120 or not 1 <= args.clients <= 256:
        ap.error("--minutes must be in (0, 120] and --clients in [1, 256]")
    clips_dir = bench.CLIPS_DIR
    paths = sorted(clips_dir.rglob("*.mp3"))[: args.clips]
    if not paths:
        sys.exit(f"no MP3 clips under {clips_dir}")
    clips = [(p.name, p.read_bytes()) for p in paths]
    from eno_hf.serving.config import ServeConfig

    defaults = ServeConfig()
    max_files = min(defaults.max_files, len(clips))
    with tempfile.TemporaryDirectory(prefix="eno-soak-") as tmp:
        model = args.model or str(bench.mel_cnn_model(Path(tmp) / "model"))
        log = Path(tmp) / "server.log"
        proc, url = bench.start_server(model, defaults.max_batch_size, defaults.max_wait_ms, log)
        port = int(url.rsplit(":", 1)[1])
        try:
            print(f"eno serve pid {proc.pid} on {url}; {args.clients} clients (+{args.slow_clients} slow) for {args.minutes:g} min; "
                  f"{len(clips)} clips; load avg {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
            res = asyncio.run(soak(url, port, proc.pid, clips, args.minutes, args.clients, max_files,
                                   args.slow_clients))
        finally:
            proc.terminate()
            proc.wait(30)
            tail = log.read_text(errors="replace").splitlines()
            if args.server_log is not None:
                args.server_log.write_text("\n".join(tail) + "\n")
    print("\nrequests per class (status reason: count)")
    server_errors = 0
    for kind in dict.fromkeys(CLASSES + SLOW_CLASSES):
        outcomes = res["counts"].get(kind, Counter())
        print(f"  {kind:13s} {sum(outcomes.values()):5d}  " + ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items())))
        server_errors += sum(v for k, v in outcomes.items() if k[:1] == "5" and not k.startswith("503"))
        if res["slow"].get(kind):
            t = res["slow"][kind]
            print(f"  {'':13s}        closed by the server after {min(t):.1f}-{max(t):.1f} s (median {statistics.median(t):.1f})")
    h = res["health_ms"]
    p99 = bench.percentile(h, 99) if h else float("nan")
    print(f"\n/health: {len(h)} answered, p50 {bench.percentile(h, 50):.1f} ms, p99 {p99:.1f} ms, "
          f"max {max(h):.1f} ms; failed: {dict(res['health_fail']) or 'none'}")
    idle, after = res["samples"][0], res["samples"][-1]
    s = res["samples"][1:-1] or res["samples"]  # under load: without the idle samples before and after
    third = max(1, len(s) // 3)
    first, last = s[:third], s[-third:]
    rss0, rss1 = statistics.mean(x[1] for x in first), statistics.mean(x[1] for x in last)
    fd0, fd1 = statistics.mean(x[2] for x in first), statistics.mean(x[2] for x in last)
    print(f"RSS first third {rss0:.0f} MiB, last third {rss1:.0f} MiB ({(rss1 / rss0 - 1) * 100:+.1f} %); "
          f"max {max(x[1] for x in s):.0f} MiB")
    print(f"idle before: RSS {idle[1]:.0f} MiB, {idle[2]} FDs; 2 s after the run: RSS {after[1]:.0f} MiB, {after[2]} FDs")
    print(f"FDs first third {fd0:.0f}, last third {fd1:.0f} ({(fd1 / fd0 - 1) * 100:+.1f} %); max {max(x[2] for x in s)}")
    print(f"in flight 2 s after the run (GET /health): {res['inflight']}")
    print(f"5xx other than 503: {server_errors}; wall {res['wall_s']:.0f} s; load avg {os.getloadavg()[0]:.1f}")
    ok = rss1 <= 1.10 * rss0 and fd1 <= 1.10 * fd0 and p99 < 200 and server_errors == 0  # growth is the leak
    print("targets met" if ok else "targets NOT met")
    errors = [line for line in tail if "Traceback" in line or "ERROR" in line]
    if errors:
        print(f"server log: {len(errors)} error lines, e.g. {errors[0][:200]}")


if __name__ == "__main__":
    main()
