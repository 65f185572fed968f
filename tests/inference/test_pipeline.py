"""inference.pipeline: load_pipeline, predict_file, tags_above_threshold."""

from __future__ import annotations

import pytest

from eno_hf.errors import AudioDecodeError
from eno_hf.inference.pipeline import load_model, load_pipeline, predict_file, tags_above_threshold


def test_predict_file_scores_every_head(tiny_model_dir, fourq_clips):
    model, extractor = load_model(tiny_model_dir)
    scores = predict_file(fourq_clips[0], model, extractor)
    assert set(scores) == {"quadrant", "moods", "valence"}
    assert set(scores["moods"]) == {"calm", "dark", "happy"}
    assert sum(scores["quadrant"].values()) == pytest.approx(1.0, abs=1e-5)
    assert all(0.0 < s < 1.0 for s in scores["moods"].values())
    assert set(scores["valence"]) == {"value"}


def test_predict_file_agrees_with_pipeline(tiny_model_dir, fourq_clips):
    model, extractor = load_model(tiny_model_dir)
    scores = predict_file(fourq_clips[2], model, extractor)
    pipe = load_pipeline(tiny_model_dir)
    result = {r["label"]: r["score"] for r in pipe(str(fourq_clips[2]), top_k=None)}
    # the pipeline decodes with ffmpeg and resamples differently: close, not identical
    for head in ("quadrant", "moods"):
        for label, score in scores[head].items():
            assert result[f"{head}/{label}"] == pytest.approx(score, abs=0.02)


def test_tags_above_threshold_uses_tuned_thresholds(tiny_model_dir):
    model, _ = load_model(tiny_model_dir)
    scores = {"quadrant": {"Q1": 0.1, "Q2": 0.6, "Q3": 0.2, "Q4": 0.1},
              "moods": {"calm": 0.3, "dark": 0.99, "happy": 0.7}, "valence": {"value": 0.2}}
    # thresholds in the saved config: calm 0.0, dark 1.0, happy 0.0
    assert tags_above_threshold(scores, model.config) == {"quadrant": ["Q2"], "moods": ["happy", "calm"]}
    model.config.thresholds = {}
    assert tags_above_threshold(scores, model.config)["moods"] == ["dark", "happy"]


def test_predict_file_raises_on_bad_file(tiny_model_dir, tmp_path):
    model, extractor = load_model(tiny_model_dir)
    bad = tmp_path / "garbage.mp3"
    bad.write_bytes(b"this is not audio" * 100)
    with pytest.raises(AudioDecodeError):
        predict_file(bad, model, extractor)
