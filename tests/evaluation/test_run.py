"""evaluate_model orchestration with a stand-in model and predictor; the Prefect flow's body."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from eno_hf.config import Settings
from eno_hf.evaluation import run as R

HEADS = [{"name": "moods", "kind": "multilabel", "labels": ["a", "b", "c"]},
         {"name": "quadrant", "kind": "singlelabel", "labels": ["Q1", "Q2"]},
         {"name": "emb", "kind": "projection", "labels": []}]


def _fake_predictions(split_name: str):
    """Positives score ~0.3 (0.5 misses them all); validation and test alike."""
    rng = np.random.default_rng(0 if split_name == "validation" else 1)
    y = (rng.random((50, 3)) < 0.4).astype(int)
    p = np.clip(np.where(y == 1, 0.3, 0.1) + rng.normal(0, 0.03, y.shape), 0, 1)
    yq = rng.integers(0, 2, 50)
    return {"moods": p, "quadrant": np.eye(2)[yq] * 0.8 + 0.1}, {"moods": y, "quadrant": yq}


@pytest.fixture()
def fake(tmp_path, monkeypatch):
    """A model dir (config.json + checkpoints with trainer_state.json) and recorded predict calls."""
    d = tmp_path / "run" / "model"
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"model_type": "eno", "heads": HEADS, "thresholds": {}}))
    ckpt = tmp_path / "run" / "checkpoints" / "checkpoint-20"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer_state.json").write_text(json.dumps({"log_history": [
        {"loss": 1.0, "epoch": 1, "step": 10}, {"eval_score": 0.6, "epoch": 1, "step": 10},
        {"loss": 0.7, "epoch": 2, "step": 20}, {"eval_score": 0.7, "epoch": 2, "step": 20}]}))
    (tmp_path / "run" / "checkpoints" / "checkpoint-10").mkdir()
    calls = []
    from eno_hf.models.configuration import EnoModelConfig

    monkeypatch.setattr(R, "load_model", lambda p: SimpleNamespace(config=EnoModelConfig(heads=HEADS)))

    def fake_predict(model, split, batch_size, progress=None):
        calls.append((split[0], batch_size))
        return _fake_predictions(split[0])

    monkeypatch.setattr(R, "predict_split", fake_predict)
    return SimpleNamespace(path=d, calls=calls)


DATASET = {"validation": ["validation"] * 5, "test": ["test"] * 5}


def test_evaluate_model(tmp_path, fake):
    model_dir = fake.path
    out = tmp_path / "eval"
    metrics = R.evaluate_model(model_dir, DATASET, out, Settings())
    assert [c[0] for c in fake.calls] == ["validation", "test"]
    assert fake.calls[0][1] == Settings().train.eval_batch_size
    assert set(metrics) == {"moods", "quadrant", "score"}
    assert json.loads((out / "metrics.json").read_text()) == metrics
    # thresholds tuned on validation fix the badly calibrated tags
    thr = json.loads((out / "thresholds.json").read_text())["moods"]
    assert all(0.1 < t < 0.3 for t in thr)
    assert metrics["moods"]["thresholds"] == thr and metrics["moods"]["f1_macro"] > 0.9
    assert json.loads((model_dir / "config.json").read_text())["thresholds"]["moods"] == thr
    assert (out / "validation_metrics.json").is_file()
    for name in ("per_tag_moods.csv", "per_tag_quadrant.csv", "roc_auc_moods.png", "pr_moods.png",
                 "confusion_quadrant.png", "training_curves.png"):
        assert (out / name).is_file(), name


def test_evaluate_model_without_validation(tmp_path, fake):
    model_dir = fake.path
    s = Settings()
    s.evaluate.save_thresholds = False
    s.evaluate.plots = False
    s.evaluate.batch_size = 3
    metrics = R.evaluate_model(model_dir, {"test": ["test"]}, tmp_path / "e", s)
    assert fake.calls == [("test", 3)]
    assert metrics["moods"]["thresholds"] == [0.5, 0.5, 0.5]
    assert metrics["moods"]["f1_macro"] == 0.0
    assert json.loads((model_dir / "config.json").read_text())["thresholds"] == {}
    assert not list((tmp_path / "e").glob("*.png"))
    with pytest.raises(KeyError, match="test"):
        R.evaluate_model(model_dir, {"validation": ["validation"]}, tmp_path / "e2", s)


def test_save_thresholds_merges(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"thresholds": {"genres": [0.2]}, "x": 1}))
    R.save_thresholds(tmp_path, {"moods": np.array([0.3, 0.4])})
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg == {"thresholds": {"genres": [0.2], "moods": [0.3, 0.4]}, "x": 1}


def test_find_history_prefers_latest_checkpoint(fake):
    model_dir = fake.path
    hist = R.find_history(model_dir)
    assert hist is not None and hist[-1]["eval_score"] == 0.7
    assert R.find_history(model_dir.parent / "nowhere" / "model") is None


def test_evaluate_stage_calls_library(tmp_path, monkeypatch, synthetic_dd):
    """The pipeline's evaluate stage (what ``eno evaluate`` and the ``eno-evaluate`` flow run) calls
    ``evaluate_model`` with the settings it was given, then reuses the result while the model's
    weights and the dataset version are unchanged."""
    from eno_hf.config import load_config
    from eno_hf.tagging import PipelineState, stage_evaluate

    seen = []

    def fake_evaluate_model(model_dir, dataset, out_dir, settings):
        seen.append(dict(model_dir=model_dir, splits=sorted(dataset), out=out_dir, s=settings))
        (out_dir).mkdir(parents=True, exist_ok=True)
        (out_dir / "metrics.json").write_text(json.dumps({"score": 0.5}))
        return {"score": 0.5}

    monkeypatch.setattr(R, "evaluate_model", fake_evaluate_model)
    model = tmp_path / "m"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"w")
    settings = load_config(None, ["evaluate.pr_top_k=3"])
    state = PipelineState(dataset=synthetic_dd, dataset_version="v1", model_dir=model, eval_dir=tmp_path / "out")
    res = stage_evaluate(settings, state)
    assert res["metrics"] == {"score": 0.5} and res["cached"] == {"evaluate": False}
    assert seen[0]["splits"] == ["test", "train", "validation"] and seen[0]["s"].evaluate.pr_top_k == 3
    assert stage_evaluate(settings, state)["cached"] == {"evaluate": True} and len(seen) == 1
    state.dataset_version = "v2"  # another dataset version: evaluated again
    assert stage_evaluate(settings, state)["cached"] == {"evaluate": False} and len(seen) == 2


def test_evaluate_model_with_a_real_tiny_model(tmp_path, make_dd):
    """End to end with the real model/predict code: an untrained ``embeddings`` model on the
    synthetic fingerprints (uses eno_hf.models.factory and eno_hf.training.train.predict_dataset).

    No recording has ``moods=None`` here: ``predict_dataset`` reads the split with
    ``with_format("numpy")``, which fails on a list column holding None (datasets' numpy formatter).
    """
    from eno_hf.config import HeadConfig
    from eno_hf.models import EnoModelConfig
    from eno_hf.models.factory import create_model

    dd = make_dd(12, 8, 8, missing_first=False)  # no None labels: see below
    s = Settings()
    s.model.encoder, s.model.embedding_columns, s.model.hidden_dim = "embeddings", ["fingerprint"], 8
    s.model.heads = [HeadConfig(name="moods", kind="multilabel"),
                     HeadConfig(name="quadrant", kind="singlelabel"),
                     HeadConfig(name="valence", kind="regression")]
    vocab = {"moods": dd["train"].features["moods"].feature.names,
             "quadrant": dd["train"].features["quadrant"].names}
    create_model(s, vocab).save_pretrained(tmp_path / "model")
    metrics = R.evaluate_model(tmp_path / "model", dd, tmp_path / "eval", s)
    assert metrics["moods"]["n_samples"] == 8 and metrics["quadrant"]["n_samples"] == 8
    assert metrics["valence"]["n_samples"] == 8
    assert len(metrics["quadrant"]["confusion_matrix"]) == 4
    cfg = EnoModelConfig.from_pretrained(tmp_path / "model")
    assert list(cfg.thresholds["moods"]) == metrics["moods"]["thresholds"]
    assert (tmp_path / "eval" / "roc_auc_moods.png").is_file()
