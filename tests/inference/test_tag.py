"""inference.tag: tag_paths records (good and bad files), folder expansion, write_jsonl."""

from __future__ import annotations

import json

from eno_hf.inference.tag import tag_paths, write_jsonl


def test_tag_paths_never_stops_on_bad_files(tiny_model_dir, fourq_clips, tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.flac"
    garbage.write_bytes(b"\x00\x01junk" * 50)
    paths = [empty, fourq_clips[0], tmp_path / "missing.mp3", garbage, fourq_clips[4]]
    records = list(tag_paths(paths, tiny_model_dir, top_k=2))
    assert [r["path"] for r in records] == [str(p) for p in paths]
    ok = [r for r in records if "error" not in r]
    assert [r["path"] for r in ok] == [str(fourq_clips[0]), str(fourq_clips[4])]
    assert {r["error"]["reason"] for r in records if "error" in r} <= {"empty", "missing_file", "undecodable"}
    assert records[2]["error"]["reason"] == "missing_file"
    for r in ok:
        assert set(r["heads"]) == {"quadrant", "moods", "valence"}
        assert len(r["top"]["moods"]) == 2 and "valence" not in r["top"]
        moods = r["heads"]["moods"]
        assert r["top"]["moods"][0] == max(moods, key=moods.get)
        assert len(r["tags"]["quadrant"]) == 1


def test_folders_are_expanded_and_jsonl_written(tiny_model_dir, fourq_clips, tmp_path):
    folder = tmp_path / "music"
    folder.mkdir()
    (folder / "notes.txt").write_text("not audio")
    (folder / "bad.wav").write_bytes(b"RIFF0000")
    out = tmp_path / "out" / "tags.jsonl"
    n = write_jsonl(tag_paths([folder, fourq_clips[1]], tiny_model_dir), out)
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert n == len(lines) == 3  # every entry of the folder gets a record, sorted by path
    assert lines[0]["path"].endswith("bad.wav") and lines[0]["error"]["reason"] == "undecodable"
    assert lines[1]["path"].endswith("notes.txt") and lines[1]["error"]["reason"] == "unsupported"
    assert lines[2]["path"] == str(fourq_clips[1]) and "heads" in lines[2]
