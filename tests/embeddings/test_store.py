"""Embeddings-only data: eno embed -> .pt + metadata.jsonl -> import (QC) -> export -> import again."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from eno_hf.embeddings.embed import EmbedItem, embed_items
from eno_hf.embeddings.frames import EmbedderSpec, build_frame_embedder, cut_windows
from eno_hf.embeddings.store import export_embeddings, import_embeddings, load_embedding_dataset

PERCEPIANO = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "percepiano"


class _NotATensor:  # pickling this would need unpickling arbitrary classes
    pass


def _write_meta(folder: Path, rows: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _row(sid: str, **kw) -> dict:
    return {"segment_id": sid, "recording_id": sid.split("_")[0], "segment_start": 0.0, "segment_end": 3.0, **kw}


def test_cut_windows_pads_short_and_keeps_half_tails() -> None:
    assert cut_windows(np.ones(10, np.float32), 48, 48).shape == (1, 48)
    assert cut_windows(np.ones(48 * 2 + 30, np.float32), 48, 48).shape == (3, 48)   # 30/48 >= half: kept
    assert cut_windows(np.ones(48 * 2 + 10, np.float32), 48, 48).shape == (2, 48)   # 10/48 < half: dropped
    with pytest.raises(ValueError, match=r"non-empty 1-D waveform, got shape \(2, 2\)"):
        cut_windows(np.ones((2, 2), np.float32), 48, 48)


def test_import_rejects_each_broken_tensor_with_its_reason(tmp_path: Path) -> None:
    src = tmp_path / "src"
    emb = src / "embeddings"
    emb.mkdir(parents=True)
    rng = np.random.default_rng(0)
    torch.save(torch.tensor(rng.normal(size=(4, 8)), dtype=torch.float32), emb / "good_1.pt")
    np.save(emb / "good_2.npy", rng.normal(size=(3, 8)).astype(np.float32))
    torch.save(torch.tensor(rng.normal(size=(8,)), dtype=torch.float32), emb / "vector_3.pt")   # (dim,) is fine
    torch.save(torch.zeros(4, 5), emb / "wrongdim_1.pt")
    torch.save(torch.zeros(4, 8, dtype=torch.int64), emb / "intdtype_1.pt")
    bad = torch.zeros(4, 8)
    bad[1, 2] = float("nan")
    torch.save(bad, emb / "nan_1.pt")
    inf = torch.zeros(2, 8)
    inf[0, 0] = float("inf")
    torch.save(inf, emb / "inf_1.pt")
    torch.save({"obj": _NotATensor()}, emb / "pickled_1.pt")
    (emb / "corrupt_1.pt").write_bytes(b"not a torch file")
    torch.save(torch.zeros(2, 8), emb / "orphan_1.pt")
    torch.save(torch.zeros(0, 8), emb / "empty_1.pt")
    rows = [_row(s) for s in ("good_1", "good_2", "vector_3", "wrongdim_1", "intdtype_1", "nan_1", "inf_1",
                              "pickled_1", "corrupt_1", "missing_1", "empty_1")]
    rows += [_row("good_1"), {"segment_id": "norec_1"}, _row("../escape"), _row("backwards_1", segment_start=5.0, segment_end=2.0)]
    _write_meta(src, rows)
    res = import_embeddings(src, tmp_path / "root", "emb")
    reasons = {r["segment_id"]: r["reason"] for r in res.rejected}
    assert res.accepted == 3
    assert reasons["wrongdim_1"] == "bad_shape" and reasons["empty_1"] == "bad_shape"
    assert reasons["intdtype_1"] == "bad_dtype"
    assert reasons["nan_1"] == "nan_inf" and reasons["inf_1"] == "nan_inf"
    assert reasons["pickled_1"] == "undecodable" and reasons["corrupt_1"] == "undecodable"
    assert reasons["missing_1"] == "missing_file"
    assert reasons["orphan_1"] == "no_metadata"
    assert reasons["norec_1"] == "bad_metadata" and reasons["../escape"] == "bad_metadata"
    assert reasons["backwards_1"] == "bad_metadata"
    assert sum(r["reason"] == "bad_metadata" and r["segment_id"] == "good_1" for r in res.rejected) == 1  # duplicate row
    report = json.loads((res.path / "qc_report.json").read_text())
    assert report["accepted"] == 3 and report["rejected"] == len(res.rejected)
    ds = load_embedding_dataset(tmp_path / "root", "emb")
    assert sorted(ds["segment_id"]) == ["good_1", "good_2", "vector_3"]
    assert dict(zip(ds["segment_id"], ds["frames"])) == {"good_1": 4, "good_2": 3, "vector_3": 1}
    with pytest.raises(ValueError, match="no embedding could be imported"):
        _write_meta(tmp_path / "none", [_row("x_1")])
        import_embeddings(tmp_path / "none", tmp_path / "root", "none")


@pytest.mark.parametrize("fmt", ["pt", "npy"])
def test_embed_export_import_round_trip(tmp_path: Path, fmt: str) -> None:
    """eno embed (real Musicnn weights, real PercePiano MIDI + a synthetic clip) -> import -> export -> import."""
    models = Path(__file__).resolve().parents[2].parent / "shared" / "models" / "sota-music-tagging"
    if not models.is_dir() or not PERCEPIANO.is_dir():
        pytest.skip("real data not available: ../shared/models/sota-music-tagging or ../shared/data/percepiano")
    embedder = build_frame_embedder(EmbedderSpec("sota_tagger", "mtat-musicnn", "embedding"), models)
    midi = sorted((PERCEPIANO / "midi").glob("Beethoven_WoO80_thema_8bars_1*_1.mid"))[:1]
    t = np.arange(16000 * 7) / 16000
    items = [EmbedItem("tone_1", waveform=(0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), fields={"performer": "synth"}),
             EmbedItem(midi[0].stem, path=str(midi[0]), fields={"performer": "real"}),
             EmbedItem("broken_1", midi_bytes=b"MThd garbage"),
             EmbedItem("absent_1", path=str(tmp_path / "absent.mid"))]
    out = tmp_path / "out"
    res = embed_items(items, embedder, out, shard_size=2, render_cache=tmp_path / "render")
    assert res.embedded == 2
    assert {r["segment_id"]: r["reason"] for r in res.rejected} == {"broken_1": "undecodable", "absent_1": "missing_file"}
    again = embed_items(items, embedder, out, shard_size=2, render_cache=tmp_path / "render")
    assert again.embedded == 0 and again.reused == 2                     # resumable: nothing recomputed
    meta = [json.loads(x) for x in (out / "metadata.jsonl").read_text().splitlines()]
    assert [m["segment_id"] for m in meta] == ["tone_1", midi[0].stem]
    assert meta[0]["frames"] == 2 and meta[0]["segment_end"] == pytest.approx(7.0)   # 3-s windows, 1-s tail dropped
    first = import_embeddings(out, tmp_path / "root", "emb", expected_dim=200)
    assert first.accepted == 2 and first.rejected == []
    ds = load_embedding_dataset(tmp_path / "root", "emb", first.version)
    exported = export_embeddings(ds, tmp_path / "exported", fmt=fmt)
    second = import_embeddings(exported, tmp_path / "root2", "emb")
    ds2 = load_embedding_dataset(tmp_path / "root2", "emb")
    for a, b in zip(ds, ds2):
        assert a["segment_id"] == b["segment_id"] and a["performer"] == b["performer"]
        np.testing.assert_array_equal(np.asarray(a["embedding"], np.float32), np.asarray(b["embedding"], np.float32))
    original = torch.load(out / "embeddings" / "tone_1.pt", weights_only=True)
    np.testing.assert_array_equal(np.asarray(ds2[0]["embedding"], np.float32), original.numpy())
    assert second.version == first.version                               # same values + metadata -> same version


def test_two_processes_give_the_one_process_output(tmp_path: Path) -> None:
    """``embed_items_2way``: a spawned child from the last shard, this process from the first; every
    segment is embedded exactly once and the files equal a one-process run's."""
    from eno_hf.embeddings.embed import embed_items_2way

    models = Path(__file__).resolve().parents[2].parent / "shared" / "models" / "sota-music-tagging"
    if not models.is_dir():
        pytest.skip("real weights not available: ../shared/models/sota-music-tagging")
    embedder = build_frame_embedder(EmbedderSpec("sota_tagger", "mtat-musicnn", "embedding", path=str(models)))
    rng = np.random.default_rng(0)
    items = [EmbedItem(f"clip_{i}", waveform=(0.1 * rng.standard_normal(16000 * (3 + i % 3))).astype(np.float32))
             for i in range(8)]
    one = embed_items(items, embedder, tmp_path / "one", shard_size=2)
    calls = []
    two = embed_items_2way(items, embedder, tmp_path / "two", workers=2, shard_size=2,
                           progress=lambda done, total: calls.append(total))  # a closure: stays in this process
    assert one.embedded == 8 and two.embedded == 8  # each segment once over both processes
    assert calls and set(calls) == {4}
    assert (tmp_path / "one" / "metadata.jsonl").read_text() == (tmp_path / "two" / "metadata.jsonl").read_text()
    for it in items:
        a = torch.load(tmp_path / "one" / "embeddings" / f"{it.segment_id}.pt", weights_only=True)
        b = torch.load(tmp_path / "two" / "embeddings" / f"{it.segment_id}.pt", weights_only=True)
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


_KILL_SCRIPT = """
import sys
import numpy as np
from eno_hf.embeddings.embed import EmbedItem, embed_items_2way
from eno_hf.embeddings.frames import EmbedderSpec, build_frame_embedder
embedder = build_frame_embedder(EmbedderSpec("sota_tagger", "mtat-musicnn", "embedding", path=sys.argv[1]))
rng = np.random.default_rng(0)
items = [EmbedItem(f"clip_{i}", waveform=(0.1 * rng.standard_normal(16000 * 3)).astype(np.float32))
         for i in range(2000)]  # minutes of work: still running when the test kills this process
embed_items_2way(items, embedder, sys.argv[2], workers=2, shard_size=2)
"""


def test_two_process_child_dies_with_a_killed_parent(tmp_path: Path) -> None:
    """``kill -9`` of the process running ``embed_items_2way`` (the OOM killer, a user's ``kill``
    of ``eno run``): the spawned child embedding the other half dies with it instead of working on."""
    import os
    import subprocess
    import sys
    import time

    import psutil
    from kill_probe import kill_group, kill_main_and_assert_workers_die

    models = Path(__file__).resolve().parents[2].parent / "shared" / "models" / "sota-music-tagging"
    if not models.is_dir():
        pytest.skip("real weights not available: ../shared/models/sota-music-tagging")
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path / "run")}  # this test's worker pid files
    (tmp_path / "run").mkdir()
    proc = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, str(models), str(tmp_path / "out")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        main, deadline = psutil.Process(proc.pid), time.monotonic() + 300
        child = None
        while child is None or not (tmp_path / "out" / "shards").is_dir():  # both at work
            assert proc.poll() is None, "the embedding process ended before its child started"
            assert time.monotonic() < deadline, "timed out waiting for the child process"
            child = next((c for c in main.children() if "spawn_main" in " ".join(c.cmdline())), None)
            time.sleep(0.1)
        time.sleep(1.0)  # the child has imported eno and set its parent-death signal
        kill_main_and_assert_workers_die(proc, [child])
    finally:
        kill_group(proc)
