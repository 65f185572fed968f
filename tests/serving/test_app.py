"""The FastAPI app in-process (``TestClient``): endpoints, limits (413 with and without
``Content-Length``), error bodies, and the OpenAPI schema checked by schemathesis."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from serving_uploads import LIMITS, SR, noise, wav_bytes

from eno_hf.inference.pipeline import load_model, predict_waveform
from eno_hf.serving.app import create_app
from eno_hf.serving.config import ServeConfig
from eno_hf.serving.predictor import TorchPredictor


@pytest.fixture(scope="module")
def predictor(serve_model_dir):
    return TorchPredictor(serve_model_dir)


@pytest.fixture(scope="module")
def client(predictor):
    with TestClient(create_app(predictor, ServeConfig(**LIMITS, max_wait_ms=5))) as c:
        yield c


def _multipart(name: str, data: bytes, field: str = "file") -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\n"
            f"Content-Type: audio/wav\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_predict_matches_model(client, serve_model_dir):
    wave = noise(4.5, 3)
    model, extractor = load_model(serve_model_dir)
    expected = predict_waveform(wave, SR, model, extractor)
    r = client.post("/predict", files={"file": ("a.wav", wav_bytes(wave, subtype="FLOAT"), "audio/wav")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["heads"]["valence"]["value"] == pytest.approx(expected["valence"]["value"], abs=1e-5)
    assert body["heads"]["quadrant"] == pytest.approx(expected["quadrant"], abs=1e-5)
    assert body["tags"]["quadrant"] == [max(expected["quadrant"], key=expected["quadrant"].get)]
    assert "dark" not in body["tags"]["moods"]  # threshold 1.0: never
    assert set(body["timing"]) == {"decode_ms", "queue_ms", "inference_ms", "total_ms", "batch_size"}


def test_batch_endpoint_keeps_order_and_per_item_errors(client):
    files = [("files", ("a.wav", wav_bytes(noise(2, 1)), "audio/wav")),
             ("files", ("b.wav", b"junk" * 100, "audio/wav")),
             ("files", ("c.wav", wav_bytes(noise(3, 2)), "audio/wav"))]
    r = client.post("/predict/batch", files=files)
    assert r.status_code == 200
    items = r.json()["results"]
    assert [i["file"] for i in items] == ["a.wav", "b.wav", "c.wav"]
    assert items[0]["prediction"] and items[2]["prediction"] and items[1]["error"]["reason"] == "undecodable"


def test_over_size_with_content_length_is_413_before_reading(client):
    body, ctype = _multipart("big.wav", b"\0" * (2 * 2**20))
    r = client.post("/predict", content=body, headers={"content-type": ctype})
    assert r.status_code == 413 and r.json()["error"]["reason"] == "too_large"


def test_over_size_chunked_is_413(client):
    body, ctype = _multipart("big.wav", b"\0" * (2 * 2**20))

    def chunks():
        for i in range(0, len(body), 65536):
            yield body[i: i + 65536]

    r = client.post("/predict", content=chunks(), headers={"content-type": ctype})
    assert r.status_code == 413 and r.json()["error"]["reason"] == "too_large"


def test_errors_are_json_with_reason(client):
    assert client.post("/predict", data={"x": "1"}).json()["error"]["reason"] in ("unsupported_media_type",
                                                                                    "bad_request")
    r = client.post("/predict", files={"other": ("a.wav", b"x", "audio/wav")})
    assert r.status_code == 400 and r.json()["error"]["reason"] == "bad_request"
    r = client.get("/nope")
    assert r.status_code == 404 and r.json()["error"]["reason"] == "not_found"
    r = client.get("/predict")
    assert r.status_code == 405
    files = [("files", (f"{i}.wav", b"x", "audio/wav")) for i in range(LIMITS["max_files"] + 1)]
    r = client.post("/predict/batch", files=files)
    assert r.status_code == 422 and r.json()["error"]["reason"] == "too_many_files"


def test_health_model_and_docs(client):
    h = client.get("/health")
    assert h.status_code == 200 and h.json()["ready"] is True
    assert "pid" not in h.json() and h.json()["inflight"]["bytes"] == 0
    assert client.get("/model").json()["heads"][1]["thresholds"] == [0.0, 1.0, 0.0]
    assert client.get("/docs").status_code == 404  # off by default: no CDN assets
    assert client.get("/redoc").status_code == 404


def test_docs_from_local_assets_only(predictor, tmp_path):
    """With ``serve.docs`` on, /docs references only local URLs (the assets folder), never a CDN;
    without assets the app refuses to start."""
    import re

    for name in ("swagger-ui-bundle.js", "swagger-ui.css"):
        (tmp_path / name).write_text(f"/* {name} */")
    with TestClient(create_app(predictor, ServeConfig(docs=True, docs_assets_dir=tmp_path))) as c:
        page = c.get("/docs")
        assert page.status_code == 200
        urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)""", page.text)
        assert "/docs-assets/swagger-ui-bundle.js" in urls and "/openapi.json" in urls
        assert not re.search(r"https?://", page.text), "external reference in /docs"
        assert c.get("/docs-assets/swagger-ui.css").text == "/* swagger-ui.css */"
    with pytest.raises(ValueError, match="docs_assets_dir"):
        create_app(predictor, ServeConfig(docs=True, docs_assets_dir=tmp_path / "none"))


def test_openapi_schema_with_schemathesis(predictor):
    """Property-based requests generated from the OpenAPI document (bounded: a few examples per
    operation): no 5xx, only documented status codes, responses match their schemas."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    app = create_app(predictor, ServeConfig(**LIMITS))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures = []
    modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
    for operation, mode in ((r.ok(), m) for r in schema.get_all_operations() for m in modes):
        if mode is schemathesis.GenerationMode.NEGATIVE and operation.method.upper() == "GET":
            continue  # no parameters to break

        @settings(max_examples=6, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case):
            # any byte string is schema-valid for a binary upload, but only audio is accepted:
            # positive_data_acceptance cannot hold for an upload API, every other check applies
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        try:
            check()
        except Exception as exc:  # noqa: BLE001 - collect all operations' failures
            failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert not failures, "\n".join(failures)


def test_midi_upload_is_rendered_and_tagged_like_eno_tag(client, serve_model_dir, tmp_path, monkeypatch):
    """A real PercePiano MIDI performance: rendered with FluidSynth (``eno_hf.audio.midi``) by the
    same ``load_audio`` as ``eno tag``, so the scores are ``eno tag``'s."""
    import shutil
    from pathlib import Path

    from eno_hf.inference.tag import tag_paths

    midi_dir = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "percepiano" / "midi"
    if shutil.which("fluidsynth") is None or not midi_dir.is_dir():
        pytest.skip("fluidsynth or ../shared/data/percepiano absent")
    monkeypatch.setenv("ENO_RENDER_CACHE", str(tmp_path / "render-cache"))
    path = sorted(midi_dir.glob("*.mid"))[0]
    r = client.post("/predict", files={"file": (path.name, path.read_bytes(), "audio/midi")})
    assert r.status_code == 200, r.text
    tagged = next(tag_paths([path], serve_model_dir))
    for head, scores in tagged["heads"].items():
        assert r.json()["heads"][head] == pytest.approx(scores, abs=1e-5)
