"""The whole hostile corpus (``full_corpus.make_full_corpus``: the build corpus of
``tests/test_bad_inputs.py``, MIDI bombs, a lying MP3, a FIFO, a folder the walk cannot list, stem
collisions, links to real clips and real clips) in one folder, through ``eno build``, ``eno tag``
and ``eno serve`` on 127.0.0.1.

Checked: every input accounted for with its expected reason on each path; one reason per input on
all three paths except the documented differences (``full_corpus``: links -- confined in build,
followed in tag, bytes in serve; ``notes.txt`` -- its content type in serve); ``eno tag`` exits 1;
afterwards the MIDI rendering cache (``$ENO_RENDER_CACHE``, a temporary folder) holds no more than
its cap, no temporary file and no rendering of a rejected input.
"""

from __future__ import annotations

import json
import mimetypes
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import torch
from batch_corpus import deny_listing, tone, unlock
from full_corpus import LIMITS, SERVE_ONLY, make_full_corpus
from typer.testing import CliRunner

from eno_hf.cli import app
from eno_hf.data.qc import read_qc_rows
from eno_hf.errors import REASON_DESCRIPTIONS

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "base.yaml"
runner = CliRunner()

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("fluidsynth") is None,
                                reason="ffmpeg and fluidsynth are needed (apt-get install ffmpeg fluidsynth)")


def _real_clips(tmp: Path) -> list[Path]:
    """Two real 4Q clips (``../shared``; 30 s MP3s), else two generated 3-s WAVs outside the corpus."""
    real = ROOT.parent / "shared" / "data" / "4q-dev" / "Q1"
    clips = sorted(real.glob("*.mp3"))[:2] if real.is_dir() else []
    if len(clips) == 2:
        return clips
    return [tone(tmp / "library" / f"song{i}.wav", seed=10 + i) for i in range(2)]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """The corpus, the rendering cache in a temporary folder, and (as root) a walk that cannot list
    ``locked/``; yields ``(audio folder, expectations, cache folder, base folder)``."""
    base = tmp_path_factory.mktemp("full-corpus").resolve()
    exp = make_full_corpus(base, _real_clips(base))
    audio = base / "audio"
    cache = base / "render-cache"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ENO_RENDER_CACHE", str(cache))
        if os.geteuid() == 0:  # root lists a mode-000 folder anyway: fail the listing as for a user
            mp.setattr(os, "scandir", deny_listing(audio))
        yield audio, exp, cache, base
    unlock(audio)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A tiny random model (mel_cnn, 2-s windows, one multilabel head)."""
    from eno_hf.models import EnoFeatureExtractor, EnoForAudioTagging, EnoModelConfig

    out = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    cfg = EnoModelConfig(encoder_type="mel_cnn", encoder_kwargs={"n_mels": 32, "channels": 4, "n_blocks": 2},
                         chunk_s=2.0, hidden_dim=8,
                         heads=[{"name": "moods", "kind": "multilabel", "labels": ["a", "b"]}])
    EnoForAudioTagging(cfg).eval().save_pretrained(out)
    EnoFeatureExtractor(sampling_rate=16_000, target_lufs=-18.0).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def server(model, env):
    """``eno serve`` started (not yet ready: its imports overlap the build and tag steps) on a free
    port with ``LIMITS``; yields ``(url, process, log path)``."""
    _, _, cache, base = env
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "eno_hf.cli", "serve", "--model", str(model), "--port", str(port)]
    for k, v in LIMITS.items():
        if k.startswith("serve."):
            cmd += ["--set", f"{k}={v}"]
    environ = {k: v for k, v in os.environ.items() if k != "ENO_API_KEY_FILE"}
    environ |= {"PYTHONPATH": str(ROOT), "ENO_RENDER_CACHE": str(cache)}
    log = base / "server.log"
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=environ, stdout=fh, stderr=subprocess.STDOUT)
    yield f"http://127.0.0.1:{port}", proc, log
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


def _wait_ready(url: str, proc: subprocess.Popen, log: Path, limit_s: float = 300.0) -> None:
    deadline = time.time() + limit_s  # imports take minutes on a loaded 2-core machine
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"eno serve exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"eno serve did not become ready in {limit_s:.0f} s")


def _key(path: str, audio: Path, targets: dict[Path, str]) -> str:
    """Corpus key of a path in a report/record: relative to the corpus folder, or a link's target."""
    p = Path(path)
    if p.is_relative_to(audio):
        return p.relative_to(audio).as_posix()
    return targets[p.resolve()]


def _sets() -> list[str]:
    args = []
    for k, v in LIMITS.items():
        if k.startswith("dataset."):
            args += ["--set", f"{k}={v}"]
    return args


@pytest.mark.slow
def test_whole_corpus_through_build_tag_and_serve(env, model, server) -> None:
    audio, exp, cache, base = env
    url, proc, log = server
    targets = {(audio / k).resolve(): k for k in exp if (audio / k).is_symlink()}
    links = set(targets.values())
    build_exp = {k: b for k, (b, _, _) in exp.items()}
    tag_exp = {k: t for k, (_, t, _) in exp.items()}
    serve_exp = {k: s for k, (_, _, s) in exp.items() if s is not None}
    # the corpus holds each kind of hostile input
    assert {"too_long", "undecodable", "silent", "unsupported", "io_error", "outside_root", "empty",
            "nan_inf", "too_short", "ok"} <= set(build_exp.values())

    # eno build (folders source): every input of the walk once, with its reason
    args = ["build", "--config", str(CONFIG), "--json"]
    for s in [f"paths.data_root={base / 'data'}", "dataset.name=hostile", "dataset.source.kind=folders",
              f"dataset.source.audio_root={audio}", "dataset.source.folder_group=none",
              "dataset.segment.segment_s=1.0", "dataset.segment.hop_s=1.0", "dataset.split.train=0.6",
              "dataset.split.validation=0.2", "dataset.split.test=0.2", "dataset.num_workers=1",
              "dataset.audio_column=false", "dataset.features.mfcc=false"]:
        args += ["--set", s]
    result = runner.invoke(app, args + _sets())
    assert result.exit_code == 1, result.output  # the dataset is written; rejected inputs exit 1
    last = json.loads(result.stdout.strip().splitlines()[-1])
    report = json.loads((Path(last["dataset"]) / "qc_report.json").read_text())
    ids = {k.replace("/", "__"): k for k in exp} | {Path(k).with_suffix("").as_posix().replace("/", "__"): k
                                                   for k in exp}
    built: dict[str, str] = {}
    for item in report["rejected"]:
        assert item["reason"] in REASON_DESCRIPTIONS, item
        key = _key(item["path"], audio, targets)
        assert key not in built, item
        built[key] = item["reason"]
    for w in read_qc_rows(Path(last["dataset"]), "written"):
        key = ids[w["recording_id"]]
        assert key not in built, w
        built[key] = "ok"
    assert built == build_exp
    assert report["accounting"]["invariant_holds"] and report["accounting"]["n_inputs"] == len(exp)

    # eno tag FOLDER --json: a record per input, the same reason as build (links: followed), exit 1
    result = runner.invoke(app, ["tag", str(audio), "--model", str(model), "--json", "--config", str(CONFIG)]
                           + _sets())
    assert result.exit_code == 1, result.output  # some inputs failed
    lines = [json.loads(ln) for ln in result.stdout.splitlines() if ln.startswith("{")]
    records, summary = lines[:-1], lines[-1]
    tagged: dict[str, str] = {}
    for r in records:
        key = _key(r["path"], audio, targets)
        assert key not in tagged, r
        tagged[key] = r["error"]["reason"] if r.get("error") else "ok"
    assert tagged == tag_exp
    assert {k: v for k, v in tagged.items() if k not in links} == \
        {k: v for k, v in built.items() if k not in links}  # one reason per input, links aside
    n_failed = sum(v != "ok" for v in tag_exp.values())
    assert summary["inputs"] == len(exp) and summary["failed"] == n_failed > 0

    # eno serve: each uploadable file POSTed to /predict, the reason of tag (and of build)
    _wait_ready(url, proc, log)
    served: dict[str, str] = {}
    with httpx.Client(base_url=url, timeout=120) as client:
        for key in serve_exp:
            path = audio / key
            ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            r = client.post("/predict", files={"file": (path.name, path.read_bytes(), ctype)})
            body = r.json()
            if r.status_code == 200:
                assert "error" not in body and body["heads"], (key, body)
                served[key] = "ok"
            else:
                assert 400 <= r.status_code < 500, (key, r.status_code, body)
                served[key] = body["error"]["reason"]
    assert served == serve_exp
    assert {k: v for k, v in served.items() if k not in links} == \
        {k: SERVE_ONLY.get(v, v) for k, v in built.items() if k in served and k not in links}
    assert proc.poll() is None  # the hostile uploads did not take the service down

    # the rendering cache: within its cap, no temporary, only renderings of accepted MIDI files
    from eno_hf.audio.midi import RenderSettings, is_midi, render_path
    from eno_hf.config import MidiRenderConfig

    cap = int(LIMITS["dataset.audio.midi.cache_max_mb"] * 2**20)
    files = [p for p in cache.iterdir()] if cache.exists() else []
    assert not [p for p in files if p.name.startswith(".render-")], files
    assert sum(p.stat().st_size for p in files) <= cap
    settings = MidiRenderConfig(max_duration_s=LIMITS["dataset.audio.midi.max_duration_s"],
                                cache_max_mb=LIMITS["dataset.audio.midi.cache_max_mb"])
    settings = RenderSettings.from_config(settings, 16_000)
    midis = [k for k in exp if is_midi(k) and (audio / k).is_file()]
    accepted = {render_path(audio / k, settings) for k in midis if exp[k][0] == "ok"}
    rejected = {render_path(audio / k, settings) for k in midis if exp[k][0] != "ok"}
    assert accepted and not accepted & rejected
    assert set(files) == accepted  # rock/x.mid's rendering (one key: build, tag and serve synthesize alike)
