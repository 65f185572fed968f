"""The head-kind registry (``eno_hf.models.head_kinds``) and heads read as ``HeadSpec`` s, including
``config.json`` heads written in the older format."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from eno_hf.metrics import HEAD_METRICS
from eno_hf.models.configuration import EnoModelConfig
from eno_hf.models.head_kinds import HEAD_KIND_REGISTRY, head_kind, head_probabilities, pool_head
from eno_hf.models.heads import CLASSIFICATION_KINDS, HEAD_KINDS, SUPERVISED_KINDS, HeadSpec
from eno_hf.models.losses import HEAD_LOSSES


def test_registry_lists_every_kind_with_loss_probabilities_and_metrics():
    assert tuple(HEAD_KIND_REGISTRY) == HEAD_KINDS
    for name in HEAD_KINDS:
        k = head_kind(name)
        assert k.name == name
        assert callable(k.pool)
        if name in SUPERVISED_KINDS:  # trained from label columns and scored on labels
            assert k.supervised and k.loss is HEAD_LOSSES[name]
            assert k.probabilities is not None and k.metrics is HEAD_METRICS[name]
        else:  # ranking, projection: trained by the performance tiers, no tagging metrics
            assert not k.supervised and k.loss is None and k.metrics is None
        assert (k.decide is not None) == (name in CLASSIFICATION_KINDS)
    assert set(HEAD_LOSSES) == set(HEAD_METRICS) == set(SUPERVISED_KINDS)


@pytest.mark.parametrize("bad", ["bogus", "", None])
def test_unknown_kind_is_an_error_naming_it(bad):
    with pytest.raises(ValueError, match=f"unknown head kind {bad!r}"):
        head_kind(bad)


def test_head_spec_with_unknown_kind_names_it():
    with pytest.raises(ValueError, match="head 'x': unknown head kind 'bogus'"):
        HeadSpec("x", "bogus", labels=("a",))


def test_losses_by_kind_match_torch():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(5, 3, generator=g)
    y_ml = torch.tensor([[1, 0, 1], [0, 0, 0], [1, 1, 1], [0, 1, 0], [1, 0, 0]], dtype=torch.float32)
    y_sl = torch.tensor([0, 2, 1, 1, 0])
    y_rg = torch.randn(5, generator=g)
    torch.testing.assert_close(head_kind("multilabel").loss(z, y_ml, None),
                               torch.nn.functional.binary_cross_entropy_with_logits(z, y_ml))
    torch.testing.assert_close(head_kind("singlelabel").loss(z, y_sl, None), torch.nn.functional.cross_entropy(z, y_sl))
    torch.testing.assert_close(head_kind("regression").loss(z[:, :1], y_rg, None),
                               torch.nn.functional.mse_loss(z[:, 0], y_rg))


def test_probabilities_by_kind():
    z = torch.tensor([[0.0, 2.0, -1.0], [1.0, 1.0, 1.0]])
    heads = [HeadSpec("m", "multilabel", labels=("a", "b", "c")), HeadSpec("s", "singlelabel", labels=("a", "b", "c")),
             HeadSpec("r", "regression"), HeadSpec("k", "ranking")]
    pm, ps, pr, pk = head_probabilities({"m": z, "s": z, "r": z[:, :1], "k": z[:, 1]}, heads)
    torch.testing.assert_close(pm, torch.sigmoid(z))
    torch.testing.assert_close(ps, torch.softmax(z, dim=-1))
    torch.testing.assert_close(pr, z[:, 0])
    torch.testing.assert_close(pk, z[:, 1])
    with pytest.raises(ValueError, match="'p' \\(projection\\) has no probabilities"):
        head_probabilities({"p": z}, [HeadSpec("p", "projection", dim=3)])


def test_window_pooling_by_kind():
    """Two windows of one input, equal weights: probabilities are averaged (classification), values
    and embeddings too; one window passes the raw output through."""
    out = torch.tensor([[2.0, -1.0], [0.0, 1.0]])
    mean = lambda t: t.reshape(1, 2, -1).mean(dim=1)  # noqa: E731
    ml = pool_head("multilabel", out, mean)
    torch.testing.assert_close(torch.sigmoid(ml.logits), torch.sigmoid(out).mean(0, keepdim=True))
    assert ml.column is ml.logits
    sl = pool_head("singlelabel", out, mean)
    torch.testing.assert_close(torch.softmax(sl.logits, -1), torch.softmax(out, -1).mean(0, keepdim=True))
    torch.testing.assert_close(torch.sigmoid(sl.column), torch.softmax(out, -1).mean(0, keepdim=True))
    rg = pool_head("regression", out[:, :1], mean)
    assert rg.column is None and rg.logits.shape == (1,) and float(rg.logits) == pytest.approx(1.0)
    pj = pool_head("projection", out, mean)
    assert pj.column is None and pj.logits.tolist() == [[1.0, 0.0]]
    assert pool_head("multilabel", out, None).logits is out


def test_scores_and_decisions_by_kind():
    ml, sl, rg = head_kind("multilabel"), head_kind("singlelabel"), head_kind("regression")
    s = ml.scores(torch.tensor([0.0, 3.0, -3.0]), ("a", "b", "c"))
    assert s == pytest.approx({"a": 0.5, "b": 1 / (1 + math.exp(-3)), "c": 1 / (1 + math.exp(3))})
    assert ml.decide(s, ("a", "b", "c"), None) == ["b", "a"]  # default threshold 0.5, by score
    assert ml.decide(s, ("a", "b", "c"), [0.6, 0.99, 0.0]) == ["c"]
    q = sl.scores(torch.tensor([0.0, 1.0]), ("Q1", "Q2"))
    assert sum(q.values()) == pytest.approx(1.0) and sl.decide(q, ("Q1", "Q2"), None) == ["Q2"]
    assert rg.scores(torch.tensor(0.25), ()) == {"value": 0.25} and rg.decide is None
    assert head_kind("ranking").scores(torch.tensor(1.0), ()) is None
    assert head_kind("projection").scores(torch.zeros(4), ()) is None


def test_metrics_by_kind():
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    p = np.array([[0.9, 0.2], [0.1, 0.8], [0.7, 0.6], [0.3, 0.1]])
    m = head_kind("multilabel").metrics
    assert m.compute(y, p, ["a", "b"], None)["roc_auc_macro"] == pytest.approx(1.0)
    assert m.score_metric == "roc_auc_macro" and "pr_auc_macro" in m.summary_keys
    r = head_kind("regression").metrics
    assert r.compute(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0]), None, None)["rmse"] == 0.0
    assert r.score_metric is None


def test_head_spec_coerce_reads_every_form():
    from eno_hf.config import HeadConfig

    spec = HeadSpec("moods", "multilabel", labels=("a", "b"), pos_weight=True)
    assert HeadSpec.coerce(spec) is spec
    assert HeadSpec.coerce(spec.to_dict()) == spec
    assert HeadSpec.coerce({"name": "moods", "kind": "multilabel", "labels": ["a", "b"], "pos_weight": True,
                            "dim": 2, "from_a_later_version": 1}) == spec
    # A HeadConfig's dim (default 128) is the size of projection heads only.
    assert HeadSpec.coerce(HeadConfig(name="v", kind="regression")) == HeadSpec("v", "regression")
    assert HeadSpec.coerce(HeadConfig(name="p", kind="projection", dim=16)).dim == 16


OLD_CONFIG = {  # config.json heads as the first versions of eno wrote them: no column / pos_weight
    "model_type": "eno", "encoder_type": "embeddings", "encoder_kwargs": {"input_dim": 6},
    "hidden_dim": 0, "sample_rate": 16000,
    "heads": [{"name": "moods", "kind": "multilabel", "labels": ["sad", "happy"], "weight": 1.0, "dim": 2},
              {"name": "quadrant", "kind": "singlelabel", "labels": ["Q1", "Q2", "Q3"], "weight": 0.5, "dim": 3},
              {"name": "valence", "kind": "regression", "labels": [], "weight": 1.0, "dim": 1},
              {"name": "emb", "kind": "projection", "labels": [], "weight": 1.0, "dim": 8}],
    "thresholds": {"moods": [0.3, 0.6]},
}


def test_old_format_config_dict_loads_as_head_specs(tmp_path):
    cfg = EnoModelConfig.from_dict(json.loads(json.dumps(OLD_CONFIG)))
    assert cfg.head_specs == [
        HeadSpec("moods", "multilabel", labels=("sad", "happy")),
        HeadSpec("quadrant", "singlelabel", labels=("Q1", "Q2", "Q3"), weight=0.5),
        HeadSpec("valence", "regression"),
        HeadSpec("emb", "projection", dim=8),
    ]
    assert cfg.head("quadrant").weight == 0.5 and [h.name for h in cfg.classification_heads] == ["moods", "quadrant"]
    assert cfg.id2label == {0: "moods/sad", 1: "moods/happy", 2: "quadrant/Q1", 3: "quadrant/Q2", 4: "quadrant/Q3"}
    # The saved form stays the JSON dicts, with the defaults filled in; a reload gives the same heads.
    assert cfg.to_dict()["heads"][0] == {"name": "moods", "kind": "multilabel", "labels": ["sad", "happy"], "dim": 2,
                                         "column": "moods", "weight": 1.0, "pos_weight": False}
    cfg.save_pretrained(tmp_path)
    again = EnoModelConfig.from_pretrained(tmp_path)
    assert again.heads == cfg.heads and again.head_specs == cfg.head_specs


def test_old_format_config_builds_and_runs_a_model(tmp_path):
    from eno_hf.models.modeling import EnoForAudioTagging

    torch.manual_seed(0)
    model = EnoForAudioTagging(EnoModelConfig.from_dict(dict(OLD_CONFIG))).eval()
    model.save_pretrained(tmp_path)
    loaded = EnoForAudioTagging.from_pretrained(tmp_path).eval()
    x = torch.randn(3, 6)
    with torch.no_grad():
        a, b = model(input_values=x), loaded(input_values=x)
    assert set(a.head_logits) == {"moods", "quadrant", "valence", "emb"}
    assert a.logits.shape == (3, 5) and a.embedding.shape == (3, 8) and set(a.regression) == {"valence"}
    torch.testing.assert_close(a.logits, b.logits)
