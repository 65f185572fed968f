"""Model selection of the performance job: which embedder, and which optional tiers (T2/T3/T4).

One procedure, ``select_procedure``, makes both choices from the rows it is given. The job runs it
inside every outer fold of its grouped CV on that fold's training side only (``nested_selection``,
the default), so the reported figures score the whole procedure, choices included, on performers
or pieces it never saw; then once on all rows for the registered model.

1. **Embedder** (``select_embedder``): per candidate, the inner-CV R² of the ridge ratings map the
   model would fit from its frames (``probe.select_ridge`` over ``probe.head_candidates``,
   embeddings only, performer-grouped inner folds); the highest wins.
2. **Tiers** (``select_tiers``): ``cross_validate`` of the chosen embedder on ``selection_limit``
   rows spread over the pieces (``selection_rows``) plus the T2/T4 sources among the rows, with
   every enabled tier and with each one left out.

Example (what ``run_performance`` does)::

    inputs = {spec.key: EmbedderInputs(spec, table, load_t2, load_t4) for ...}
    chosen = select_procedure(cfg, inputs, rows, stats, np.arange(len(rows)))
    chosen.inputs.spec, chosen.tiers, chosen.report
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from eno_hf.embeddings.frames import EmbedderSpec
from eno_hf.performance.config import PerformanceConfig, TiersConfig
from eno_hf.performance.data import EmbeddingTable
from eno_hf.performance.percepiano import DIMENSIONS, PercePianoRow

log = logging.getLogger(__name__)

__all__ = ["EmbedderInputs", "Selection", "TIER_CRITERIA", "select_embedder", "select_procedure", "select_tiers",
           "selection_rows"]


@dataclass(eq=False)
class EmbedderInputs:
    """One candidate embedder's inputs, row-aligned with the job's ``rows``.

    Attributes:
        spec: the embedder. table: ``n`` performances, ``(frames_i, dim)`` float32.
        load_t2 / load_t4: called on first use of ``t2`` / ``t4`` (the degraded / augmented
            performances embedded with this embedder: ``pipeline._t2_data`` / ``_t4_data``; None =
            no such data), so an embedder no fold chooses never embeds them.
    """

    spec: EmbedderSpec
    table: EmbeddingTable
    load_t2: Callable[[], dict[str, Any] | None] = field(default=lambda: None, repr=False)
    load_t4: Callable[[], dict[str, Any] | None] = field(default=lambda: None, repr=False)

    @classmethod
    def fixed(cls, spec: EmbedderSpec, table: EmbeddingTable, t2: dict[str, Any] | None = None,
              t4: dict[str, Any] | None = None) -> EmbedderInputs:
        """Inputs whose T2/T4 data are already in memory."""
        return cls(spec, table, lambda: t2, lambda: t4)

    @cached_property
    def t2(self) -> dict[str, Any] | None:
        return self.load_t2()

    @cached_property
    def t4(self) -> dict[str, Any] | None:
        return self.load_t4()

    @cached_property
    def prefix_dim(self) -> int:
        """Width of the ``prefix`` columns of ``prefix+embedding`` frames (0 for ``embedding``)."""
        from eno_hf.performance.pipeline import prefix_dim

        return prefix_dim(self.spec, self.table.dim)

    @cached_property
    def ridge_blocks(self) -> dict[str, np.ndarray]:
        """The pooled blocks the ridge ratings map is fit on (``probe.pooled_blocks``, name ``frames``)."""
        from eno_hf.performance.probe import pooled_blocks

        return pooled_blocks([t.numpy() for t in self.table.tensors], self.table.dim - self.prefix_dim, "frames")

    @cached_property
    def pooled_mean_std(self) -> np.ndarray:
        """``table.pooled_mean_std()``, computed once."""
        return self.table.pooled_mean_std()


@dataclass
class Selection:
    """What ``select_procedure`` chose: the embedder's ``inputs``, the ``tiers``, and ``report``
    (``{"embedder": select_embedder's report, "tiers": select_tiers' report}``)."""

    inputs: EmbedderInputs
    tiers: TiersConfig
    report: dict[str, Any]


def selection_rows(rows: list[PercePianoRow], limit: int) -> list[PercePianoRow]:
    """``limit`` rows spread over the pieces: round-robin over pieces (most performances first),
    the shortest remaining performance (by MIDI size) of each piece per turn; in id order.

    The ``limit`` shortest overall would be one piece (on PercePiano, 107 of the 120 shortest are
    Schubert D960 mv. 3), whose ratings barely vary: no basis for choosing.
    """
    by_piece: dict[str, list[PercePianoRow]] = {}
    for r in sorted(rows, key=lambda r: (r.midi.stat().st_size, r.segment_id)):
        by_piece.setdefault(r.piece, []).append(r)
    queues = sorted(by_piece.values(), key=lambda q: (-len(q), q[0].piece))
    out: list[PercePianoRow] = []
    while len(out) < min(limit, len(rows)):
        for q in queues:
            if q and len(out) < limit:
                out.append(q.pop(0))
    return sorted(out, key=lambda r: r.segment_id)


def select_embedder(cfg: PerformanceConfig, inputs: Mapping[str, EmbedderInputs], rows: list[PercePianoRow],
                    idx: np.ndarray) -> tuple[str, dict[str, Any]]:
    """Choose among ``inputs`` on rows ``idx``: per embedder, the inner-CV mean R² (over the 19
    dimensions) of the ridge ratings map the model fits from it (``probe.select_ridge`` over
    ``probe.head_candidates``, embeddings only; ``cfg.n_folds`` inner folds grouped by performer
    within ``idx``). Closed form: a few seconds for 1,000 rows.

    Returns:
        the chosen key of ``inputs`` and ``{"inner_r2": key -> R², "chosen", "n", "protocol"}``
        (``{}`` when there is one embedder; the first of ``inputs`` and ``"skipped"``: reason,
        instead of ``inner_r2``, when ``idx`` holds fewer than 2 performers).

    Raises:
        ValueError: ``inputs`` empty.
    """
    from eno_hf.performance.probe import head_candidates, select_ridge

    if not inputs:
        raise ValueError("select_embedder: no embedder")
    if len(inputs) == 1:
        return next(iter(inputs)), {}
    y = np.stack([r.labels for r in rows]).astype(np.float64)
    keys = [r.performer for r in rows]
    first = next(iter(inputs))
    performers = len({keys[i] for i in idx})
    if performers < 2:
        log.warning("select_embedder: %d performer(s) in %d rows, too few for grouped CV; using %s",
                    performers, len(idx), first)
        return first, {"chosen": first, "n": len(idx), "protocol": "performer",
                       "skipped": f"{performers} performer(s): grouped CV needs at least 2"}
    scores = {}
    for key, inp in inputs.items():
        fit, _ = select_ridge(inp.ridge_blocks, y, keys, np.asarray(idx),
                              head_candidates("frames", inp.prefix_dim > 0, False), inner_folds=cfg.n_folds,
                              seed=cfg.seed)
        scores[key] = float(fit.inner_r2)
    best = max(inputs, key=lambda k: scores[k] if np.isfinite(scores[k]) else -np.inf)  # first on ties / all NaN
    return best, {"inner_r2": scores, "chosen": best, "n": len(idx), "protocol": "performer"}


#: tier -> (report key when it trains, report key without it, metric): ``select_tiers``' criteria
TIER_CRITERIA = {"t2": ("t2", "t2_baseline", "spearman"), "t3": ("t3", "t3_baseline", "mrr"),
                 "t4": ("t4", "t4", "output_pearson")}


def _tier_metric(res: dict[str, Any], tier: str, trained: bool) -> float:
    key_on, key_off, metric = TIER_CRITERIA[tier]
    m = res.get(key_on if trained else key_off) or {}
    return float(m.get(metric, float("nan")))


def select_tiers(cfg: PerformanceConfig, rows: list[PercePianoRow], table: EmbeddingTable, stats: np.ndarray,
                 spec: EmbedderSpec, t2_data: dict[str, Any] | None = None,
                 t4_data: dict[str, Any] | None = None) -> tuple[TiersConfig, dict[str, Any]]:
    """Choose which of T2/T3/T4 train, by performer-grouped CV on the ``selection_limit``
    performances of ``selection_rows(rows)`` plus the sources of the degraded / augmented
    performances among ``rows``.

    Runs ``pipeline.cross_validate`` (``cfg.selection_folds`` folds, ``cfg.selection_epochs``)
    with every tier ``cfg.tiers`` enables (``all``) and once more with each of them left out
    (``-t2`` ...). A tier is kept when, on held-out performers, (a) its
    own metric is higher with it than without it: T2 the severity Spearman (without T2: the mean
    predicted rating as the score), T3 the passage retrieval MRR (without T3: the z-scored pooled
    input embeddings), T4 ``output_pearson`` (clean vs augmented predictions), and (b) the
    ratings' mean R² is not lower with it. One tier at a time, the others as configured
    (interactions ignored).

    Args:
        rows / table / stats: the rows to choose on (e.g. an outer fold's training side),
            row-aligned. t2_data / t4_data: as ``pipeline.cross_validate``'s; items whose source
            is not in ``rows`` are ignored.

    Returns:
        the chosen ``TiersConfig`` (weights as configured) and a report ``{"n", "protocol", "runs":
        run -> {mean_r2, t2, t3, t4 metrics}, "decisions": tier -> {with, without, r2_with,
        r2_without, kept}}``. Tiers with no data (e.g. T2 without degraded performances) are off.
        Fewer than 3 performers: the configured tiers, and ``{"n", "protocol", "skipped": reason}``.
    """
    from eno_hf.performance import pipeline

    row_ids = {r.segment_id for r in rows}

    def restrict(d: dict[str, Any] | None, tables: tuple[str, ...]) -> dict[str, Any] | None:
        if d is None:
            return None
        keep = [i for i, s in enumerate(d["source"]) if s in row_ids]
        out = {k: (v.subset(keep) if k in tables else
                   np.asarray(v)[keep] if isinstance(v, np.ndarray) else [v[i] for i in keep]) for k, v in d.items()}
        return out if keep else None

    t2_data, t4_data = restrict(t2_data, ("table",)), restrict(t4_data, ("clean", "augmented"))
    enabled = {t: getattr(cfg.tiers, t) for t in ("t2", "t3", "t4")}
    enabled["t2"] = enabled["t2"] and t2_data is not None
    enabled["t4"] = enabled["t4"] and t4_data is not None
    base = cfg.tiers.model_copy(update=enabled)
    if not any(enabled.values()):
        return base, {}
    sub = selection_rows(rows, cfg.selection_limit)
    # plus the T2/T4 sources, so each tier's decision sees all of its (few) sources
    ids = {r.segment_id for r in sub} | {s for d in (t2_data, t4_data) if d is not None for s in d["source"]}
    idx = [i for i, r in enumerate(rows) if r.segment_id in ids]
    performers = len({rows[i].performer for i in idx})
    if performers < 3:  # grouped CV whose every training side still has 2 groups for the ridge's inner folds
        log.warning("select_tiers: %d performer(s) in %d rows, too few to choose tiers by grouped CV; "
                    "keeping the configured tiers", performers, len(idx))
        return base, {"n": len(idx), "protocol": "performer",
                      "skipped": f"{performers} performer(s): grouped CV needs at least 3"}
    data = EmbedderInputs.fixed(spec, table.subset(idx), t2_data, t4_data)  # their sources are all in ids
    quick = cfg.model_copy(update={"n_boot": 20, "n_folds": cfg.selection_folds,
                                   "epochs": cfg.selection_epochs or cfg.epochs})
    variants = {"all": base, **{f"-{t}": base.model_copy(update={t: False}) for t, on in enabled.items() if on}}
    runs: dict[str, dict[str, Any]] = {}
    for name, tiers in variants.items():
        res = pipeline.cross_validate(quick, data, [rows[i] for i in idx], stats[idx], "performer", tiers=tiers)
        runs[name] = {"mean_r2": res["model"]["mean_r2"],
                      **{t: _tier_metric(res, t, getattr(tiers, t)) for t in ("t2", "t3", "t4")}}
    decisions: dict[str, Any] = {}
    chosen = dict(enabled)
    for t, on in enabled.items():
        if not on:
            continue
        w, wo = runs["all"], runs[f"-{t}"]
        kept = bool(w[t] > wo[t] and w["mean_r2"] >= wo["mean_r2"] - 1e-9)
        decisions[t] = {"with": w[t], "without": wo[t], "r2_with": w["mean_r2"], "r2_without": wo["mean_r2"], "kept": kept}
        chosen[t] = kept
    return cfg.tiers.model_copy(update=chosen), {"n": len(idx), "protocol": "performer", "runs": runs,
                                                 "decisions": decisions,
                                                 "criteria": {t: v[2] for t, v in TIER_CRITERIA.items()}}


def select_procedure(cfg: PerformanceConfig, inputs: Mapping[str, EmbedderInputs], rows: list[PercePianoRow],
                     stats: np.ndarray, idx: np.ndarray, tiers: TiersConfig | None = None) -> Selection:
    """Choose the embedder (``select_embedder``) and then, unless ``tiers`` is given or
    ``cfg.tier_selection`` is off, the tiers (``select_tiers`` with the chosen embedder's inputs),
    from rows ``idx`` of ``rows`` only.

    Args:
        inputs: embedder key -> ``EmbedderInputs`` row-aligned with ``rows``. stats: ``(n, S)``
            MIDI statistics of ``rows``. idx: the rows to choose on (an outer fold's training side,
            or all). tiers: fixed tiers (no tier selection).

    Returns:
        the ``Selection``. Without tier selection, T2/T4 are off when the chosen embedder has no
        T2/T4 data.
    """
    idx = np.asarray(idx)
    key, emb_report = select_embedder(cfg, inputs, rows, idx)
    inp = inputs[key]
    tier_report: dict[str, Any] = {}
    if tiers is None and cfg.tier_selection:
        tiers, tier_report = select_tiers(cfg, [rows[i] for i in idx], inp.table.subset(idx), stats[idx], inp.spec,
                                          inp.t2, inp.t4)
    elif tiers is None:
        tiers = cfg.tiers.model_copy(update={"t2": cfg.tiers.t2 and inp.t2 is not None,
                                             "t4": cfg.tiers.t4 and inp.t4 is not None})
    return Selection(inp, tiers, {"embedder": emb_report, "tiers": tier_report})
