"""EnoCollator: crop/pad shapes, labels per the batch contract, augmentation hook."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from eno_hf.data.collate import EnoCollator

HEADS = [
    {"name": "tags", "kind": "multilabel", "labels": ["a", "b", "c"]},
    {"name": "quad", "kind": "singlelabel", "column": "quadrant", "labels": ["q1", "q2"]},
    {"name": "val", "kind": "regression"},
    {"name": "proj", "kind": "projection"},
]
VOCAB = {"tags": ["a", "b", "c"], "quad": ["q1", "q2"]}


def _rows():
    return [
        {"waveform": np.arange(100, dtype=np.float16), "tags": [0, 2], "quadrant": 1, "val": 0.5},
        {"waveform": np.ones(30, dtype=np.float16), "tags": None, "quadrant": -1, "val": None},
        {"waveform": np.full(60, 2.0, dtype=np.float16).tolist(), "tags": [], "quadrant": None,
         "val": float("nan")},
    ]


def test_train_crops_and_pads_to_crop_samples():
    col = EnoCollator(HEADS, VOCAB, crop_samples=50, sample_rate=16_000, train=True, seed=0)
    b = col(_rows())
    assert b["input_values"].shape == (3, 50) and b["input_values"].dtype == torch.float32
    # Row 0: a contiguous 50-sample window of arange(100).
    w = b["input_values"][0].numpy()
    assert np.all(np.diff(w) == 1.0) and 0 <= w[0] <= 50
    # Row 1 (30 samples) is zero-padded, and the mask says so.
    assert torch.all(b["input_values"][1, :30] == 1) and torch.all(b["input_values"][1, 30:] == 0)
    assert b["attention_mask"][1].sum() == 30 and b["attention_mask"][0].sum() == 50
    # Crops vary with the random position (seeded generator).
    starts = {int(col(_rows()[:1])["input_values"][0, 0]) for _ in range(20)}
    assert len(starts) > 1


def test_same_seed_same_crops():
    a = EnoCollator(HEADS, VOCAB, 50, train=True, seed=3)(_rows())["input_values"]
    b = EnoCollator(HEADS, VOCAB, 50, train=True, seed=3)(_rows())["input_values"]
    assert torch.equal(a, b)


def test_eval_keeps_whole_segments_padded_to_batch_max():
    b = EnoCollator(HEADS, VOCAB, crop_samples=50, train=False)(_rows())
    assert b["input_values"].shape == (3, 100)
    assert torch.equal(b["input_values"][0], torch.arange(100, dtype=torch.float32))
    assert b["attention_mask"].sum(dim=1).tolist() == [100, 30, 60]


def test_labels_follow_contract():
    b = EnoCollator(HEADS, VOCAB, 50, train=False)(_rows())
    assert b["labels_tags"].dtype == torch.float32
    assert b["labels_tags"].tolist() == [[1, 0, 1], [-1, -1, -1], [0, 0, 0]]
    assert b["labels_quad"].dtype == torch.long and b["labels_quad"].tolist() == [1, -100, -100]
    val = b["labels_val"].tolist()
    assert val[0] == 0.5 and math.isnan(val[1]) and math.isnan(val[2])
    assert "labels_proj" not in b


def test_out_of_range_class_id_raises():
    rows = _rows()
    rows[0]["tags"] = [5]
    with pytest.raises(ValueError, match="out of range"):
        EnoCollator(HEADS, VOCAB, 50)(rows)


def test_augmenter_applied_in_training_only():
    calls = []

    def aug(x):
        calls.append(x.shape)
        return x * 0.0 + 7.0

    col = EnoCollator(HEADS, VOCAB, 50, train=True, augmenter=aug)
    assert torch.all(col(_rows())["input_values"][0] == 7.0)
    assert len(calls) == 3
    ev = EnoCollator(HEADS, VOCAB, 50, train=False, augmenter=aug)(_rows())
    assert not torch.all(ev["input_values"][0] == 7.0)


def test_feature_columns_for_embeddings_encoder():
    rows = [{"fingerprint": np.ones(4, np.float32), "mfcc": np.zeros((2, 3), np.float32), "tags": [1]}] * 2
    b = EnoCollator(HEADS[:1], VOCAB, None, train=True, input_columns=["fingerprint", "mfcc"])(rows)
    assert b["input_values"].shape == (2, 10) and "attention_mask" not in b


def test_heads_in_any_form_give_the_same_batch():
    """Dicts and ``HeadSpec`` s collate alike; a ranking or projection head gets no labels."""
    from eno_hf.models.heads import HeadSpec

    specs = [HeadSpec.coerce(h) for h in HEADS] + [HeadSpec("rank", "ranking")]
    a = EnoCollator(HEADS, VOCAB, 50, train=False)(_rows())
    b = EnoCollator(specs, VOCAB, 50, train=False)(_rows())
    assert sorted(a) == sorted(b) == ["attention_mask", "input_values", "labels_quad", "labels_tags", "labels_val"]
    for key in a:
        assert torch.equal(torch.nan_to_num(a[key], nan=-7.0), torch.nan_to_num(b[key], nan=-7.0))
