"""``eno serve`` as a real process on 127.0.0.1: curl == ``eno tag``, bad inputs mixed with good ones
under concurrency (every good answer right, every bad one a 4xx with its reason, same process)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from serving_uploads import LIMITS, SR, bad_uploads, noise, wav_bytes

from eno_hf.inference.pipeline import load_model, predict_waveform, tags_above_threshold
from eno_hf.inference.tag import tag_paths

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(serve_model_dir, tmp_path_factory):
    """``python -m eno_hf.cli serve`` on a free port with small limits; yields the base URL."""
    port = _free_port()
    sets = [f"serve.{k}={v}" for k, v in {**LIMITS, "max_batch_size": 4, "max_wait_ms": 20}.items()]
    cmd = [sys.executable, "-m", "eno_hf.cli", "serve", "--model", str(serve_model_dir), "--port", str(port)]
    for s in sets:
        cmd += ["--set", s]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = (tmp_path_factory.mktemp("serve-log") / "server.log").open("w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 300  # imports take minutes on a loaded 2-core machine
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"eno serve exited with {proc.returncode}: {Path(log.name).read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("eno serve did not become ready in 300 s")
    yield url, proc
    proc.terminate()
    proc.wait(20)


@pytest.mark.slow
def test_health_and_model(server):
    url, proc = server
    health = httpx.get(f"{url}/health").json()
    assert health["live"] and health["ready"] and "pid" not in health
    model = httpx.get(f"{url}/model").json()
    moods = next(h for h in model["heads"] if h["name"] == "moods")
    assert moods["labels"] == ["calm", "dark", "happy"] and moods["thresholds"] == [0.0, 1.0, 0.0]
    assert model["limits"]["max_files"] == LIMITS["max_files"]
    assert httpx.get(f"{url}/openapi.json").json()["paths"].keys() >= {"/predict", "/predict/batch", "/health", "/model"}


@pytest.mark.slow
def test_curl_predict_equals_eno_tag(server, serve_model_dir, fourq_clips):
    """The service answers as the CLI does: `curl -F file=@song.mp3 /predict` == `eno tag song.mp3`."""
    url, _ = server
    clip = fourq_clips[0]
    out = subprocess.run(["curl", "-sS", "-F", f"file=@{clip}", f"{url}/predict"], capture_output=True,
                         text=True, timeout=120, check=True)
    served = json.loads(out.stdout)
    assert "error" not in served, served
    tagged = next(tag_paths([clip], serve_model_dir))
    assert served["file"] == clip.name
    assert served["heads"].keys() == tagged["heads"].keys()
    for head, scores in tagged["heads"].items():
        for label, value in scores.items():
            assert served["heads"][head][label] == pytest.approx(value, abs=1e-5), (head, label)
    assert served["tags"] == tagged["tags"]
    assert served["tags"]["moods"] == sorted(["calm", "happy"], key=lambda lab: -tagged["heads"]["moods"][lab])
    assert served["duration_s"] == pytest.approx(30.0, abs=0.2)
    assert served["timing"]["total_ms"] > 0 and served["model"]["backend"] == "pytorch"


@pytest.mark.slow
def test_bad_inputs_mixed_with_good_under_concurrency(server, serve_model_dir, fourq_clips):
    url, proc = server
    uptime_before = httpx.get(f"{url}/health").json()["uptime_s"]
    model, extractor = load_model(serve_model_dir)
    goods = []
    for seed in range(8):  # different lengths (1 to 4 windows) and contents
        wave = noise(1.5 + seed * 0.9, seed)
        expected = predict_waveform(wave, SR, model, extractor)
        goods.append((f"good{seed}.wav", wav_bytes(wave, subtype="FLOAT"), expected))
    bads = bad_uploads(fourq_clips[0].read_bytes())

    async def main():
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            async def good(i):
                name, data, expected = goods[i % len(goods)]
                r = await client.post("/predict", files={"file": (name, data, "audio/wav")})
                return ("good", name, expected, r)

            async def bad(case):
                name, data, ctype, reason = bads[case]
                r = await client.post("/predict", files={"file": (name, data, ctype)})
                return ("bad", case, reason, r)

            async def not_multipart():
                r = await client.post("/predict", content=b'{"path": "/etc/passwd"}',
                                      headers={"content-type": "application/json"})
                return ("bad", "json_body", "unsupported_media_type", r)

            async def too_many():
                files = [("files", (n, d, "audio/wav")) for n, d, _ in goods[:4]]
                r = await client.post("/predict/batch", files=files)
                return ("bad", "too_many_files", "too_many_files", r)

            async def batch():
                name, data, ctype, _ = bads["silence"]
                files = [("files", (goods[0][0], goods[0][1], "audio/wav")), ("files", (name, data, ctype))]
                r = await client.post("/predict/batch", files=files)
                return ("batch", None, None, r)

            jobs = [good(i) for i in range(16)] + [bad(c) for c in bads] + [not_multipart(), too_many(), batch()]
            order = np.random.default_rng(0).permutation(len(jobs))
            return await asyncio.gather(*(jobs[i] for i in order))

    results = asyncio.run(main())
    for kind, name, expected, r in results:
        if kind == "good":
            assert r.status_code == 200, (name, r.text)
            body = r.json()
            for head, scores in expected.items():
                for label, value in scores.items():
                    assert body["heads"][head][label] == pytest.approx(value, abs=1e-4), (name, head, label)
            assert body["tags"] == tags_above_threshold(expected, model.config)
        elif kind == "bad":
            assert 400 <= r.status_code < 500, (name, r.status_code, r.text)
            assert r.json()["error"]["reason"] == expected, (name, r.text)
        else:
            items = r.json()["results"]
            assert r.status_code == 200 and items[0]["prediction"] and items[1]["error"]["reason"] == "silent"
    health = httpx.get(f"{url}/health").json()
    assert proc.poll() is None and health["uptime_s"] > uptime_before  # never restarted
    assert health["batching"]["max_batch_size_seen"] > 1  # concurrent good requests were batched
