"""train_model on a tiny synthetic DatasetDict with a tiny mel_cnn encoder (seconds on CPU)."""

from __future__ import annotations

import json

import datasets
import numpy as np
import pytest
import torch

from eno_hf.config import Settings
from eno_hf.inference.predict import RecordingPredictions, predict_dataset
from eno_hf.training.train import TrainResult, train_model

SR = 16_000
MOODS = ["calm", "dark", "happy"]
QUADS = ["Q1", "Q2"]


def _split(n_rec: int, seed: int, seg_samples=(19_200, 12_000)) -> datasets.Dataset:
    rng = np.random.default_rng(seed)
    rows = {"segment_id": [], "recording_id": [], "waveform": [], "moods": [], "quadrant": [], "valence": []}
    for r in range(n_rec):
        rec = f"s{seed}_r{r}"
        q = r % 2
        for k, n in enumerate(seg_samples):
            t = np.arange(n) / SR
            tone = 0.3 * np.sin(2 * np.pi * (220 if q == 0 else 880) * t)
            rows["segment_id"].append(f"{rec}_seg{k:03d}")
            rows["recording_id"].append(rec)
            rows["waveform"].append((tone + 0.05 * rng.standard_normal(n)).astype(np.float16))
            rows["moods"].append([0, 2] if q == 0 else [1])
            rows["quadrant"].append(q if r != 1 else -1)  # one recording without a quadrant label
            rows["valence"].append(float(q) if r != 2 else None)
    feats = datasets.Features({
        "segment_id": datasets.Value("string"), "recording_id": datasets.Value("string"),
        "waveform": datasets.Sequence(datasets.Value("float16")),
        "moods": datasets.Sequence(datasets.ClassLabel(names=MOODS)),
        "quadrant": datasets.ClassLabel(names=QUADS), "valence": datasets.Value("float32"),
    })
    return datasets.Dataset.from_dict(rows, features=feats)


@pytest.fixture(scope="module")
def tiny_dataset() -> datasets.DatasetDict:
    return datasets.DatasetDict({"train": _split(4, 0), "validation": _split(4, 1), "test": _split(2, 2)})


def _settings(finetune: str = "lora", max_steps: int = 2) -> Settings:
    return Settings.model_validate({
        "dataset": {"features": {"n_mels": 32}},
        "model": {
            "encoder": "mel_cnn", "mel_cnn_channels": 4, "mel_cnn_blocks": 3, "hidden_dim": 8,
            "chunk_s": 1.0, "finetune": finetune, "lora_rank": 2,
            "heads": [{"name": "moods", "kind": "multilabel", "pos_weight": True},
                      {"name": "quad", "kind": "singlelabel", "column": "quadrant"},
                      {"name": "valence", "kind": "regression", "weight": 0.5}],
        },
        "train": {"epochs": 50, "max_steps": max_steps, "batch_size": 8, "eval_batch_size": 4,
                  "learning_rate": 0.01, "encoder_learning_rate": 0.001, "warmup_ratio": 0.0, "augment": False,
                  "early_stopping_patience": 5},
        "registry": {"clearml": False},
    })


def test_train_saves_loadable_model_and_resumes(tiny_dataset, tmp_path):
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    from eno_hf.models.factory import create_model

    settings = _settings()
    torch.manual_seed(settings.train.seed)
    init = create_model(settings, {"moods": MOODS, "quad": QUADS}).state_dict()

    out = tmp_path / "run"
    res = train_model(settings, tiny_dataset, output_dir=out)
    assert isinstance(res, TrainResult) and res.model_dir == out / "model"
    # Two optimizer steps, an evaluation per epoch with recording-level metrics, per-head losses.
    evals = [h for h in res.history if "eval_score" in h]
    assert len(evals) == 2
    assert all(0.0 <= h["eval_score"] <= 1.0 for h in evals)
    assert "eval_moods/roc_auc_macro" in evals[0] and "eval_quad/f1_macro" in evals[0]
    train_logs = [h for h in res.history if "loss" in h]
    assert train_logs and {"loss_moods", "loss_quad", "loss_valence"} <= set(train_logs[0])
    assert res.best_metric is not None and res.best_checkpoint

    # Saved model: LoRA merged (no adapter weights), loads with the Auto classes, weights changed.
    loaded = AutoModelForAudioClassification.from_pretrained(res.model_dir)
    state = loaded.state_dict()
    assert not any("lora_" in k for k in state)
    assert set(state) == set(init)
    changed = [k for k in init if init[k].is_floating_point() and not torch.allclose(init[k], state[k])]
    assert any(k.startswith("heads.") for k in changed) and any(k.startswith("encoder.") for k in changed)
    fe = AutoFeatureExtractor.from_pretrained(res.model_dir)
    assert fe.sampling_rate == SR
    assert json.loads((res.model_dir / "config.json").read_text())["model_type"] == "eno"
    saved_history = json.loads((res.model_dir / "trainer_state.json").read_text())["log_history"]
    assert [h.get("eval_score") for h in saved_history] == [h.get("eval_score") for h in res.history]

    # Recording-level predictions for validation and test.
    val = res.val_predictions
    assert isinstance(val, RecordingPredictions) and len(val.recording_ids) == 4
    assert val.probs["moods"].shape == (4, 3) and val.probs["quad"].shape == (4, 2)
    assert np.allclose(val.probs["quad"].sum(axis=1), 1.0, atol=1e-5)
    assert val.labels["moods"].shape == (4, 3) and val.labels["quad"].tolist().count(-1) == 1
    assert np.isnan(val.labels["valence"]).sum() == 1
    assert res.test_predictions is not None and len(res.test_predictions.recording_ids) == 2
    # predict_dataset on the reloaded model matches the in-memory result.
    again = predict_dataset(loaded, tiny_dataset["validation"], batch_size=3)
    assert again.recording_ids == val.recording_ids
    assert np.allclose(again.probs["moods"], val.probs["moods"], atol=1e-5)

    # Resume: a longer run in the same output_dir continues from the last checkpoint.
    from transformers import TrainerCallback

    class StepRecorder(TrainerCallback):
        steps: list[int] = []

        def on_step_end(self, args, state, control, **kwargs):
            self.steps.append(state.global_step)

    rec = StepRecorder()
    res2 = train_model(_settings(max_steps=3), tiny_dataset, output_dir=out, callbacks=[rec])
    assert rec.steps == [3]  # only the new step ran
    steps = [h["step"] for h in res2.history if "eval_score" in h]
    assert steps == [1, 2, 3]  # the first two evaluations come from the restored trainer state
    assert (out / "checkpoint-3").is_dir()


def test_missing_split_raises(tiny_dataset, tmp_path):
    with pytest.raises(ValueError, match="validation"):
        train_model(_settings(), datasets.DatasetDict({"train": tiny_dataset["train"]}), output_dir=tmp_path)


def test_embeddings_encoder_trains_on_feature_columns(tiny_dataset, tmp_path):
    rng = np.random.default_rng(0)

    def with_fp(ds):
        return ds.add_column("fingerprint", [(rng.standard_normal(64) + q).astype(np.float32)
                                             for q in ds["quadrant"]])

    dd = datasets.DatasetDict({k: with_fp(tiny_dataset[k]) for k in ("train", "validation")})
    settings = _settings()
    settings.model.encoder = "embeddings"
    settings.model.embedding_columns = ["fingerprint"]
    res = train_model(settings, dd, output_dir=tmp_path)
    assert res.val_predictions.probs["moods"].shape == (4, 3)
    assert res.test_predictions is None
    assert not np.isnan(res.metrics["score"])


def test_training_arguments_evaluate_even_if_max_steps_ends_first_epoch(tmp_path):
    from eno_hf.training.train import training_arguments

    short = training_arguments(_settings(max_steps=2), tmp_path, ["labels_moods"], n_train=100)
    assert short.eval_strategy == "steps" and short.eval_steps == 2 and short.save_steps == 2
    epochs = training_arguments(_settings(max_steps=2), tmp_path, ["labels_moods"], n_train=8)
    assert epochs.eval_strategy == "epoch" and epochs.save_strategy == "epoch"
    assert epochs.remove_unused_columns is False and epochs.label_names == ["labels_moods"]
    assert epochs.load_best_model_at_end and epochs.metric_for_best_model == "eval_score"
    assert epochs.greater_is_better and not epochs.fp16 and epochs.report_to == []
