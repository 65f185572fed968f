"""models.losses: the one missing-label rule (``labelled_mask``) and the per-head losses the trainer
and the cross-validation probes share."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from eno_hf.models.losses import balanced_weights, head_loss, labelled_mask


def test_labelled_mask_is_the_same_rule_for_numpy_and_torch() -> None:
    tags = np.asarray([[1, 0], [-1, -1], [0, 0], [-1, 0]])
    assert labelled_mask("multilabel", tags).tolist() == [True, False, True, True]  # missing = every entry < 0
    assert labelled_mask("multilabel", torch.from_numpy(tags)).tolist() == [True, False, True, True]
    assert labelled_mask("singlelabel", np.asarray([2, -1, -100, 0])).tolist() == [True, False, False, True]
    assert labelled_mask("regression", torch.tensor([0.5, float("nan")])).tolist() == [True, False]
    with pytest.raises(ValueError, match="projection"):
        labelled_mask("projection", tags)


def test_head_loss_skips_missing_rows_and_weights_classes() -> None:
    torch.manual_seed(0)
    z = torch.randn(5, 3)
    y = torch.tensor([0, -1, 2, 1, -100])
    w = torch.tensor([1.0, 2.0, 0.5])
    keep = torch.tensor([0, 2, 3])
    assert head_loss("singlelabel", z, y, w) == pytest.approx(float(F.cross_entropy(z[keep], y[keep], weight=w)))
    tags = torch.tensor([[1.0, 0, 1], [-1, -1, -1], [0, 0, 1], [0, 1, 0], [-1, -1, -1]])
    pw = torch.tensor([2.0, 1.0, 3.0])
    assert head_loss("multilabel", z, tags, pw) == pytest.approx(
        float(F.binary_cross_entropy_with_logits(z[keep], tags[keep], pos_weight=pw)))
    assert float(head_loss("singlelabel", z, torch.full((5,), -1))) == 0.0


def test_balanced_weights() -> None:
    w = balanced_weights("singlelabel", np.asarray([0, 0, 0, 1]), 3)
    np.testing.assert_allclose(w.numpy(), [4 / 9, 4 / 3, 0.0], rtol=1e-6)  # n / (K n_k)
    pw = balanced_weights("multilabel", np.asarray([[1, 0], [0, 0], [0, 0], [0, 0]]), 2, max_pos_weight=2.0)
    np.testing.assert_allclose(pw.numpy(), [2.0, 1.0])  # 3 negatives / 1 positive capped at 2; no positive: 1
