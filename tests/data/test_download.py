"""Download flow library code against a real HTTP server on 127.0.0.1 serving real 4Q clips,
with injected faults: timeouts, 500s, truncated bodies, wrong content types, 404s."""

from __future__ import annotations

import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from eno_hf.data.download import DownloadItem, download_all, items_from_csv


class _Server:
    """Serves ``files`` (name -> bytes). Per-name fault plans: a list consumed one entry per request:
    ``"ok"``, ``"500"``, ``"slow"`` (sleeps past the client timeout), ``"truncate"`` (announces the
    full length, sends half, closes), ``"html"`` (text/html), ``"404"``."""

    def __init__(self, files: dict[str, bytes], plans: dict[str, list[str]]) -> None:
        self.files, self.plans, self.requests = files, plans, []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def do_GET(self):  # noqa: N802
                name = self.path.lstrip("/")
                rng = self.headers.get("Range")
                server.requests.append((name, rng))
                plan = server.plans.get(name, [])
                action = plan.pop(0) if plan else "ok"
                body = server.files.get(name)
                if action == "404" or body is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                if action == "500":
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if action == "slow":
                    time.sleep(1.5)
                start = 0
                if rng and action != "norange":
                    start = int(rng.split("=")[1].split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Type", "text/html" if action == "html" else "audio/mpeg")
                part = body[start:]
                self.send_header("Content-Length", str(len(part)))
                self.end_headers()
                try:
                    if action == "truncate":
                        self.wfile.write(part[: len(part) // 2])
                        self.wfile.flush()
                        self.connection.shutdown(2)
                        return
                    self.wfile.write(part)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def clips(fourq_clips) -> dict[str, bytes]:
    return {f"c{i}.mp3": p.read_bytes() for i, p in enumerate(fourq_clips[:6])}


def test_faults_are_retried_and_every_url_accounted_for(clips, tmp_path: Path) -> None:
    plans = {"c0.mp3": ["500", "500", "ok"],            # transient 5xx -> retried
             "c1.mp3": ["slow", "ok"],                  # timeout -> retried
             "c2.mp3": ["truncate", "ok"],              # cut body -> resumed with Range
             "c3.mp3": ["html"],                        # wrong content type -> final
             "c4.mp3": ["500", "500", "500", "500"]}    # never recovers -> failed after retries
    with _Server(clips, plans) as srv:
        items = [DownloadItem(f"id/{n[:-4]}", f"{srv.url}/{n}") for n in sorted(clips)]
        items.append(DownloadItem("missing", f"{srv.url}/nope.mp3"))
        items.append(DownloadItem("bad", "ftp://example.invalid/x.mp3"))
        items.append(DownloadItem("id/c5", f"{srv.url}/c5.mp3"))  # duplicate id
        res = download_all(items, tmp_path / "dl", concurrency=3, retries=3, backoff_s=0.0,
                           timeout_s=0.5, sleep=lambda s: None)
        requests = list(srv.requests)
    ok = {e["recording_id"]: e for e in res.downloaded}
    bad = {f["recording_id"]: f for f in res.failed if f["reason"] != "duplicate_id"}
    assert set(ok) == {"id/c0", "id/c1", "id/c2", "id/c5"}
    assert {k: v["reason"] for k, v in bad.items()} == {
        "id/c3": "wrong_content_type", "id/c4": "http_error", "missing": "http_error", "bad": "bad_url"}
    assert bad["id/c4"]["attempts"] == 4
    assert [f["reason"] for f in res.failed].count("duplicate_id") == 1
    for rid, entry in ok.items():
        name = rid.split("/")[1] + ".mp3"
        data = Path(entry["path"]).read_bytes()
        assert data == clips[name], f"{rid}: bytes differ"
        assert entry["sha256"] == hashlib.sha256(clips[name]).hexdigest()
        assert Path(entry["path"]).parent == tmp_path / "dl"  # ids with '/' stay inside dest
    assert ok["id/c0"]["attempts"] == 3 and ok["id/c1"]["attempts"] == 2
    # the truncated body was resumed, not restarted
    c2 = [r for r in requests if r[0] == "c2.mp3"]
    assert c2[0][1] is None and c2[1][1].startswith("bytes=")
    resumed_at = int(c2[1][1][6:-1])
    assert 0 < resumed_at <= len(clips["c2.mp3"]) // 2  # asked only for what it did not have
    assert not list((tmp_path / "dl").glob("*.part"))
    report = (tmp_path / "dl" / "download_report.json").read_text()
    assert "wrong_content_type" in report


def test_rerun_reuses_verified_files(clips, tmp_path: Path) -> None:
    with _Server(clips, {}) as srv:
        items = [DownloadItem(n[:-4], f"{srv.url}/{n}") for n in sorted(clips)[:2]]
        first = download_all(items, tmp_path / "dl", sleep=lambda s: None)
        n_req = len(srv.requests)
        again = download_all(items, tmp_path / "dl", sleep=lambda s: None)
        assert len(srv.requests) == n_req  # nothing fetched again
    assert all(e["reused"] for e in again.downloaded) and not any(e["reused"] for e in first.downloaded)


def test_items_from_the_4q_csv(fourq_dir: Path) -> None:
    items, rejected = items_from_csv(fourq_dir / "panda_dataset_taffc_metadata.csv", "Song", "SampleURL")
    assert len(items) + len(rejected) == 360
    assert items[0].url.startswith("http")
    with pytest.raises(ValueError, match="no column 'Nope'"):
        items_from_csv(fourq_dir / "panda_dataset_taffc_metadata.csv", "Song", "Nope")


@pytest.mark.slow
def test_cli_download_from_metadata(clips, tmp_path: Path) -> None:
    """`eno download` reads ids + URLs from a CSV, writes the manifest, exits 1 naming failures."""
    import json
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    with _Server(clips, {"c1.mp3": ["404"]}) as srv:
        meta = tmp_path / "meta.csv"
        meta.write_text("Song,SampleURL\n" + "".join(f"s{i},{srv.url}/c{i}.mp3\n" for i in range(3))
                        + "s9,\n")
        proc = subprocess.run(
            [sys.executable, "-m", "eno_hf.cli", "download", "--json",
             "--set", f"paths.data_root={tmp_path / 'data'}", "--set", f"dataset.source.metadata={meta}",
             "--set", "dataset.source.id_column=Song", "--set", "dataset.download.url_column=SampleURL",
             "--set", "dataset.download.backoff_s=0"],
            cwd=root, capture_output=True, text=True, timeout=180, env={**os.environ})
    assert proc.returncode == 1, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["downloaded"] == 2 and out["failed"] == 2
    report = json.loads(Path(out["report"]).read_text())
    assert sorted(f["reason"] for f in report["failed"]) == ["bad_metadata", "http_error"]
