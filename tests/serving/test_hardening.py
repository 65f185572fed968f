"""``eno serve`` as a real process on 127.0.0.1 against hostile clients: connections that never
finish their headers, bodies sent at a trickle, idle keep-alive connections, more connections than
the cap, requests without the API key, and requests beyond the global in-flight budget.

The server runs with small limits (timeouts of 1-2 s, a budget of 5 s of audio) so each case takes
seconds; the defaults are in ``eno_hf/serving/config.py`` and docs/serving.md."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from serving_uploads import noise, wav_bytes

ROOT = Path(__file__).resolve().parents[2]
KEY = "test-key-0123456789abcdef"
HEADER_TIMEOUT_S = 1.5
BODY_TIMEOUT_S = 2.0
KEEP_ALIVE_S = 1
MAX_CONNECTIONS = 12
AUDIO_BUDGET_S = 5.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(serve_model_dir, tmp_path_factory):
    """``eno serve --api-key-file`` with small timeouts, connection cap and budget; yields
    ``(url, port)``."""
    port = _free_port()
    tmp = tmp_path_factory.mktemp("serve-hardening")
    key_file = tmp / "key.txt"
    key_file.write_text(KEY + "\n")
    sets = {"header_timeout_s": HEADER_TIMEOUT_S, "body_timeout_s": BODY_TIMEOUT_S, "keep_alive_s": KEEP_ALIVE_S,
            "max_connections": MAX_CONNECTIONS, "max_inflight_audio_s": AUDIO_BUDGET_S, "max_inflight_mb": 1.5,
            "max_upload_mb": 1.0, "max_files": 3, "max_duration_s": 40, "retry_after_s": 7}
    cmd = [sys.executable, "-m", "eno_hf.cli", "serve", "--model", str(serve_model_dir), "--port", str(port),
           "--api-key-file", str(key_file)]
    for k, v in sets.items():
        cmd += ["--set", f"serve.{k}={v}"]
    env = {k: v for k, v in os.environ.items() if k != "ENO_API_KEY_FILE"}
    log = (tmp / "server.log").open("w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)}, stdout=log, stderr=subprocess.STDOUT)
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
    yield url, port
    proc.terminate()
    proc.wait(20)


def _closed_after(sock: socket.socket, drip: bytes = b"", every_s: float = 0.25, limit_s: float = 30.0) -> float:
    """Send ``drip`` one byte per ``every_s`` until the server closes the connection; seconds taken."""
    t0 = time.monotonic()
    sock.settimeout(every_s)
    i = 0
    while time.monotonic() - t0 < limit_s:
        try:
            if sock.recv(4096) == b"":
                return time.monotonic() - t0
        except socket.timeout:
            pass
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - t0
        try:
            if drip:
                sock.send(drip[i % len(drip):i % len(drip) + 1])
                i += 1
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - t0
    return float("inf")


def test_partial_headers_and_idle_connections_are_closed(server):
    """A client trickling its headers one byte at a time (each byte would reset uvicorn's own
    keep-alive timer) and one that sends nothing are both closed at the header deadline."""
    _, port = server
    with socket.create_connection(("127.0.0.1", port)) as trickle, socket.create_connection(("127.0.0.1", port)) as idle:
        trickle.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        t_trickle = _closed_after(trickle, drip=b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaa")
        t_idle = _closed_after(idle)
    assert t_trickle < HEADER_TIMEOUT_S + 1.0, t_trickle
    assert t_idle < HEADER_TIMEOUT_S + 1.0, t_idle


def test_slow_body_is_cut_off(server):
    """A body sent at 4 bytes/s is cut at the body deadline, and the server still answers."""
    url, port = server
    head = (f"POST /predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head)
        t = _closed_after(sock, drip=b"--b\r\n", every_s=0.25)
    assert t < BODY_TIMEOUT_S + 1.5, t
    assert httpx.get(f"{url}/health", timeout=5).status_code == 200
    assert httpx.get(f"{url}/health", timeout=5).json()["inflight"]["bytes"] == 0  # its reservation released


def test_idle_keep_alive_connection_is_closed(server):
    _, port = server
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(5)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        t = _closed_after(sock)
    assert t < KEEP_ALIVE_S + 1.0, t


def test_connection_cap_then_recovery(server):
    """Beyond ``max_connections`` new connections are closed at once; once the idle ones time
    out, the service answers again."""
    url, port = server
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(MAX_CONNECTIONS + 6)]
    try:
        time.sleep(0.3)
        closed = 0
        for s in socks:
            s.settimeout(0.05)
            try:
                closed += s.recv(1) == b""
            except socket.timeout:
                pass
            except ConnectionResetError:
                closed += 1
        assert closed >= 6, closed
    finally:
        for s in socks:
            s.close()
    time.sleep(0.3)
    assert httpx.get(f"{url}/health", timeout=5).status_code == 200


def test_api_key(server):
    url, _ = server
    wav = wav_bytes(noise(2.0, 1))
    files = {"file": ("a.wav", wav, "audio/wav")}
    health = httpx.get(f"{url}/health")
    assert health.status_code == 200 and "pid" not in health.json()  # open, reveals no process id
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": KEY[:-1]}):
        r = httpx.post(f"{url}/predict", files=files, headers=headers, timeout=60)
        assert r.status_code == 401 and r.json()["error"]["reason"] == "unauthorized", (headers, r.text)
        assert r.headers["www-authenticate"].startswith("Bearer")
    for path in ("/model", "/openapi.json"):
        assert httpx.get(f"{url}{path}").status_code == 401
    assert httpx.get(f"{url}/docs").status_code in (401, 404)
    r = httpx.post(f"{url}/predict", files=files, headers={"Authorization": f"Bearer {KEY}"}, timeout=60)
    assert r.status_code == 200, r.text
    assert httpx.get(f"{url}/model", headers={"X-API-Key": KEY}).status_code == 200


def test_budget_overloaded(server):
    """A file longer than the audio budget, or a body larger than the byte budget, gets 503
    ``overloaded`` with ``Retry-After``; nothing stays reserved afterwards."""
    url, _ = server
    auth = {"Authorization": f"Bearer {KEY}"}
    r = httpx.post(f"{url}/predict", files={"file": ("long.wav", wav_bytes(noise(AUDIO_BUDGET_S + 1, 2)), "audio/wav")},
                   headers=auth, timeout=60)
    assert r.status_code == 503 and r.json()["error"]["reason"] == "overloaded", r.text
    assert "max_inflight_audio_s" in r.json()["error"]["detail"] and r.headers["retry-after"] == "7"
    big = [("files", ("a.wav", wav_bytes(noise(2.0, 1)), "audio/wav"))]
    big += [("files", (f"pad{i}.bin", b"\0" * 1_000_000, "application/octet-stream")) for i in range(2)]
    # 2.1 MB: under the 413 limit (3 files x 1 MiB), over max_inflight_mb=1.5
    r = httpx.post(f"{url}/predict/batch", files=big, headers=auth, timeout=60)
    assert r.status_code == 503 and r.json()["error"]["reason"] == "overloaded", r.text
    assert "max_inflight_mb" in r.json()["error"]["detail"] and r.headers["retry-after"] == "7"
    inflight = httpx.get(f"{url}/health").json()["inflight"]
    assert inflight["bytes"] == 0 and inflight["audio_s"] == 0 and inflight["refused"] >= 2
