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


def test_streamed_scores_equal_the_whole_file_path(tiny_model_dir, fourq_clips, tmp_path):
    """eno tag decodes and runs the model window by window; the scores are those of the whole
    signal through the feature extractor and the model's own chunk averaging."""
    from eno_hf.audio.validate import scan_audio, validate_audio
    from eno_hf.config import AudioConfig
    from eno_hf.inference.pipeline import load_model, predict_waveform
    from eno_hf.inference.tag import stream_scores

    model, extractor = load_model(tiny_model_dir)
    model.config.chunk_batch_size = 4  # 30-s clips at chunk_s=2: several groups of windows
    cfg = AudioConfig(block_s=3.7)
    for clip in fourq_clips[:2]:
        whole = validate_audio(clip, cfg=cfg, sample_rate=16_000)
        expected = predict_waveform(whole.samples, 16_000, model, extractor)
        for keep_s in (600.0, 1.0):  # kept from the first pass / decoded a second time
            got = stream_scores(scan_audio(clip, cfg, sample_rate=16_000, keep_s=keep_s),
                                model, extractor)
            assert got == expected
        one = stream_scores(scan_audio(clip, cfg, sample_rate=16_000), model, extractor,
                            windows_per_pass=1)  # other encoder batches: equal to float rounding
        assert all(abs(one[h][k] - expected[h][k]) < 1e-5 for h in expected for k in expected[h])
    # tail rule and a single short window, as the model's forward applies them
    import soundfile as sf

    short = tmp_path / "short.wav"
    for n_s in (5.5625, 1.2):
        x = whole.samples[: int(n_s * 16_000)]
        sf.write(short, x, 16_000, subtype="FLOAT")
        exp = predict_waveform(validate_audio(short, cfg=cfg).samples, 16_000, model, extractor)
        assert stream_scores(scan_audio(short, cfg, keep_s=0.5), model, extractor) == exp


def test_windows_per_pass_bounded_by_a_minute_of_audio():
    from eno_hf.inference.tag import windows_per_batch
    from eno_hf.models import EnoModelConfig

    assert windows_per_batch(EnoModelConfig(chunk_s=29.0, chunk_batch_size=16)) == 2
    assert windows_per_batch(EnoModelConfig(chunk_s=3.0, chunk_batch_size=16)) == 16
    assert windows_per_batch(EnoModelConfig(chunk_s=120.0, chunk_batch_size=16)) == 1


def test_tag_rejects_what_is_too_long(tiny_model_dir, fourq_clips, tmp_path):
    from eno_hf.config import AudioConfig

    long_midi = tmp_path / "long.mid"  # 35 bytes, 3,500 s of playing time
    long_midi.write_bytes(b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x00\x01MTrk\x00\x00\x00\x0d"
                          b"\x00\x90\x3c\x40\xb6\x58\x80\x3c\x00\x00\xff\x2f\x00")
    records = list(tag_paths([fourq_clips[0], long_midi], tiny_model_dir,
                             audio_cfg=AudioConfig(max_duration_s=20.0)))
    assert [r["error"]["reason"] for r in records] == ["too_long", "too_long"]
    assert "max_duration_s=20" in records[0]["error"]["detail"]
    assert "3500.0 s > max_duration_s=20" in records[1]["error"]["detail"]  # nothing rendered
