"""EnoTrainer: encoder/head learning-rate split, prediction_step probabilities."""

from __future__ import annotations

import pytest
import torch
from transformers import TrainingArguments

from eno_hf.config import Settings
from eno_hf.models.factory import create_model
from eno_hf.training.trainer import EnoTrainer, is_encoder_parameter

VOCAB = {"moods": ["a", "b", "c"], "quad": ["q1", "q2"]}


@pytest.fixture()
def tiny(tmp_path):
    settings = Settings.model_validate({
        "dataset": {"features": {"n_mels": 32}},
        "model": {"encoder": "mel_cnn", "mel_cnn_channels": 4, "mel_cnn_blocks": 3, "hidden_dim": 8,
                  "chunk_s": 0.5,
                  "heads": [{"name": "moods", "kind": "multilabel"}, {"name": "quad", "kind": "singlelabel"}]},
    })
    model = create_model(settings, VOCAB)
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], remove_unused_columns=False,
                             label_names=["labels_moods", "labels_quad"], learning_rate=1e-2,
                             weight_decay=0.1, use_cpu=True)
    return model, args


def test_encoder_learning_rate_param_groups(tiny):
    model, args = tiny
    trainer = EnoTrainer(model=model, args=args, heads=model.config.heads, encoder_learning_rate=1e-4)
    opt = trainer.create_optimizer()
    lrs = sorted({g["lr"] for g in opt.param_groups})
    assert lrs == [1e-4, 1e-2]
    by_id = {id(p): g for g in opt.param_groups for p in g["params"]}
    for name, p in model.named_parameters():
        assert by_id[id(p)]["lr"] == (1e-4 if is_encoder_parameter(name) else 1e-2)
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))
    # Without the split: the Trainer default (one learning rate).
    plain = EnoTrainer(model=model, args=args, heads=model.config.heads).create_optimizer()
    assert {g["lr"] for g in plain.param_groups} == {1e-2}


def test_prediction_step_returns_probabilities(tiny):
    model, args = tiny
    trainer = EnoTrainer(model=model, args=args, heads=model.config.heads)
    batch = {"input_values": torch.randn(3, 16_000),
             "labels_moods": torch.tensor([[1.0, 0, 0], [-1, -1, -1], [0, 1, 1]]),
             "labels_quad": torch.tensor([0, 1, -100])}
    loss, probs, labels = trainer.prediction_step(model, batch, prediction_loss_only=False)
    assert loss is not None and torch.isfinite(loss)
    moods, quad = probs
    assert moods.shape == (3, 3) and ((moods >= 0) & (moods <= 1)).all()
    assert torch.allclose(quad.sum(dim=1), torch.ones(3), atol=1e-5)
    assert torch.equal(labels[1], batch["labels_quad"])
    # Unlabelled batch: no loss, still predictions.
    loss, probs, labels = trainer.prediction_step(model, {"input_values": torch.randn(2, 8_000)}, False)
    assert loss is None and labels is None and probs[0].shape == (2, 3)


def test_no_trainable_head_raises(tiny):
    model, args = tiny
    args.label_names = ["labels_other"]
    with pytest.raises(ValueError, match="no trainable head"):
        EnoTrainer(model=model, args=args, heads=model.config.heads)
