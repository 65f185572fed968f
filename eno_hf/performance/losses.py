"""Losses of the performance tiers (T1-T4), each a function of the model's head outputs.

* T1 ``regression``: masked MSE on the rating dimensions (NaN = unrated) + within-group pairwise
  logistic ranking (RankNet, Burges et al. 2005): for two performances of the same passage whose
  rating differs by more than ``margin`` on a dimension, ``softplus(-(s_i - s_j) * sign(y_i - y_j))``.
* T3 ``contrastive``: supervised InfoNCE (Khosla et al. 2020, "Supervised Contrastive Learning";
  InfoNCE, van den Oord et al. 2018) with in-batch negatives: anchors are projections, positives
  every other item of the same passage group, temperature ``tau``.
* T2 ``ordinal``: pairwise logistic on the ranking score for every pair of the same group with
  different ``order`` (higher order = better placement / less degradation).
* T4 ``invariance``: MSE between the trunk embeddings of the clean and augmented halves of the batch
  (+ the same MSE on the regression outputs, so predictions are stable too).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from eno_hf.models.heads import PROJECTION, RANKING, REGRESSION

__all__ = ["info_nce", "masked_mse", "pairwise_rank_loss", "tier_loss"]


def masked_mse(pred: Tensor, target: Tensor) -> Tensor:
    """MSE over finite targets; ``(B, K)`` each. Returns 0 (with grad) if none is finite."""
    ok = torch.isfinite(target)
    if not bool(ok.any()):
        return pred.sum() * 0.0
    return ((pred - torch.nan_to_num(target)) ** 2)[ok].mean()


def pairwise_rank_loss(score: Tensor, target: Tensor, group: Tensor, margin: float = 0.0) -> Tensor:
    """RankNet loss over same-group pairs. ``score``/``target``: ``(B,)`` or ``(B, K)`` (K independent
    rankings), ``group``: ``(B,)`` long. Pairs need ``|target_i - target_j| > margin``. 0 if none."""
    if score.ndim == 1:
        score, target = score[:, None], target[:, None]
    same = (group[:, None] == group[None, :])
    ds = score[:, None, :] - score[None, :, :]            # (B, B, K)
    dt = target[:, None, :] - target[None, :, :]
    valid = same[..., None] & torch.isfinite(dt) & (dt.abs() > margin)
    if not bool(valid.any()):
        return score.sum() * 0.0
    return F.softplus(-ds * torch.sign(torch.nan_to_num(dt)))[valid].mean()


def info_nce(z: Tensor, group: Tensor, temperature: float = 0.1) -> Tensor:
    """Supervised InfoNCE on unit vectors ``z`` ``(B, d)`` with positives = same ``group``.
    Anchors without a positive in the batch are skipped; 0 if none has one."""
    sim = z @ z.T / temperature
    eye = torch.eye(len(z), dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(eye, float("-inf"))
    pos = (group[:, None] == group[None, :]) & ~eye
    has = pos.any(dim=1)
    if not bool(has.any()):
        return z.sum() * 0.0
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    per_anchor = -(log_prob.masked_fill(~pos, 0.0).sum(dim=1) / pos.sum(dim=1).clamp_min(1))
    return per_anchor[has].mean()


def _first(outs: dict[str, Tensor], cfg: Any, kind: str) -> tuple[str, Tensor] | None:
    for spec in cfg.head_specs:
        if spec.kind == kind:
            return spec.name, outs[spec.name]
    return None


def tier_loss(tier: str, outs: dict[str, Tensor], z: Tensor, labels: dict[str, Tensor], cfg: Any
              ) -> tuple[Tensor, dict[str, Tensor]]:
    """The (unweighted) loss of one tier and its terms.

    Labels per tier: ``t1`` ``{"ratings": (B, K) float (NaN = unrated), "group": (B,) long}``
    (``rank_weight`` / ``contrastive_weight`` floats optional, default 1 / the config's t3 weight
    relative to t1); ``t3`` ``{"group"}``; ``t2`` ``{"order": (B,) float, "group": (B,) long}``;
    ``t4`` ``{}`` (the batch is ``[clean; augmented]``, first half clean). With a closed-form ridge
    head (``cfg.ratings_fit == "ridge"``) T1 keeps only its InfoNCE term and T4 only its trunk term;
    with a closed-form ranking head (``cfg.quality_fit == "ridge"``) T2 has no gradient term.

    Raises:
        ValueError: unknown tier, or the head the tier needs is missing.
    """
    terms: dict[str, Tensor] = {}
    if tier in ("t1", "t3"):
        if tier == "t1" and getattr(cfg, "ridge_head", None) is None:  # a ridge head is fitted in closed form
            reg = _first(outs, cfg, REGRESSION)
            if reg is None:
                raise ValueError("tier t1 needs a regression head")
            terms["mse"] = masked_mse(reg[1], labels["ratings"])
            if "group" in labels:
                terms["rank"] = pairwise_rank_loss(reg[1], labels["ratings"], labels["group"], cfg.ranking_margin)
        proj = _first(outs, cfg, PROJECTION)
        if proj is not None and "group" in labels:
            terms["nce"] = info_nce(proj[1], labels["group"], cfg.nce_temperature)
        w = cfg.tier_weights
        weights = {"mse": w.get("t1", 1.0), "rank": w.get("t1", 1.0) * float(labels.get("rank_weight", 0.2)),
                   "nce": w.get("t3", 0.4)}
    elif tier == "t2":
        rk = _first(outs, cfg, RANKING)
        if rk is None:
            raise ValueError("tier t2 needs a ranking head")
        if getattr(cfg, "quality_ridge_head", None) is None:  # a ridge ranking head is fitted in closed form
            terms["ordinal"] = pairwise_rank_loss(rk[1], labels["order"].float(), labels["group"])
        weights = {"ordinal": cfg.tier_weights.get("t2", 0.6)}
    elif tier == "t4":
        half = z.shape[0] // 2
        terms["invariance"] = F.mse_loss(z[half:], z[:half])
        reg = _first(outs, cfg, REGRESSION) if getattr(cfg, "ridge_head", None) is None else None
        if reg is not None:
            terms["invariance"] = terms["invariance"] + F.mse_loss(reg[1][half:], reg[1][:half]) * 10.0
        weights = {"invariance": cfg.tier_weights.get("t4", 0.3)}
    else:
        raise ValueError(f"unknown tier {tier!r}")
    if not terms:  # e.g. T1 with a ridge head and no projection head: a zero that still backpropagates
        return z.sum() * 0.0, terms
    loss = sum(weights[k] * v for k, v in terms.items())
    return loss, terms
