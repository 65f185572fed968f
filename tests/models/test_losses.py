"""multitask_loss masking/weights/pos_weight; head_loss by kind."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from eno_hf.models.heads import HeadSpec
from eno_hf.models.losses import head_loss, multitask_loss

HEADS = [
    HeadSpec("tags", "multilabel", labels=("a", "b", "c")),
    HeadSpec("quad", "singlelabel", labels=("q1", "q2", "q3", "q4")),
    {"name": "val", "kind": "regression", "weight": 1.0},  # the JSON form is read as a HeadSpec too
]


def _batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logits = {"tags": torch.randn(4, 3, generator=g, requires_grad=True),
              "quad": torch.randn(4, 4, generator=g, requires_grad=True),
              "val": torch.randn(4, generator=g, requires_grad=True)}
    labels = {"tags": torch.tensor([[1, 0, 1], [-1, -1, -1], [0, 0, 1], [0, 1, 0]], dtype=torch.float32),
              "quad": torch.tensor([2, -100, 0, 3]),
              "val": torch.tensor([0.5, float("nan"), -1.0, 0.2])}
    return logits, labels


def test_missing_samples_do_not_contribute():
    logits, labels = _batch()
    total, per_head = multitask_loss(logits, labels, HEADS)
    keep = [0, 2, 3]
    exp_tags = F.binary_cross_entropy_with_logits(logits["tags"][keep], labels["tags"][keep])
    exp_quad = F.cross_entropy(logits["quad"][keep], labels["quad"][keep])
    exp_val = F.mse_loss(logits["val"][keep], labels["val"][keep])
    assert torch.allclose(per_head["tags"], exp_tags)
    assert torch.allclose(per_head["quad"], exp_quad)
    assert torch.allclose(per_head["val"], exp_val)
    assert torch.allclose(total, exp_tags + exp_quad + exp_val)
    # Changing a missing sample's logits changes nothing.
    logits2 = {k: v.detach().clone() for k, v in logits.items()}
    for v in logits2.values():
        v[1] += 100.0
    total2, _ = multitask_loss(logits2, labels, HEADS)
    assert torch.allclose(total.detach(), total2)


def test_head_weights():
    logits, labels = _batch()
    _, per_head = multitask_loss(logits, labels, HEADS)
    heads = [{**HeadSpec.coerce(h).to_dict(), "weight": w} for h, w in zip(HEADS, (2.0, 0.0, 0.5))]
    total, _ = multitask_loss(logits, labels, heads)
    assert torch.allclose(total, 2.0 * per_head["tags"] + 0.5 * per_head["val"])


def test_pos_weight_increases_positive_term():
    logits, labels = _batch()
    _, plain = multitask_loss(logits, labels, HEADS)
    _, weighted = multitask_loss(logits, labels, HEADS, pos_weight={"tags": torch.tensor([5.0, 5.0, 5.0])})
    keep = [0, 2, 3]
    exp = F.binary_cross_entropy_with_logits(logits["tags"][keep], labels["tags"][keep],
                                             pos_weight=torch.tensor([5.0, 5.0, 5.0]))
    assert torch.allclose(weighted["tags"], exp)
    assert weighted["tags"] > plain["tags"]


def test_all_missing_gives_zero_and_backward_works():
    logits, _ = _batch()
    labels = {"tags": torch.full((4, 3), -1.0), "quad": torch.full((4,), -100),
              "val": torch.full((4,), float("nan"))}
    total, per_head = multitask_loss(logits, labels, HEADS)
    assert total.item() == 0.0 and not math.isnan(total.item())
    assert all(v.item() == 0.0 for v in per_head.values())
    total.backward()
    assert all(torch.isfinite(v.grad).all() for v in logits.values())


def test_singlelabel_minus_one_is_missing_and_projection_skipped():
    logits, labels = _batch()
    labels["quad"] = torch.tensor([2, -1, 0, 3])
    heads = [*HEADS, {"name": "proj", "kind": "projection"}]
    logits["proj"] = torch.randn(4, 8)
    _, per_head = multitask_loss(logits, labels, heads)
    assert "proj" not in per_head
    keep = [0, 2, 3]
    assert torch.allclose(per_head["quad"], F.cross_entropy(logits["quad"][keep], labels["quad"][keep]))


def test_no_usable_head_raises():
    with pytest.raises(ValueError, match="no head"):
        multitask_loss({"a": torch.zeros(2, 2)}, {}, [HeadSpec("a", "multilabel", labels=("x", "y"))])


def test_head_loss_names_a_kind_without_supervised_loss():
    with pytest.raises(ValueError, match="'projection'"):
        head_loss("projection", torch.zeros(2, 2), torch.zeros(2, 2))
