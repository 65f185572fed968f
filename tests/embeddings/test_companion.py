"""Companion embedding dataset of a dataset version: content, reuse, kill -9 + resume, two processes.

A tiny dataset of generated 3-s WAVs (one segment each) built with ``build_dataset``; the encoder is
the published ``mtat-musicnn`` tagger (3-s windows, penultimate layer), so a segment is one window.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from lock_probe import LOCK_PROBE, assert_contended

from eno_hf.config import load_config

PROJECT_ROOT = Path(__file__).resolve().parents[2]
N_FILES = 12


def _sets(root: Path) -> list[str]:
    return [f"paths.data_root={root / 'data'}", "dataset.name=emb", "dataset.source.kind=folders",
            f"dataset.source.audio_root={root / 'audio'}", "dataset.source.folder_group=none",
            "dataset.num_workers=1", "dataset.segment.segment_s=3.0", "dataset.segment.hop_s=3.0",
            "dataset.split.train=0.5", "dataset.split.validation=0.25", "dataset.split.test=0.25",
            "dataset.audio_column=false", "dataset.features.mfcc=false",
            "embed.kind=sota_tagger", "embed.encoder=mtat-musicnn", "embed.features=embedding",
            "embed.shard_size=2", "embed.batch_size=2", "embed.frames=true", "embed.pooling=mean"]


@pytest.fixture(scope="module")
def built(tmp_path_factory, sota_models_dir: Path) -> Path:
    from eno_hf.data.build import build_dataset

    root = tmp_path_factory.mktemp("companion")
    rng = np.random.default_rng(0)
    for i in range(N_FILES):
        t = np.arange(int(3.2 * 16_000)) / 16_000
        x = 0.3 * np.sin(2 * np.pi * (110 + 23 * i) * t) + 0.05 * rng.standard_normal(t.size)
        path = root / "audio" / ("a" if i % 2 else "b") / f"clip{i:02d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, x.astype(np.float32), 16_000, subtype="PCM_16")
    build_dataset(load_config(PROJECT_ROOT / "configs/base.yaml", _sets(root)), progress=False)
    return root


def _settings(root: Path, data: Path | None = None, extra: list[str] | None = None):
    sets = _sets(root) + (extra or [])
    if data is not None:
        sets.append(f"paths.data_root={data}")
    return load_config(PROJECT_ROOT / "configs/base.yaml", sets)


def _segment_ids(settings) -> list[str]:
    from eno_hf.data.build import open_dataset

    d = open_dataset(settings.paths.data_root, settings.dataset.name)
    return sorted(s for split in d.values() for s in split["segment_id"])


def _copy_data(built: Path, dest: Path) -> Path:
    """A private data root holding the built dataset (each test embeds from scratch)."""
    import shutil

    shutil.copytree(built / "data", dest, ignore=shutil.ignore_patterns("embeddings"))
    return dest


def test_companion_rows_pooling_and_reuse(built: Path, tmp_path: Path) -> None:
    from eno_hf.embeddings.companion import attach_embeddings, embed_dataset
    from eno_hf.embeddings.frames import EmbedderSpec, build_frame_embedder
    from eno_hf.embeddings.embed import load_waveform
    from eno_hf.embeddings.embed import items_from_dataset

    s = _settings(built, _copy_data(built, tmp_path / "data"))
    res = embed_dataset(s)
    ids = _segment_ids(s)
    assert sorted(res.dataset["segment_id"]) == ids and len(ids) == N_FILES
    assert res.embedded == N_FILES and not res.cache_hit and res.rejected == []
    assert res.dim == 200  # Musicnn penultimate layer
    feats = res.dataset.features
    assert feats["embedding"].feature.dtype == "float32" and feats["frames"].feature.feature.dtype == "float16"
    # pooled = mean of the frame rows of the same encoder run; frames = an independent re-embedding
    emb = build_frame_embedder(EmbedderSpec("sota_tagger", "mtat-musicnn", "embedding"))
    item = next(it for it in items_from_dataset(s.paths.data_root, "emb") if it.segment_id == res.dataset[3]["segment_id"])
    ref = emb.embed(load_waveform(item, emb.sample_rate))
    row = res.dataset[3]
    assert row["n_frames"] == ref.shape[0] == len(row["frames"])
    np.testing.assert_allclose(np.asarray(row["frames"], dtype=np.float32), ref.numpy(), rtol=1e-2, atol=1e-2)
    np.testing.assert_allclose(row["embedding"], ref.mean(0).numpy(), rtol=1e-4, atol=1e-5)
    # second call: nothing embedded
    again = embed_dataset(s)
    assert again.cache_hit and again.embedded == 0 and again.dataset["segment_id"] == res.dataset["segment_id"]
    # training input: the column joined by segment_id on every split
    from eno_hf.data.build import open_dataset

    d = open_dataset(s.paths.data_root, "emb")
    joined, dropped = attach_embeddings(d, res.dataset)
    assert dropped == []
    by_id = dict(zip(res.dataset["segment_id"], res.dataset["embedding"]))
    for split in joined.values():
        for r in split.select_columns(["segment_id", "embedding"]):
            assert r["embedding"] == by_id[r["segment_id"]]


def test_pipeline_embed_stage_feeds_training_columns(built: Path, tmp_path: Path) -> None:
    from eno_hf.tagging import run_stages

    s = _settings(built, _copy_data(built, tmp_path / "data"),
                  ["embed.use_for_training=true", "embed.frames=false"])
    state = run_stages(s, ["dataset", "embed"], )
    assert state.cached == {"dataset": True, "embed": False}
    assert all("embedding" in split.column_names for split in state.dataset.values())
    assert len(state.dataset["train"][0]["embedding"]) == 200


def _cli(settings_sets: list[str]) -> list[str]:
    args = [sys.executable, "-m", "eno_hf.cli", "embed", "--companion", "--config", "configs/base.yaml"]
    for x in settings_sets:
        args += ["--set", x]
    return args


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = str(PROJECT_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.mark.slow
def test_sigkill_mid_run_then_resume(built: Path, tmp_path: Path) -> None:
    """SIGKILL `eno embed --companion` after 2 of 6 shards; the resumed run reuses them (their Arrow
    folders untouched) and the companion holds every segment exactly once."""
    from eno_hf.embeddings.companion import companion_dir

    data = _copy_data(built, tmp_path / "data")
    sets = _sets(built) + [f"paths.data_root={data}"]
    out = companion_dir(_settings(built, data), _version(data))
    proc = subprocess.Popen(_cli(sets), cwd=PROJECT_ROOT, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 600
    try:
        while len(list((out / "shards").glob("*.json"))) < 2:
            assert proc.poll() is None, "eno embed finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    markers = sorted((out / "shards").glob("*.json"))
    assert 2 <= len(markers) < N_FILES // 2, "killed too late to test resumption"
    assert not (out / "dataset").exists()
    before = {m.stem: (m.stat().st_mtime_ns, (out / "arrow" / m.stem / "dataset_info.json").stat().st_mtime_ns)
              for m in markers}
    done = subprocess.run(_cli(sets), cwd=PROJECT_ROOT, env=_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"reused {sum(len(json.loads(m.read_text())['meta']) for m in markers)}" in done.stderr
    for stem, times in before.items():  # finished shards were not recomputed
        assert (out / "shards" / f"{stem}.json").stat().st_mtime_ns == times[0]
        assert (out / "arrow" / stem / "dataset_info.json").stat().st_mtime_ns == times[1]
    from datasets import load_from_disk

    ids = load_from_disk(str(out / "dataset"))["segment_id"]
    assert sorted(ids) == _segment_ids(_settings(built, data)) and len(set(ids)) == len(ids) == N_FILES
    assert not list(out.rglob(".*.tmp-*"))  # a killed shard's temporary folder is gone after the resume


def _version(data: Path) -> str:
    return (data / "datasets" / "emb" / "LATEST").read_text().strip()



@pytest.mark.slow
def test_two_processes_same_companion_wait_and_reuse(built: Path, tmp_path: Path, run_concurrently) -> None:
    """Two processes start the same companion at once: one embeds, the other waits on the lock and
    reuses it — every segment is embedded exactly once in total."""
    data = _copy_data(built, tmp_path / "data")
    # embed_dataset imports FileLock from filelock when called: the probe replaces it there
    script = LOCK_PROBE + (
        "from eno_hf.config import load_config\nfrom eno_hf.embeddings.companion import embed_dataset\n"
        "filelock.FileLock = ProbedLock\ncfg = load_config('configs/base.yaml', ARGS)\nbarrier()\n"
        "r = embed_dataset(cfg)\n"
        "print(json.dumps({'embedded': r.embedded, 'reused': r.reused, 'rows': len(r.dataset)}))\n")
    sets = _sets(built) + [f"paths.data_root={data}"]
    probe = tmp_path / "probe"
    probe.mkdir()
    # each holds the lock 2 s longer than it needs, so that on a loaded machine the second one's
    # attempt still falls inside the first one's hold
    outs = run_concurrently(script, [str(probe), "2", "2", *sets])
    # they overlapped: one asked for the companion's lock while the other held it
    from eno_hf.embeddings.companion import companion_dir

    s = _settings(built, data)
    assert_contended(probe, companion_dir(s, _version(data)))
    assert sorted(o["embedded"] for o in outs) == [0, N_FILES]
    assert all(o["rows"] == N_FILES for o in outs)
