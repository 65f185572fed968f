"""Model selection and grouped cross-validation of the performance job: which embedder, and which
optional tiers (T2/T3/T4), and ``cross_validate``, which chooses inside every outer fold.

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

``cross_validate`` and the selection call each other (``select_tiers`` cross-validates each tier
variant; ``cross_validate`` selects inside each outer fold), so both live here, below
``eno_hf.performance.job`` (the job's stages), which imports them.

Example (what the performance job's ``select`` stage does)::

    inputs = {spec.key: EmbedderInputs(spec, table, load_t2, load_t4) for ...}
    chosen = select_procedure(cfg, inputs, rows, stats, np.arange(len(rows)))
    chosen.inputs.spec, chosen.tiers, chosen.report
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from eno_hf.embeddings.frames import EmbedderSpec, embedding_dim
from eno_hf.features.midi import MIDI_STATISTICS
from eno_hf.models.heads import HeadSpec
from eno_hf.performance.config import PerformanceConfig, TiersConfig
from eno_hf.performance.data import EmbeddingTable
from eno_hf.performance.percepiano import DIMENSIONS, PercePianoRow
from eno_hf.performance.probe import Candidate, _center_scale, head_candidates, pooled_blocks, select_ridge
from eno_hf.performance.protocols import protocol_folds

log = logging.getLogger(__name__)

__all__ = ["EmbedderInputs", "Selection", "TIER_CRITERIA", "build_model_config", "cross_validate", "prefix_dim",
           "select_embedder", "select_procedure", "select_tiers", "selection_rows"]


@dataclass(eq=False)
class EmbedderInputs:
    """One candidate embedder's inputs, row-aligned with the job's ``rows``.

    Attributes:
        spec: the embedder. table: ``n`` performances, ``(frames_i, dim)`` float32.
        load_t2 / load_t4: called on first use of ``t2`` / ``t4`` (the degraded / augmented
            performances embedded with this embedder: ``pipeline.t2_data`` / ``t4_data``; None =
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
        return prefix_dim(self.spec, self.table.dim)

    @cached_property
    def ridge_blocks(self) -> dict[str, np.ndarray]:
        """The pooled blocks the ridge ratings map is fit on (``probe.pooled_blocks``, name ``frames``)."""
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

    Runs ``cross_validate`` (``cfg.selection_folds`` folds, ``cfg.selection_epochs``)
    with every tier ``cfg.tiers`` enables (``all``) and once more with each of them left out
    (``-t2`` ...). A tier is kept when, on held-out performers, (a) its
    own metric is higher with it than without it: T2 the severity Spearman (without T2: the mean
    predicted rating as the score), T3 the passage retrieval MRR (without T3: the z-scored pooled
    input embeddings), T4 ``output_pearson`` (clean vs augmented predictions), and (b) the
    ratings' mean R² is not lower with it. One tier at a time, the others as configured
    (interactions ignored).

    Args:
        rows / table / stats: the rows to choose on (e.g. an outer fold's training side),
            row-aligned. t2_data / t4_data: as ``cross_validate``'s; items whose source
            is not in ``rows`` are ignored.

    Returns:
        the chosen ``TiersConfig`` (weights as configured) and a report ``{"n", "protocol", "runs":
        run -> {mean_r2, t2, t3, t4 metrics}, "decisions": tier -> {with, without, r2_with,
        r2_without, kept}}``. Tiers with no data (e.g. T2 without degraded performances) are off.
        Fewer than 3 performers: the configured tiers, and ``{"n", "protocol", "skipped": reason}``.
    """
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
        res = cross_validate(quick, data, [rows[i] for i in idx], stats[idx], "performer", tiers=tiers)
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


# ----------------------------------------------------------------------------- grouped CV
def prefix_dim(spec: EmbedderSpec, input_dim: int) -> int:
    """Width of the ``prefix`` columns of ``spec``'s ``(frames, input_dim)`` frames: ``input_dim``
    minus the embedding layer's width for ``features="prefix+embedding"``, else 0."""
    if spec.features != "prefix+embedding":
        return 0
    return input_dim - embedding_dim(EmbedderSpec(kind=spec.kind, name=spec.name, features="embedding",
                                                  path=spec.path, hop_s=spec.hop_s))


def build_model_config(cfg: PerformanceConfig, input_dim: int, spec: EmbedderSpec, t2: bool, t3: bool,
                       transcription: bool = False):
    """The ``EnoPerformanceConfig`` of the run: heads derived from the rating dimensions; the
    ratings fit, the prefix width of ``prefix+embedding`` frames and the MIDI statistics names from
    ``cfg``; ``transcription``: a ``ridge_transcription`` map too (with the MIDI statistics)."""
    from eno_hf.performance.model import EnoPerformanceConfig

    ridge = cfg.ratings_fit == "ridge"

    heads = [HeadSpec("ratings", "regression", labels=DIMENSIONS)]
    if t3:
        heads.append(HeadSpec("passage", "projection", dim=cfg.projection_dim, weight=cfg.tiers.weights.get("t3", 0.4)))
    if t2:
        heads.append(HeadSpec("quality", "ranking", weight=cfg.tiers.weights.get("t2", 0.6)))
    return EnoPerformanceConfig(input_dim=input_dim, pooling=cfg.pooling, hidden_dim=cfg.hidden_dim, dropout=cfg.dropout,
                                input_dropout=cfg.input_dropout, heads=heads, embedder=spec.to_dict(),
                                tier_weights=dict(cfg.tiers.weights), ratings_fit=cfg.ratings_fit,
                                quality_fit=cfg.quality_fit,
                                prefix_dim=prefix_dim(spec, input_dim),
                                midi_statistics=list(MIDI_STATISTICS) if ridge and cfg.use_midi_statistics else [],
                                transcription_map=bool(transcription and ridge and cfg.use_midi_statistics))


def cross_validate(cfg: PerformanceConfig, data: EmbedderInputs | Mapping[str, EmbedderInputs],
                   rows: list[PercePianoRow], stats: np.ndarray, protocol: str,
                   tiers: TiersConfig | None = None, transcription: np.ndarray | None = None) -> dict[str, Any]:
    """Grouped CV of the tiered model and the baselines (see the module docstring).

    In each outer fold, ``selection.select_procedure`` first chooses on the fold's training side
    only: the embedder when ``data`` maps several, and the tiers unless ``tiers`` is given (and
    ``cfg.tier_selection`` is on). The figures then score the whole procedure, choices included.

    Args:
        data: one embedder's inputs (``EmbedderInputs``: frame table row-aligned with ``rows``,
            degraded T2 / augmented T4 performances), or embedder key -> inputs to choose from.
            T2/T4 data are always evaluated on their held-out sources; trained on only when the
            fold's tiers enable T2 / T4.
        rows: the performances; stats: ``(n, S)`` float64 MIDI statistics; protocol: the outer
            folds (``protocols.protocol_folds``: ``piece``, ``performer``, ``composition4fold``,
            ``performer4fold``); the figures pool the performances some fold holds out.
        tiers: fixed tiers for every fold (no tier selection); None = chosen per fold.
        transcription: ``(n, S)`` statistics of automatic transcriptions of the performances'
            renders: each fold's model also fits ``ridge_transcription`` on its training rows'
            and reads the held-out rows' (what a recording gets from ``eno tag``).

    Returns:
        ``{"model": regression report + interval (+ ``ridge_choices`` per fold), "model_audio_only":
        the same model without the MIDI statistics (when it takes them),
        "model_audio_transcription": the same model from the embeddings and the transcription's
        statistics (``ridge_transcription``; with ``transcription``), "baseline_mean": ...,
        "baseline_ridge_midi": ...,
        "t3": retrieval metrics of the passage head on held-out folds (over the folds where T3
        trained), "t3_baseline": the same retrieval with the z-scored mean+std pooled input
        embeddings (what there is without T3), "t2": ordinal metrics of the quality head on
        held-out degraded groups (over the folds where T2 trained; with the degraded files' MIDI
        statistics when the model takes them), "t2_audio_only": the same from the embeddings
        alone (when the model takes MIDI statistics), "t2_baseline": the same with the mean
        predicted rating (same inputs) as the score, "t4": robustness between clean and augmented
        renderings (``output_pearson``: mean over the model's heads of the per-column Pearson r),
        "selection": ``{"folds": per fold {embedder, tiers, selection (select_embedder's report),
        tier_selection (select_tiers'), evaluated: {t2, t3}: whether that fold's held-out part
        scored the tier (a fold that trains T2 but holds out no degraded group, or trains T3 but
        holds out no two performances of one passage, adds nothing to "t2"/"t3")}, "counts": folds
        per embedder and per kept tier, "evaluated": folds that scored T2/T3}`` (when anything was
        chosen), "folds": n, "n_evaluated": performances held out by some fold, "set_aside": the
        protocol's separate test set (0 for ``piece``/``performer``), "set_aside_test" (when it is
        not empty): ``{"n", "mean_r2_per_fold", "mean_r2", "ridge_midi_mean_r2"}``: each fold's model
        (and MIDI-statistics ridge) scored on it, mean over the folds,
        "loss_curves": per-fold first/last logged losses}``. A tier kept in some
        fold but scored in none has no "t2"/"t3" entry and a ``"t2_not_scored"``/``"t3_not_scored"``
        reason instead.
    """
    from eno_hf.inference.performance import predict_heads  # up to inference: tiers are scored by the served heads
    from eno_hf.performance.metrics import bootstrap_interval, ordinal_metrics, regression_report, retrieval_metrics
    from eno_hf.performance.trainer import InvarianceData, OrdinalData, fit_tiers

    inputs = {data.spec.key: data} if isinstance(data, EmbedderInputs) else dict(data)
    y = np.stack([r.labels for r in rows]).astype(np.float64)
    passages = [r.passage for r in rows]
    pf = protocol_folds(rows, protocol, cfg.n_folds, cfg.seed)
    key, folds, ev, aside = pf.groups, pf.folds, pf.evaluated, pf.set_aside
    aside_r2: dict[str, list[float]] = {}
    pred, pred_audio, pred_trans, ridge = np.zeros_like(y), np.zeros_like(y), np.zeros_like(y), np.zeros_like(y)
    choices: list[dict[str, Any]] = []
    proj_parts: list[tuple[np.ndarray, np.ndarray]] = []
    raw_parts: list[tuple[np.ndarray, np.ndarray]] = []
    t2_parts: dict[str, list] = {"quality": [], "audio": [], "base": [], "order": [], "groups": [],
                                 "q_order": [], "q_groups": []}
    t4_pairs, t4_sources, curves, selections = [], [], [], []
    by_id = {r.segment_id: r for r in rows}
    t_start = time.perf_counter()
    for f, (tr, te) in enumerate(folds):
        chosen = select_procedure(cfg, inputs, rows, stats, tr, tiers=tiers)
        inp, ftiers = chosen.inputs, chosen.tiers
        selections.append({"embedder": inp.spec.key, "tiers": {t: bool(getattr(ftiers, t)) for t in ("t2", "t3", "t4")},
                           "selection": chosen.report["embedder"], "tier_selection": chosen.report["tiers"]})
        table, t2_data, t4_data = inp.table, inp.t2, inp.t4
        mcfg = build_model_config(cfg, table.dim, inp.spec, t2=t2_data is not None and ftiers.t2, t3=ftiers.t3,
                                  transcription=transcription is not None)
        train_ids = {rows[i].segment_id for i in tr}
        test_ids = {rows[i].segment_id for i in te}
        t2_fold = t4_fold = None
        raw = inp.pooled_mean_std
        mu, sd = _center_scale(raw[tr])
        raw_parts.append((te, (raw[te] - mu) / sd))
        t2_all, te2 = None, []
        if t2_data is not None:
            t2_all = OrdinalData(t2_data["table"], t2_data["order"], t2_data["groups"], keys=t2_data["source"],
                                 midi=t2_data.get("midi") if mcfg.midi_statistics else None)
            src = t2_data["source"]
            te2 = [i for i, s in enumerate(src) if s in test_ids]
            if ftiers.t2:
                t2_fold = t2_all.subset([i for i, s in enumerate(src) if s in train_ids])
        if t4_data is not None and ftiers.t4:
            tr4 = [i for i, s in enumerate(t4_data["source"]) if s in train_ids]
            if tr4:
                t4_fold = InvarianceData(t4_data["clean"].subset(tr4), t4_data["augmented"].subset(tr4))
        hist: list = []
        model = fit_tiers(mcfg, table.subset(tr), y[tr], [passages[i] for i in tr], t2=t2_fold, t4=t4_fold,
                          epochs=cfg.epochs, learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay,
                          seed=cfg.seed + f, groups_per_batch=cfg.groups_per_batch, per_group=cfg.per_group,
                          log_history=hist, ridge_groups=[key[i] for i in tr], midi=stats[tr],
                          transcription=None if transcription is None else transcription[tr])
        logs = [h for h in hist if "loss" in h]
        curves.append({"first": {k: v for k, v in logs[0].items() if k.startswith("loss")},
                       "last": {k: v for k, v in logs[-1].items() if k.startswith("loss")}} if logs else {})
        if model.config.ridge_selection:
            choices.append(dict(model.config.ridge_selection))
        out = predict_heads(model, [table.tensors[i] for i in te])
        pred_audio[te] = out["ratings"]
        pred[te] = predict_heads(model, [table.tensors[i] for i in te], midi=stats[te])["ratings"] \
            if mcfg.midi_statistics else out["ratings"]
        if mcfg.transcription_map:
            pred_trans[te] = predict_heads(model, [table.tensors[i] for i in te], midi=transcription[te],
                                           statistics_source="transcription")["ratings"]
        midi_fit, _ = select_ridge({"midi": stats}, y, key, tr, [Candidate(None)], seed=cfg.seed)
        ridge[te] = midi_fit.predict({"midi": stats}, te)
        if len(aside):  # the protocol's test set, scored by this fold's model and MIDI ridge
            pa = predict_heads(model, [table.tensors[i] for i in aside],
                               **({"midi": stats[aside]} if mcfg.midi_statistics else {}))["ratings"]
            for name, p in (("model", pa), ("ridge_midi", midi_fit.predict({"midi": stats}, aside))):
                aside_r2.setdefault(name, []).append(
                    regression_report(y[aside], p, [passages[i] for i in aside], DIMENSIONS)["mean_r2"])
        scored = {"t2": False, "t3": False}
        if "passage" in out:
            proj_parts.append((te, out["passage"]))
            scored["t3"] = len({passages[i] for i in te}) < len(te)  # some passage held out twice
        if t2_all is not None and te2:
            tensors2 = [t2_all.table.tensors[i] for i in te2]
            o2a = predict_heads(model, tensors2)
            o2 = o2a if t2_all.midi is None else predict_heads(model, tensors2, midi=t2_all.midi[te2])
            order2, groups2 = list(t2_all.order[te2]), [t2_all.groups[i] for i in te2]
            if "quality" in o2:
                scored["t2"] = True
                t2_parts["quality"].append(o2["quality"])
                t2_parts["audio"].append(o2a["quality"] if t2_all.midi is not None else None)
                t2_parts["q_order"] += order2
                t2_parts["q_groups"] += groups2
            t2_parts["base"].append(o2["ratings"].mean(1))
            t2_parts["order"] += order2
            t2_parts["groups"] += groups2
        if t4_data is not None:
            te4 = [i for i, s in enumerate(t4_data["source"]) if s in test_ids]
            if te4:
                a = predict_heads(model, [t4_data["clean"].tensors[i] for i in te4])
                b = predict_heads(model, [t4_data["augmented"].tensors[i] for i in te4])
                t4_pairs.append((te4, a, b))
                t4_sources += [t4_data["source"][i] for i in te4]
        selections[-1]["evaluated"] = scored
        # a fold (nested selection + training) takes minutes on a CPU: say where the run is
        elapsed = time.perf_counter() - t_start
        log.info("cross-validation %s: fold %d/%d done, %.0f s elapsed, ~%.0f s left", protocol, f + 1, len(folds),
                 elapsed, elapsed / (f + 1) * (len(folds) - f - 1))
    res: dict[str, Any] = {"protocol": protocol, "folds": len(folds), "n": len(rows), "n_evaluated": len(ev),
                           "set_aside": len(aside), "loss_curves": curves}
    if aside_r2:
        res["set_aside_test"] = {"n": len(aside), "mean_r2_per_fold": aside_r2["model"],
                                 "mean_r2": float(np.mean(aside_r2["model"])),
                                 "ridge_midi_mean_r2": float(np.mean(aside_r2["ridge_midi"]))}
    if len(inputs) > 1 or (tiers is None and cfg.tier_selection):
        res["selection"] = {"folds": selections, "counts": {
            "embedder": dict(Counter(s["embedder"] for s in selections)),
            **{t: sum(s["tiers"][t] for s in selections) for t in ("t2", "t3", "t4")}},
            "evaluated": {t: sum(s["evaluated"][t] for s in selections) for t in ("t2", "t3")}}
    y_ev, pas_ev, key_ev = y[ev], [passages[i] for i in ev], [key[i] for i in ev]
    res["model"] = {**regression_report(y_ev, pred[ev], pas_ev, DIMENSIONS),
                    "interval": bootstrap_interval(y_ev, pred[ev], key_ev, cfg.n_boot, cfg.seed)}
    if choices:
        res["model"]["ridge_choices"] = choices
    if cfg.ratings_fit == "ridge" and cfg.use_midi_statistics:
        res["model_audio_only"] = {**{k: v for k, v in regression_report(y_ev, pred_audio[ev], pas_ev, DIMENSIONS).items()
                                      if k != "per_dimension"},
                                   "interval": bootstrap_interval(y_ev, pred_audio[ev], key_ev, cfg.n_boot, cfg.seed)}
        if transcription is not None:
            res["model_audio_transcription"] = {
                **{k: v for k, v in regression_report(y_ev, pred_trans[ev], pas_ev, DIMENSIONS).items()
                   if k != "per_dimension"},
                "interval": bootstrap_interval(y_ev, pred_trans[ev], key_ev, cfg.n_boot, cfg.seed)}
    mean_pred = np.zeros_like(y)
    for tr, te in folds:
        mean_pred[te] = np.nanmean(y[tr], axis=0)
    res["baseline_mean"] = {k: v for k, v in regression_report(y_ev, mean_pred[ev], pas_ev, DIMENSIONS).items()
                            if k != "per_dimension"}
    res["baseline_ridge_midi"] = {**regression_report(y_ev, ridge[ev], pas_ev, DIMENSIONS),
                                  "interval": bootstrap_interval(y_ev, ridge[ev], key_ev, cfg.n_boot, cfg.seed)}
    for name, parts in (("t3", proj_parts), ("t3_baseline", raw_parts)):
        # retrieval within each held-out fold (queries only see unseen performers/pieces)
        per = [m for m in (retrieval_metrics(z, [passages[i] for i in te]) for te, z in parts)
               if m["n_queries"]]  # a fold without two performances of one passage has no query
        if per:
            res[name] = {k: float(np.average([p[k] for p in per], weights=[p["n_queries"] for p in per]))
                         for k in per[0] if k != "n_queries"}
            res[name]["n_queries"] = int(sum(p["n_queries"] for p in per))
    if t2_parts["base"]:
        q_order, q_groups = np.array(t2_parts["q_order"], float), t2_parts["q_groups"]
        if t2_parts["quality"]:
            res["t2"] = ordinal_metrics(np.concatenate(t2_parts["quality"]), q_order, q_groups)
            if all(a is not None for a in t2_parts["audio"]):
                res["t2_audio_only"] = ordinal_metrics(np.concatenate(t2_parts["audio"]), q_order, q_groups)
        res["t2_baseline"] = ordinal_metrics(np.concatenate(t2_parts["base"]), np.array(t2_parts["order"], float),
                                             t2_parts["groups"])
    if t4_pairs:
        res["t4"] = _robustness(t4_pairs, t4_sources, by_id)
    for t, why in (("t2", "no held-out part of a fold that trained T2 holds a degraded group"),
                   ("t3", "no held-out part of a fold that trained T3 holds two performances of one passage")):
        if t not in res and any(s["tiers"][t] for s in selections):
            res[f"{t}_not_scored"] = why
    return res


def _robustness(pairs: list[tuple[list[int], dict[str, np.ndarray], dict[str, np.ndarray]]], sources: list[str],
                by_id: dict[str, PercePianoRow]) -> dict[str, Any]:
    """T4 robustness of held-out clean/augmented prediction pairs (``predict_heads`` outputs per
    fold): for the ratings, the mean per-dimension Pearson r and MAE between clean and augmented
    predictions and the within-passage pairwise accuracy on each side (and its drop); per head
    (those every fold's model has), the mean per-column Pearson r (``head_pearson``) and their mean
    (``output_pearson``)."""
    from eno_hf.performance.metrics import pairwise_accuracy

    def cat(side: int, head: str) -> np.ndarray:
        return np.concatenate([np.asarray(p[side][head], float).reshape(len(p[0]), -1) for p in pairs])

    def pearson(a: np.ndarray, b: np.ndarray) -> float:
        rs = [np.corrcoef(a[:, k], b[:, k])[0, 1] for k in range(a.shape[1]) if a[:, k].std() > 0 and b[:, k].std() > 0]
        return float(np.mean(rs)) if rs else float("nan")

    a, b = cat(1, "ratings"), cat(2, "ratings")
    yy = np.stack([by_id[s].labels for s in sources]).astype(float)
    grp = [by_id[s].passage for s in sources]
    def accuracy(pred: np.ndarray) -> float:  # NaN (no warning) when no passage has two of these sources
        vals = [v for v in (pairwise_accuracy(yy[:, k], pred[:, k], grp) for k in range(pred.shape[1])) if v == v]
        return float(np.mean(vals)) if vals else float("nan")

    acc_clean, acc_aug = accuracy(a), accuracy(b)
    common = [h for h in ("ratings", "quality", "passage") if all(h in p[1] for p in pairs)]  # heads of every fold
    heads = {h: pearson(cat(1, h), cat(2, h)) for h in common}
    return {"n": len(sources), "pearson_clean_vs_augmented": heads["ratings"],
            "pairwise_accuracy_clean": float(acc_clean), "pairwise_accuracy_augmented": float(acc_aug),
            "pairwise_accuracy_drop": float(acc_clean - acc_aug), "mae_clean_vs_augmented": float(np.abs(a - b).mean()),
            "head_pearson": heads, "output_pearson": float(np.nanmean(list(heads.values())))}
