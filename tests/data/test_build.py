"""Dataset build on real 4Q clips, broken inputs, full songs and long-form audio.

The 4Q build runs once per module (``dataset.limit``); other tests reuse it or build tiny
folder datasets in tmp_path (generated audio + symlinks to ../shared, never copies).
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from eno_hf.config import load_config
from eno_hf.data.build import (
    FileJob, build_dataset, cache_path_for, export_parquet, open_dataset, process_file,
    process_recording,
)
from eno_hf.data.qc import read_qc_rows
from eno_hf.data.recording import Recording
from eno_hf.errors import RejectedInput

LIMIT = 8
SEGMENTS_10S = ["dataset.segment.segment_s=10", "dataset.segment.hop_s=10", "dataset.segment.min_last_ratio=0.5"]
SPLIT = ["dataset.split.train=0.5", "dataset.split.validation=0.25", "dataset.split.test=0.25"]


class CountingMap:
    """``map_fn`` that runs jobs in-process and records which recordings were processed."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def __call__(self, fn, jobs):
        self.ids += [j.recording.recording_id for j in jobs]
        return [fn(j) for j in jobs]


def tone_file(path: Path, seconds: float = 12.0, sr: int = 16_000, seed: int = 0,
              amplitude: float = 0.3) -> Path:
    """A music-like test signal (two tones + filtered noise bursts), 16-bit WAV."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 110.0 * (1 + seed % 5)
    x = 0.5 * np.sin(2 * np.pi * f0 * t) + 0.3 * np.sin(2 * np.pi * 1.5 * f0 * t)
    x += 0.2 * rng.standard_normal(t.size) * (np.sin(2 * np.pi * 2.0 * t) > 0.6)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (amplitude * x / np.abs(x).max()).astype(np.float32), sr, subtype="PCM_16")
    return path


def folder_settings(root: Path, data_root: Path, *extra: str):
    return load_config("configs/base.yaml", [
        f"paths.data_root={data_root}", "dataset.name=toy", "dataset.source.kind=folders",
        f"dataset.source.audio_root={root}", "dataset.num_workers=1", *extra])


# ----------------------------------------------------------------------------- real 4Q build
@pytest.fixture(scope="module")
def fourq_settings(fourq_dir: Path, tmp_path_factory):
    root = tmp_path_factory.mktemp("eno-4q")
    return load_config("configs/small.yaml", [f"paths.data_root={root}", f"dataset.limit={LIMIT}",
                                              "dataset.num_workers=2", *SEGMENTS_10S, *SPLIT])


@pytest.fixture(scope="module")
def fourq_build(fourq_settings):
    return build_dataset(fourq_settings, progress=False)


def test_fourq_columns_and_features(fourq_build, fourq_settings) -> None:
    from datasets import Audio, ClassLabel, List

    dsd = fourq_build.dataset
    assert set(dsd) == {"train", "validation", "test"}
    feats = dsd["train"].features
    assert set(feats) == {"segment_id", "recording_id", "group", "path", "segment_start_s",
                          "segment_end_s", "descriptors", "genres", "quadrant", "waveform",
                          "log_mel", "mfcc", "fingerprint", "audio"}
    assert isinstance(feats["quadrant"], ClassLabel)
    assert feats["quadrant"].names == ["q1", "q2", "q3", "q4"]
    for task in ("descriptors", "genres"):
        assert isinstance(feats[task], List) and isinstance(feats[task].feature, ClassLabel)
        assert feats[task].feature.num_classes > 0
    assert "pop/rock" in feats["genres"].feature.names
    assert feats["fingerprint"].length == 64 and feats["fingerprint"].feature.dtype == "float32"
    assert feats["waveform"].feature.dtype == "float16"
    assert feats["log_mel"].feature.feature.dtype == "float16"
    assert feats["segment_start_s"].dtype == "float32"
    assert isinstance(feats["audio"], Audio)
    # path-based: no audio bytes stored (the source files are not copied into the dataset)
    audio = dsd["train"].data.column("audio").to_pylist()
    assert all(a["bytes"] is None and Path(a["path"]).is_file() for a in audio)

    schema = dsd["train"].data.schema
    assert str(schema.field("waveform").type) == "list<item: halffloat>"
    assert str(schema.field("log_mel").type) == "list<item: list<item: halffloat>>"
    ds = dsd["train"].with_format("numpy", columns=["waveform", "log_mel", "mfcc", "fingerprint"])
    row = ds[0]
    sr = fourq_settings.dataset.audio.sample_rate
    assert row["waveform"].shape == (10 * sr,)
    assert row["log_mel"].shape == (128, 1 + 10 * sr // 256)
    assert row["mfcc"].shape == (20, 1 + 10 * sr // 256)
    assert row["fingerprint"].shape == (64,) and np.all(np.isfinite(row["fingerprint"]))
    # labels decode to names through the features
    first = dsd["train"][0]
    q = first["quadrant"]
    assert 0 <= q < 4
    assert Path(first["path"]).parent.name.lower() == feats["quadrant"].int2str(q)


def test_fourq_segment_ids_and_splits(fourq_build) -> None:
    dsd = fourq_build.dataset
    split_of: dict[str, str] = {}
    groups: dict[str, set[str]] = {}
    seg_ids: list[str] = []
    for split, ds in dsd.items():
        cols = ds.select_columns(["segment_id", "recording_id", "group", "segment_start_s",
                                  "segment_end_s"]).to_list()
        groups[split] = {r["group"] for r in cols}
        for r in cols:
            assert split_of.setdefault(r["recording_id"], split) == split
            n = int(r["segment_id"].rsplit("_seg", 1)[1])
            assert r["segment_id"] == f"{r['recording_id']}_seg{n:03d}"
            assert r["segment_start_s"] == pytest.approx(10.0 * n)
            assert r["segment_end_s"] > r["segment_start_s"]
        seg_ids += [r["segment_id"] for r in cols]
    assert len(seg_ids) == len(set(seg_ids))
    assert len(split_of) == LIMIT
    assert all(len(g) > 0 for g in groups.values()), groups
    assert not groups["train"] & groups["validation"]
    assert not groups["train"] & groups["test"]
    assert not groups["validation"] & groups["test"]
    assert fourq_build.report["group_overlap"] == {}


def test_fourq_qc_report_and_card(fourq_build) -> None:
    rep = fourq_build.report
    acc = rep["accounting"]
    assert acc["invariant_holds"] and acc["n_inputs"] == LIMIT == acc["n_written"]
    n_rows = sum(len(ds) for ds in fourq_build.dataset.values())
    assert "written" not in rep  # one row per input: qc_rows.jsonl
    rows = list(read_qc_rows(fourq_build.path))
    assert [r["status"] for r in rows] == ["written"] * LIMIT  # no input rejected
    assert sum(r["n_segments"] for r in rows) == n_rows
    assert Counter(r["split"] for r in rows) == {
        s: v["n_recordings"] for s, v in rep["splits"].items() if v["n_recordings"]}
    assert sum(s["n_segments"] for s in rep["splits"].values()) == n_rows
    for col in ("waveform", "log_mel", "mfcc", "fingerprint"):
        assert rep["non_finite"][col]["nan"] == 0 and rep["non_finite"][col]["inf"] == 0
        assert rep["non_finite"][col]["n_values"] > 0
    assert rep["loudness"]["lufs_after"]["n"] == LIMIT
    assert rep["loudness"]["lufs_after"]["max"] <= -18.0 + 1e-3
    assert set(rep["labels"]["train"]) == {"descriptors", "genres", "quadrant"}
    assert any("dataset.limit" in w for w in rep["warnings"])

    path = fourq_build.path
    on_disk = json.loads((path / "qc_report.json").read_text())
    assert on_disk["accounting"] == acc and on_disk["version"] == fourq_build.version
    card = (path / "README.md").read_text()
    from eno_hf.features.fingerprint import FINGERPRINT_NAMES

    assert fourq_build.version in card and acc["statement"] in card
    assert all(name in card for name in FINGERPRINT_NAMES)
    assert 'load_dataset("arrow"' in card
    settings = json.loads((path / "settings.json").read_text())
    assert settings["dataset"]["limit"] == LIMIT
    assert (path.parent / "LATEST").read_text().strip() == fourq_build.version
    assert not [p for p in path.parent.iterdir() if ".tmp-" in p.name]


def test_fourq_loaders(fourq_build, fourq_settings, tmp_path) -> None:
    from datasets import load_dataset, load_from_disk

    root = fourq_settings.paths.data_root
    n_train = len(fourq_build.dataset["train"])
    assert len(load_from_disk(str(fourq_build.path))["train"]) == n_train
    assert len(open_dataset(root, "4q")["train"]) == n_train
    assert len(open_dataset(root, "4q", fourq_build.version)["test"]) == len(
        fourq_build.dataset["test"])
    arrow = load_dataset("arrow", data_files={"train": str(fourq_build.path / "train" / "*.arrow")},
                         cache_dir=str(tmp_path / "hf"))
    assert len(arrow["train"]) == n_train
    assert arrow["train"].features["quadrant"].names == ["q1", "q2", "q3", "q4"]
    files = export_parquet(fourq_build.path, tmp_path / "pq")
    assert {f.name for f in files} == {"train.parquet", "validation.parquet", "test.parquet"}
    import pyarrow.parquet as papq

    audio = papq.read_table(tmp_path / "pq" / "train.parquet", columns=["audio"]).column(0).to_pylist()
    assert all(a["bytes"] is None and a["path"] for a in audio)  # no source audio embedded
    pq = load_dataset("parquet", data_files={"train": str(tmp_path / "pq" / "train.parquet")},
                      cache_dir=str(tmp_path / "hf"))
    assert pq["train"]["segment_id"] == fourq_build.dataset["train"]["segment_id"]
    with pytest.raises(FileNotFoundError):
        open_dataset(root, "4q", "0000deadbeef0000")


def test_fourq_rerun_is_cache_hit(fourq_build, fourq_settings) -> None:
    calls = CountingMap()
    again = build_dataset(fourq_settings, progress=False, map_fn=calls)
    assert again.cache_hit and again.version == fourq_build.version
    assert again.path == fourq_build.path and calls.ids == []
    # num_workers does not change the version
    other = fourq_settings.model_copy(deep=True)
    other.dataset.num_workers = 1
    assert build_dataset(other, progress=False, map_fn=calls).version == fourq_build.version
    assert calls.ids == []


def test_fourq_one_more_file_processes_only_it(fourq_build, fourq_settings) -> None:
    more = fourq_settings.model_copy(deep=True)
    more.dataset.limit = LIMIT + 1
    calls = CountingMap()
    res = build_dataset(more, progress=False, map_fn=calls)
    assert not res.cache_hit and res.version != fourq_build.version
    assert len(calls.ids) == 1
    assert calls.ids[0] not in {w["recording_id"] for w in read_qc_rows(fourq_build.path, "written")}
    assert res.report["accounting"]["n_written"] == LIMIT + 1
    assert res.report["build"] == {**res.report["build"], "n_processed": 1, "n_from_cache": LIMIT}
    phases = [res.report["build"][k] for k in ("load_s", "hash_s", "process_wall_s", "write_s")]
    assert min(phases) >= 0 and res.report["build"]["write_s"] > 0
    assert sum(phases) <= res.report["build"]["wall_s"] + 0.05  # phases of the build, rounded to 0.01 s
    assert (res.path.parent / "LATEST").read_text().strip() == res.version
    assert fourq_build.path.is_dir()  # the old version stays


# ----------------------------------------------------------------------------- broken inputs
def test_broken_files_are_reported_and_build_completes(tmp_path) -> None:
    root = tmp_path / "music"
    for i in range(4):
        tone_file(root / "tone" / f"good{i}.wav", seed=i)
    (root / "tone" / "zero.wav").write_bytes(b"")
    (root / "tone" / "text.flac").write_text("this is not audio\n" * 50)
    sf.write(root / "tone" / "silence.wav", np.zeros(16_000 * 12, dtype=np.float32), 16_000)
    tone_file(root / "tone" / "short.wav", seconds=0.4, seed=9)
    shutil.copy(root / "tone" / "good0.wav", root / "tone" / "zz_copy.wav")
    settings = folder_settings(root, tmp_path / "data", *SPLIT, "dataset.features.fingerprint=false")

    calls = CountingMap()
    res = build_dataset(settings, progress=False, map_fn=calls)
    rep = res.report
    assert rep["accounting"]["invariant_holds"]
    assert rep["accounting"]["n_inputs"] == 9 and rep["accounting"]["n_written"] == 4
    by_id = {r["recording_id"]: r for r in rep["rejected"]}
    assert by_id["tone__zero"]["reason"] == "empty"
    assert by_id["tone__text"]["reason"] == "undecodable"
    assert by_id["tone__silence"]["reason"] == "silent"
    assert by_id["tone__short"]["reason"] == "too_short"
    assert by_id["tone__zz_copy"]["reason"] == "duplicate_content"
    assert "tone__good0" in by_id["tone__zz_copy"]["detail"]
    assert all(r["path"] and r["detail"] for r in rep["rejected"])
    assert "tone__zz_copy" not in calls.ids and len(calls.ids) == 8
    assert sum(len(d) for d in res.dataset.values()) == 4  # 12 s -> one 10-s segment each
    assert "fingerprint" not in res.dataset["train"].features

    # one new file: new version; only it is processed (rejections are cached too)
    tone_file(root / "tone" / "good9.wav", seed=7)
    calls2 = CountingMap()
    res2 = build_dataset(settings, progress=False, map_fn=calls2)
    assert calls2.ids == ["tone__good9"]
    assert res2.version != res.version and res2.report["accounting"]["n_written"] == 5
    assert {r["reason"] for r in res2.report["rejected"]} == {
        "empty", "undecodable", "silent", "too_short", "duplicate_content"}

    # bookkeeping files (non-audio, named by no metadata row) are reported but make no new version
    (root / "notes.txt").write_text("listening notes\n")
    (root / "tone" / "report.json").write_text("{}")
    calls3 = CountingMap()
    res3 = build_dataset(settings, progress=False, map_fn=calls3)
    assert res3.cache_hit and res3.version == res2.version and calls3.ids == []


def test_process_recording_crop_and_rejections(tmp_path) -> None:
    cfg = load_config("configs/base.yaml", ["dataset.features.fingerprint=false"]).dataset
    path = tone_file(tmp_path / "a.wav", seconds=32.0)
    rec = Recording("a", path, multilabel={"mood": ["calm"]}, singlelabel={"q": "q4"},
                    numeric={"valence": 0.5}, group="artist", start_s=5.0, end_s=31.0)
    out = process_recording(rec, cfg)
    assert [r["segment_id"] for r in out.rows] == ["a_seg000", "a_seg001", "a_seg002"]
    assert [r["segment_start_s"] for r in out.rows] == [5.0, 15.0, 25.0]
    assert out.rows[1]["segment_end_s"] == 25.0 and out.rows[2]["segment_end_s"] == 31.0
    assert out.rows[0]["mood"] == ["calm"] and out.rows[0]["q"] == "q4"
    assert out.rows[0]["valence"] == 0.5 and out.rows[0]["group"] == "artist"
    assert out.rows[0]["waveform"].dtype == np.float16 and out.rows[0]["waveform"].shape == (160_000,)
    assert out.rows[2]["waveform"].shape == (96_000,)
    assert out.stats["n_segments"] == 3 and out.stats["duration_s"] == pytest.approx(26.0)

    silent = tmp_path / "s.wav"
    sf.write(silent, np.zeros(16_000 * 3, dtype=np.float32), 16_000)
    with pytest.raises(RejectedInput) as exc:
        process_recording(Recording("s", silent), cfg)
    assert exc.value.reason == "silent" and str(silent) in str(exc.value)
    job = FileJob(Recording("s", silent), cfg, "0" * 64, str(tmp_path / "c" / "x.npz"))
    outcome = process_file(job)
    assert outcome["status"] == "rejected" and outcome["reason"] == "silent"
    assert (tmp_path / "c" / "x.rejected.json").is_file()


# ----------------------------------------------------------------------------- long inputs
def test_full_song_and_long_form(tmp_path, jamendo_dir: Path, longform_dir: Path) -> None:
    root = tmp_path / "music" / "long"
    root.mkdir(parents=True)
    song = jamendo_dir / "Veränderung_-_doromusis.mp3"
    ogg = longform_dir / "wesnoth-legends-of-the-north.ogg"
    os.symlink(song, root / song.name)
    os.symlink(ogg, root / ogg.name)
    settings = folder_settings(tmp_path / "music", tmp_path / "data",
                               # the symlinks point into ../shared: allow it explicitly
                               f"dataset.source.allowed_roots=[{jamendo_dir}, {longform_dir}]",
                               "dataset.split.train=1.0", "dataset.split.validation=0.0",
                               "dataset.split.test=0.0", "dataset.features.fingerprint=false",
                               "dataset.features.mfcc=false")
    res = build_dataset(settings, progress=False)
    assert res.report["accounting"]["n_written"] == 2 and res.report["rejected"] == []
    ds = res.dataset["train"]
    rows = ds.select_columns(["recording_id", "segment_id", "segment_start_s",
                              "segment_end_s"]).to_list()
    per_rec: dict[str, list[dict]] = {}
    for r in rows:
        per_rec.setdefault(r["recording_id"], []).append(r)
    durations = {w["recording_id"]: w["n_segments"] for w in read_qc_rows(res.path, "written")}
    from eno_hf.audio.io import audio_info

    for name, src in (("long__Veränderung_-_doromusis", song),
                      ("long__wesnoth-legends-of-the-north", ogg)):
        segs = sorted(per_rec[name], key=lambda r: r["segment_id"])
        dur = audio_info(src).duration_s
        assert len(segs) == durations[name]
        assert abs(len(segs) - dur / 10.0) <= 1.0, (name, len(segs), dur)
        assert segs[-1]["segment_end_s"] == pytest.approx(dur, abs=10.0)
        assert [s["segment_id"] for s in segs] == [f"{name}_seg{n:03d}" for n in range(len(segs))]
    assert len(res.dataset["validation"]) == 0 and len(res.dataset["test"]) == 0


# ----------------------------------------------------------------------------- versions
def _rec(rid: str, tags: list[str], group: str | None = None) -> Recording:
    return Recording(rid, Path(f"/music/{rid}.wav"), multilabel={"mood": tags}, group=group)


def test_dataset_version_is_streamed_and_order_free() -> None:
    from eno_hf.data.build import dataset_version
    from eno_hf.data.version import compute_version

    cfg = load_config("configs/base.yaml").dataset
    recs = [_rec(f"r{i:04d}", ["calm"] if i % 2 else ["dark", "calm"], f"g{i % 7}") for i in range(3000)]
    hashes = {r.recording_id: f"{i:064x}" for i, r in enumerate(recs)}
    vocab = {"mood": ["calm", "dark"]}
    rejected = [{"path": "/music/x.wav", "recording_id": "x", "reason": "missing_file", "detail": ""}]
    v = dataset_version(cfg, hashes, recs, rejected, vocab)
    assert len(v) == 16 and int(v, 16) >= 0
    shuffled = recs[::-1]
    assert dataset_version(cfg, dict(reversed(list(hashes.items()))), shuffled, rejected, vocab) == v
    relabelled = [*recs[:-1], _rec(recs[-1].recording_id, ["dark"], "g0")]
    assert dataset_version(cfg, hashes, relabelled, rejected, vocab) != v
    assert dataset_version(cfg, hashes, recs, [], vocab) != v
    assert dataset_version(cfg, {**hashes, "r0000": "f" * 64}, recs, rejected, vocab) != v
    # unsupported files no row names are not part of the version
    stray = {"path": "/music/notes.txt", "recording_id": None, "reason": "unsupported", "detail": ""}
    assert dataset_version(cfg, hashes, recs, [*rejected, stray], vocab) == v
    # (id, hash) pairs are length-prefixed: moving characters between the two changes the version
    assert compute_version([("ab", "c")], cfg) != compute_version([("a", "bc")], cfg)
    assert compute_version([], cfg, rows=[["a", "b"]]) != compute_version([], cfg, rows=[["a"], ["b"]])


def test_processing_hash_does_not_follow_the_build_format() -> None:
    """Versions were re-hashed (BUILD_FORMAT bumped), per-file results were not: their cache
    names (processing_hash) stay what they were, so no file is processed again."""
    from eno_hf.data import version
    from eno_hf.utils.io import json_hash

    cfg = load_config("configs/base.yaml").dataset
    assert version.BUILD_FORMAT != version.PROCESSING_FORMAT == "eno-build-1"
    assert version.processing_hash(cfg) == json_hash({
        "format": "eno-build-1", "audio": cfg.audio.model_dump(mode="json"),
        "segment": cfg.segment.model_dump(mode="json"),
        "features": cfg.features.model_dump(mode="json")})[:12]


def test_cache_results_of_the_flat_layout_are_moved_not_redone(tmp_path: Path) -> None:
    from eno_hf.data.file_cache import _rejection_path, cached_outcome

    cfg = load_config("configs/base.yaml").dataset
    rec = Recording("r", tmp_path / "r.wav")
    content = "cd" + "1" * 62
    path = cache_path_for(tmp_path, rec, content, cfg)
    assert path.parent.name == "cd" and path.parent.parent.name == "segments"
    job = FileJob(rec, cfg, content, str(path))
    assert cached_outcome(job) is None
    flat = path.parent.parent / _rejection_path(path).name  # where builds before the sub-folders put it
    flat.parent.mkdir(parents=True)
    flat.write_text(json.dumps({"reason": "silent", "detail": "RMS -90 dBFS"}))
    out = cached_outcome(job)
    assert out is not None and (out["status"], out["reason"]) == ("rejected", "silent")
    assert not flat.exists() and _rejection_path(path).is_file()
