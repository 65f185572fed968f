"""The ClearML Serving ``Preprocess`` class, called as ClearML Serving's custom engine calls it."""

from __future__ import annotations

import base64

import pytest
from serving_uploads import SR, bad_uploads, noise, wav_bytes

from eno_hf.inference.pipeline import load_model, predict_waveform, tags_above_threshold
from eno_hf.serving.clearml_preprocess import Preprocess


def serve(pre: Preprocess, body):
    state: dict = {}
    stats: list[dict] = []
    data = pre.preprocess(body, state, stats.append)
    data = pre.process(data, state, stats.append)
    return pre.postprocess(data, state, stats.append), stats


@pytest.fixture(scope="module")
def pre(serve_model_dir):
    p = Preprocess()
    p.load(str(serve_model_dir / "model.safetensors"))  # ClearML hands over the weights file
    return p


def test_raw_bytes_and_base64_json_match_the_model(pre, serve_model_dir):
    wave = noise(3.0, 7)
    data = wav_bytes(wave, subtype="FLOAT")
    model, extractor = load_model(serve_model_dir)
    expected = predict_waveform(wave, SR, model, extractor)
    for body in (data, {"audio_base64": base64.b64encode(data).decode(), "filename": "x.wav"}):
        out, stats = serve(pre, body)
        assert out["heads"].keys() == expected.keys()
        for head, scores in expected.items():
            for label, value in scores.items():
                assert out["heads"][head][label] == pytest.approx(value, abs=1e-5)
        assert out["tags"] == tags_above_threshold(expected, model.config)
        assert out["duration_s"] == pytest.approx(3.0) and stats and "error" not in out


@pytest.mark.parametrize("case", ["garbage", "silence", "nan", "empty_body"])
def test_bad_inputs_answer_an_error(pre, case):
    name, data, _, reason = bad_uploads()[case]
    out, _ = serve(pre, {"audio_base64": base64.b64encode(data).decode(), "filename": name})
    assert out == {"error": {"reason": reason, "detail": out["error"]["detail"], "file": name}}


def test_bad_base64_and_body_type(pre):
    assert serve(pre, {"audio_base64": "%%%"})[0]["error"]["reason"] == "bad_request"
    assert serve(pre, 42)[0]["error"]["reason"] == "bad_request"


def test_load_refuses_a_non_model(tmp_path):
    with pytest.raises(FileNotFoundError):
        Preprocess().load(str(tmp_path / "weights.bin"))
