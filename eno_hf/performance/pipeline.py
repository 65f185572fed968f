"""The performance-evaluation job (``eno run`` with a ``performance`` section, e.g.
``configs/percepiano.yaml``): render -> embed -> (select encoder) -> T2/T4 data -> grouped CV with
baselines -> final model -> register -> tag.

Everything slow is cached under ``{data_root}/performance/{name}/``: FluidSynth renderings
(``render/``), frame embeddings per embedder (``embeddings/{key}/``, the ``.pt`` + metadata.jsonl
layout, resumable by shard), degraded/augmented embeddings (``embeddings/{key}-t2``/``-t4``), MIDI
statistics (``midi_statistics.json``). Reports go to ``{data_root}/performance/{name}/report.json``.

Protocols: ``performer``-grouped folds (unseen players) and ``piece``-grouped folds (unseen music);
per fold the model (all enabled tiers; with ``ratings_fit="ridge"`` its ratings maps chosen by
inner folds of the same grouping) and two baselines are fit on the training side only: the
per-dimension training mean, and a ridge regression on the MIDI statistics of
``eno_hf.features.midi.midi_statistics`` (z-scored, alpha chosen by the same inner grouped folds:
``probe.select_ridge``). The model is scored twice: with the MIDI statistics (``model``, the input
a MIDI file gets) and from the embeddings alone (``model_audio_only``, what an audio recording
gets). Out-of-fold predictions are pooled; mean R² over the 19 dimensions comes with a 95 %
bootstrap interval over the protocol's groups.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eno_hf.embeddings.embed import EmbedItem, embed_items_2way
from eno_hf.embeddings.frames import EmbedderSpec, build_frame_embedder
from eno_hf.models.heads import HeadSpec
from eno_hf.performance.config import EmbedderConfig, PerformanceConfig, TiersConfig
from eno_hf.performance.data import EmbeddingTable
from eno_hf.performance.percepiano import DIMENSIONS, PercePianoRow, load_percepiano
from eno_hf.performance.selection import TIER_CRITERIA, EmbedderInputs, select_procedure

log = logging.getLogger(__name__)

__all__ = ["PerformanceRun", "build_model_config", "cross_validate", "embedder_inputs", "prefix_dim", "run_performance"]

@dataclass
class PerformanceRun:
    """Result of ``run_performance``: ``report`` (all metrics), ``model_dir``, ``registered``, ``tags``."""

    report: dict[str, Any]
    model_dir: Path | None = None
    registered: Path | None = None
    tags: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"metrics": self.report, "model": str(self.model_dir) if self.model_dir else None,
                "registered": str(self.registered) if self.registered else None, "tags": self.tags}


def _spec(e: EmbedderConfig) -> EmbedderSpec:
    return EmbedderSpec(kind=e.kind, name=e.name, features=e.features, path=e.path, hop_s=e.hop_s)


def _items(rows: list[PercePianoRow]) -> list[EmbedItem]:
    return [EmbedItem(segment_id=r.segment_id, path=str(r.midi), size_hint=float(r.midi.stat().st_size),
                      fields={"piece": r.piece, "performer": r.performer, "passage": r.passage}) for r in rows]


def select_rows(cfg: PerformanceConfig) -> list[PercePianoRow]:
    """Rated performances, the ``limit`` shortest (by MIDI size) when ``limit`` is set, in id order."""
    rows = [r for r in load_percepiano(cfg.source) if r.rated]
    if cfg.limit:
        rows = sorted(rows, key=lambda r: (r.midi.stat().st_size, r.segment_id))[: cfg.limit]
    return sorted(rows, key=lambda r: r.segment_id)


def embed_rows(rows: list[PercePianoRow], spec: EmbedderSpec, work: Path, soundfont: str | None = None,
               suffix: str = "", items: list[EmbedItem] | None = None, transform: Any = None,
               workers: int = 1) -> EmbeddingTable:
    """Embed (cached, resumable; render + embed on ``workers`` ≤ 2 processes,
    ``embed_items_2way``) and load the table of ``rows`` (or ``items``)."""
    from eno_hf.utils.progress import Progress

    out = work / "embeddings" / (spec.key + suffix)
    embedder = build_frame_embedder(spec)
    items = items if items is not None else _items(rows)
    markers = out / "shards"
    before = len(list(markers.glob("*.json"))) if markers.is_dir() else 0
    with Progress(None, f"render + embed {spec.key + suffix}", "shard") as bar:
        def progress(_done: int, total: int) -> None:  # finished shards of both processes
            bar.update(min(total, len(list(markers.glob("*.json"))) - before))

        embed_items_2way(items, embedder, out, workers=workers, shard_size=32, render_cache=work / "render",
                         soundfont=soundfont, transform=transform, progress=progress)
    return EmbeddingTable.from_folder(out, [it.segment_id for it in items])


def midi_stats(rows: list[PercePianoRow], work: Path) -> np.ndarray:
    """``(n, len(MIDI_STATISTICS))`` float64 MIDI statistics of ``rows`` (``eno_hf.features.midi``;
    cached in ``midi_statistics.json``; an undefined statistic, NaN, becomes 0)."""
    from eno_hf.features.midi import MIDI_STATISTICS, midi_statistics

    cache_path = work / "midi_statistics.json"
    cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    if cache.get("__keys__") != list(MIDI_STATISTICS):
        cache = {"__keys__": list(MIDI_STATISTICS)}
    for r in rows:
        if r.segment_id not in cache:
            s = midi_statistics(r.midi)
            cache[r.segment_id] = [None if not np.isfinite(s[k]) else s[k] for k in MIDI_STATISTICS]
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    cache_path.write_text(json.dumps(cache))
    x = np.array([[np.nan if v is None else v for v in cache[r.segment_id]] for r in rows], dtype=np.float64)
    return np.nan_to_num(x.reshape(len(rows), len(MIDI_STATISTICS)))


def prefix_dim(spec: EmbedderSpec, input_dim: int) -> int:
    """Width of the ``prefix`` columns of ``spec``'s ``(frames, input_dim)`` frames: ``input_dim``
    minus the embedding layer's width for ``features="prefix+embedding"``, else 0."""
    if spec.features != "prefix+embedding":
        return 0
    return input_dim - build_frame_embedder(EmbedderSpec(kind=spec.kind, name=spec.name, features="embedding",
                                                         path=spec.path, hop_s=spec.hop_s)).dim


def build_model_config(cfg: PerformanceConfig, input_dim: int, spec: EmbedderSpec, t2: bool, t3: bool):
    """The ``EnoPerformanceConfig`` of the run: heads derived from the rating dimensions; the
    ratings fit, the prefix width of ``prefix+embedding`` frames and the MIDI statistics names from
    ``cfg``."""
    from eno_hf.features.midi import MIDI_STATISTICS
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
                                midi_statistics=list(MIDI_STATISTICS) if ridge and cfg.use_midi_statistics else [])


def encoder_blocks(rows: list[PercePianoRow], work: Path, names: list[str], soundfont: str | None = None,
                   only_cached: bool = False, workers: int = 1,
                   loaded: dict[str, EmbeddingTable] | None = None) -> tuple[dict[str, np.ndarray], list[str]]:
    """Pooled feature blocks (``probe.pooled_blocks``) of every encoder in ``names`` for ``rows``
    (``prefix+embedding`` frames, embedded if missing unless ``only_cached``), and the encoders used
    (an encoder missing a row is skipped when ``only_cached``). ``loaded``: encoder name →
    ``prefix+embedding`` table already in memory (covering ``rows``), used instead of the cache."""
    from eno_hf.performance.probe import pooled_blocks

    blocks: dict[str, np.ndarray] = {}
    used = []
    for name in names:
        spec = EmbedderSpec(name=name, features="prefix+embedding")
        folder = work / "embeddings" / spec.key
        if name in (loaded or {}):
            tab = loaded[name]
        elif only_cached and not all((folder / "embeddings" / f"{r.segment_id}.pt").is_file() for r in rows):
            log.warning("%s: not every performance is embedded; skipped", spec.key)
            continue
        else:
            tab = embed_rows(rows, spec, work, soundfont, workers=workers)
        tab = tab.subset([tab.index[r.segment_id] for r in rows])
        emb_dim = build_frame_embedder(EmbedderSpec(name=name, features="embedding")).dim
        blocks.update(pooled_blocks([t.numpy() for t in tab.tensors], emb_dim, name))
        used.append(name)
    return blocks, used


def probe_cv(rows: list[PercePianoRow], blocks: dict[str, np.ndarray], encoders: list[str], protocol: str,
             n_folds: int = 5, seed: int = 0, n_boot: int = 300, inner_folds: int = 4) -> dict[str, Any]:
    """Ridge probes in the ``protocol``'s grouped folds (``probe.nested_ridge_cv``): the training
    mean, ridge on MIDI statistics, ridge on each encoder's pooled layers (with and without MIDI
    statistics), the probe whose (encoder, layers, pooling, MIDI weight, alpha) the inner
    grouped CV chose per outer fold, and per encoder the model's own ridge ratings head
    (``head``: ``{encoder}`` = embeddings only, ``{encoder}+midi``; ``probe.head_candidates``).
    Each with mean R² and a 95 % bootstrap interval over groups."""
    from eno_hf.performance.metrics import bootstrap_interval, regression_report
    from eno_hf.performance.probe import Candidate, candidates, head_candidates, nested_ridge_cv
    from eno_hf.performance.samplers import grouped_folds

    y = np.stack([r.labels for r in rows]).astype(np.float64)
    key = [getattr(r, protocol) for r in rows]
    passages = [r.passage for r in rows]
    folds = grouped_folds(key, n_folds, seed)
    fixed = [Candidate(None)]
    for e in encoders:
        fixed += [Candidate(e, "prefix+embedding", "meanstd"), Candidate(e, "prefix+embedding", "meanstd", 1.0)]
    res = nested_ridge_cv(blocks, y, key, folds, candidates(encoders), inner_folds=inner_folds, seed=seed, fixed=fixed)

    def rep(pred: np.ndarray) -> dict[str, Any]:
        r = regression_report(y, pred, passages, DIMENSIONS)
        return {**{k: v for k, v in r.items() if k != "per_dimension"},
                "per_dimension_r2": {d: v["r2"] for d, v in r["per_dimension"].items()},
                "interval": bootstrap_interval(y, pred, key, n_boot, seed)}

    mean_pred = np.zeros_like(y)
    for tr, te in folds:
        mean_pred[te] = y[tr].mean(0)
    out = {"protocol": protocol, "folds": len(folds), "n": len(rows), "training_mean": rep(mean_pred),
           "selected": {**rep(res["selected"]), "choices": res["choices"], "chosen_counts": res["chosen_counts"]},
           "fixed": {k: rep(v) for k, v in res["fixed"].items()}, "inner_r2": res["inner_r2"], "head": {}}
    for e in encoders:
        prefix = f"{e}/prefix/mean" in blocks
        for midi in (False, True):
            r = nested_ridge_cv(blocks, y, key, folds, head_candidates(e, prefix, midi), inner_folds=inner_folds, seed=seed)
            out["head"][e + ("+midi" if midi else "")] = rep(r["selected"])
    return out


def cross_validate(cfg: PerformanceConfig, data: EmbedderInputs | Mapping[str, EmbedderInputs],
                   rows: list[PercePianoRow], stats: np.ndarray, protocol: str,
                   tiers: TiersConfig | None = None) -> dict[str, Any]:
    """Grouped CV of the tiered model and the baselines (see the module docstring).

    In each outer fold, ``selection.select_procedure`` first chooses on the fold's training side
    only: the embedder when ``data`` maps several, and the tiers unless ``tiers`` is given (and
    ``cfg.tier_selection`` is on). The figures then score the whole procedure, choices included.

    Args:
        data: one embedder's inputs (``EmbedderInputs``: frame table row-aligned with ``rows``,
            degraded T2 / augmented T4 performances), or embedder key -> inputs to choose from.
            T2/T4 data are always evaluated on their held-out sources; trained on only when the
            fold's tiers enable T2 / T4.
        rows: the performances; stats: ``(n, S)`` float64 MIDI statistics; protocol: the row
            field the outer folds are grouped by (``performer`` or ``piece``).
        tiers: fixed tiers for every fold (no tier selection); None = chosen per fold.

    Returns:
        ``{"model": regression report + interval (+ ``ridge_choices`` per fold), "model_audio_only":
        the same model without the MIDI statistics (when it takes them), "baseline_mean": ...,
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
        chosen), "folds": n, "loss_curves": per-fold first/last logged losses}``. A tier kept in some
        fold but scored in none has no "t2"/"t3" entry and a ``"t2_not_scored"``/``"t3_not_scored"``
        reason instead.
    """
    from eno_hf.inference.performance import predict_heads
    from eno_hf.performance.metrics import bootstrap_interval, ordinal_metrics, regression_report, retrieval_metrics
    from eno_hf.performance.probe import Candidate, _center_scale, select_ridge
    from eno_hf.performance.samplers import grouped_folds
    from eno_hf.performance.trainer import InvarianceData, OrdinalData, fit_tiers

    inputs = {data.spec.key: data} if isinstance(data, EmbedderInputs) else dict(data)
    y = np.stack([r.labels for r in rows]).astype(np.float64)
    passages = [r.passage for r in rows]
    key = [getattr(r, protocol) for r in rows]
    folds = grouped_folds(key, cfg.n_folds, cfg.seed)
    pred, pred_audio, ridge = np.zeros_like(y), np.zeros_like(y), np.zeros_like(y)
    choices: list[dict[str, Any]] = []
    proj_parts: list[tuple[np.ndarray, np.ndarray]] = []
    raw_parts: list[tuple[np.ndarray, np.ndarray]] = []
    t2_parts: dict[str, list] = {"quality": [], "audio": [], "base": [], "order": [], "groups": [],
                                 "q_order": [], "q_groups": []}
    t4_pairs, t4_sources, curves, selections = [], [], [], []
    by_id = {r.segment_id: r for r in rows}
    for f, (tr, te) in enumerate(folds):
        chosen = select_procedure(cfg, inputs, rows, stats, tr, tiers=tiers)
        inp, ftiers = chosen.inputs, chosen.tiers
        selections.append({"embedder": inp.spec.key, "tiers": {t: bool(getattr(ftiers, t)) for t in ("t2", "t3", "t4")},
                           "selection": chosen.report["embedder"], "tier_selection": chosen.report["tiers"]})
        table, t2_data, t4_data = inp.table, inp.t2, inp.t4
        mcfg = build_model_config(cfg, table.dim, inp.spec, t2=t2_data is not None and ftiers.t2, t3=ftiers.t3)
        train_ids = {rows[i].segment_id for i in tr}
        t2_fold = t4_fold = None
        raw = inp.pooled_mean_std
        mu, sd = _center_scale(raw[tr])
        raw_parts.append((te, (raw[te] - mu) / sd))
        t2_all, te2 = None, []
        if t2_data is not None:
            t2_all = OrdinalData(t2_data["table"], t2_data["order"], t2_data["groups"], keys=t2_data["source"],
                                 midi=t2_data.get("midi") if mcfg.midi_statistics else None)
            src = t2_data["source"]
            te2 = [i for i, s in enumerate(src) if s in by_id and s not in train_ids]
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
                          log_history=hist, ridge_groups=[key[i] for i in tr], midi=stats[tr])
        logs = [h for h in hist if "loss" in h]
        curves.append({"first": {k: v for k, v in logs[0].items() if k.startswith("loss")},
                       "last": {k: v for k, v in logs[-1].items() if k.startswith("loss")}} if logs else {})
        if model.config.ridge_selection:
            choices.append(dict(model.config.ridge_selection))
        out = predict_heads(model, [table.tensors[i] for i in te])
        pred_audio[te] = out["ratings"]
        pred[te] = predict_heads(model, [table.tensors[i] for i in te], midi=stats[te])["ratings"] \
            if mcfg.midi_statistics else out["ratings"]
        midi_fit, _ = select_ridge({"midi": stats}, y, key, tr, [Candidate(None)], seed=cfg.seed)
        ridge[te] = midi_fit.predict({"midi": stats}, te)
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
            te4 = [i for i, s in enumerate(t4_data["source"]) if s in by_id and s not in train_ids]
            if te4:
                a = predict_heads(model, [t4_data["clean"].tensors[i] for i in te4])
                b = predict_heads(model, [t4_data["augmented"].tensors[i] for i in te4])
                t4_pairs.append((te4, a, b))
                t4_sources += [t4_data["source"][i] for i in te4]
        selections[-1]["evaluated"] = scored
    res: dict[str, Any] = {"protocol": protocol, "folds": len(folds), "n": len(rows), "loss_curves": curves}
    if len(inputs) > 1 or (tiers is None and cfg.tier_selection):
        res["selection"] = {"folds": selections, "counts": {
            "embedder": dict(Counter(s["embedder"] for s in selections)),
            **{t: sum(s["tiers"][t] for s in selections) for t in ("t2", "t3", "t4")}},
            "evaluated": {t: sum(s["evaluated"][t] for s in selections) for t in ("t2", "t3")}}
    res["model"] = {**regression_report(y, pred, passages, DIMENSIONS),
                    "interval": bootstrap_interval(y, pred, key, cfg.n_boot, cfg.seed)}
    if choices:
        res["model"]["ridge_choices"] = choices
    if cfg.ratings_fit == "ridge" and cfg.use_midi_statistics:
        res["model_audio_only"] = {**{k: v for k, v in regression_report(y, pred_audio, passages, DIMENSIONS).items()
                                      if k != "per_dimension"},
                                   "interval": bootstrap_interval(y, pred_audio, key, cfg.n_boot, cfg.seed)}
    mean_pred = np.zeros_like(y)
    for tr, te in folds:
        mean_pred[te] = np.nanmean(y[tr], axis=0)
    res["baseline_mean"] = {k: v for k, v in regression_report(y, mean_pred, passages, DIMENSIONS).items() if k != "per_dimension"}
    res["baseline_ridge_midi"] = {**regression_report(y, ridge, passages, DIMENSIONS),
                                  "interval": bootstrap_interval(y, ridge, key, cfg.n_boot, cfg.seed)}
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


def _t2_data(cfg: PerformanceConfig, rows: list[PercePianoRow], spec: EmbedderSpec, work: Path) -> dict[str, Any]:
    from eno_hf.performance.degrade import DEGRADATIONS, degrade_midi

    chosen = balanced_rows(rows, cfg.degrade_segments)  # every outer fold of both protocols gets sources
    items, order, groups, source = [], [], [], []
    for r in chosen:
        for kind in DEGRADATIONS:
            for sev in range(cfg.degrade_severities + 1):
                data = degrade_midi(r.midi, kind, sev, cfg.degrade_severities, cfg.seed)
                items.append(EmbedItem(segment_id=f"{r.segment_id}__{kind}{sev}", midi_bytes=data,
                                       size_hint=float(len(data)), fields={"severity": sev, "kind": kind, "source": r.segment_id}))
                order.append(-sev)
                groups.append(f"{r.segment_id}/{kind}")
                source.append(r.segment_id)
    table = embed_rows([], spec, work, cfg.soundfont, "-t2", items, workers=cfg.workers)
    keep = [table.index[it.segment_id] for it in items if it.segment_id in table.index]
    ok = [i for i, it in enumerate(items) if it.segment_id in table.index]
    return {"table": table.subset(keep), "order": np.array([order[i] for i in ok], float),
            "groups": [groups[i] for i in ok], "source": [source[i] for i in ok],
            "midi": _bytes_midi_stats([items[i].midi_bytes for i in ok])}


def _bytes_midi_stats(midi: list[bytes]) -> np.ndarray:
    """``(n, len(MIDI_STATISTICS))`` float64 MIDI statistics of in-memory MIDI files (undefined or
    unreadable -> 0, as ``midi_stats``)."""
    import tempfile

    from eno_hf.features.midi import midi_statistics_matrix

    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for k, data in enumerate(midi):
            paths.append(Path(tmp) / f"{k}.mid")
            paths[-1].write_bytes(data)
        x, _ = midi_statistics_matrix(paths)
    return np.nan_to_num(x)


def _t4_data(cfg: PerformanceConfig, rows: list[PercePianoRow], spec: EmbedderSpec, work: Path,
             table: EmbeddingTable) -> dict[str, Any]:
    from eno_hf.performance.augment import augment_waveform

    chosen = balanced_rows(rows, cfg.augment_segments)
    sr = build_frame_embedder(spec).sample_rate
    aug = embed_rows(chosen, spec, work, cfg.soundfont, "-t4",
                     transform=lambda w, it: augment_waveform(w, sr, cfg.augment, it.segment_id)[0])
    ids = [r.segment_id for r in chosen if r.segment_id in aug.index and r.segment_id in table.index]
    return {"clean": table.subset([table.index[s] for s in ids]), "augmented": aug.subset([aug.index[s] for s in ids]),
            "source": ids}


def balanced_rows(rows: list[PercePianoRow], limit: int) -> list[PercePianoRow]:
    """``limit`` rows spread over the performers *and* the pieces: greedily, the row whose performer
    and piece have been picked least so far (sum of the two counts, then the performer's), the
    shortest (MIDI size) first; in id order.

    The T2/T4 sources: each performer-grouped and each piece-grouped outer fold then trains on
    most of them and tests on a few. (The 16 shortest overall put 15 in one performer fold; the
    shortest of each performer are mostly one piece, so one piece fold held most of those.)
    """
    from collections import Counter

    left = sorted(rows, key=lambda r: (r.midi.stat().st_size, r.segment_id))
    performers, pieces, out = Counter(), Counter(), []
    while left and len(out) < limit:
        best = min(range(len(left)), key=lambda i: (performers[left[i].performer] + pieces[left[i].piece],
                                                    performers[left[i].performer], i))
        r = left.pop(best)
        performers[r.performer] += 1
        pieces[r.piece] += 1
        out.append(r)
    return sorted(out, key=lambda r: r.segment_id)


#: (row label, report key) of each system in a protocol's report, in display order
REPORT_SYSTEMS = (("this model (MIDI input: embeddings + MIDI statistics)", "model"),
                  ("this model (audio input: embeddings only)", "model_audio_only"),
                  ("ridge on MIDI statistics", "baseline_ridge_midi"), ("training mean", "baseline_mean"))


def _nested_selection_lines(report: dict[str, Any]) -> list[str]:
    """Model-card lines on the choices made inside the outer folds (empty when none were)."""
    parts = []
    for prot, r in report["protocols"].items():
        c = (r.get("selection") or {}).get("counts")
        if c:
            emb = ", ".join(f"`{k}` {v}" for k, v in c["embedder"].items())
            parts.append(f"{prot}: {emb} of {r['folds']} folds; T2/T3/T4 kept in {c['t2']}/{c['t3']}/{c['t4']}")
    if not parts:
        return []
    return ["The figures below are nested: in each outer fold the embedder and the tiers were chosen again from "
            "its training side only (" + "; ".join(parts) + ").", ""]


def performance_model_card(report: dict[str, Any]) -> str:
    """Markdown model card (``README.md`` of the model directory) from a ``run_performance`` report:
    data, embedder, tiers, and per protocol the cross-validated mean R² [95 % CI] of the model and
    the baselines, beside the published figures."""
    lines = [f"# {report.get('model_name', 'eno-piano')}: piano performance evaluation", "",
             f"Regresses the 19 PercePiano perceptual ratings (0-1 scale) of a performance from frame embeddings of "
             f"`{report['embedder']}` (MIDI rendered with FluidSynth). Trained on {report['n']} performances of "
             f"{len(report['pieces'])} pieces by {len(report['performers'])} performers"
             + (" (**biased subset**: only cached embeddings)" if report.get("only_cached") else "") + ".",
             f"Tiers: {', '.join(k for k, v in report['tiers'].items() if v is True) or 't1'} (T1 always)"
             + (" — chosen by performer-grouped CV on " + str(report["tier_selection"]["n"]) + " performances: "
                + "; ".join(f"{t} {'kept' if d['kept'] else 'dropped'} ({TIER_CRITERIA[t][2]} {d['with']:.3f} with, "
                            f"{d['without']:.3f} without)" for t, d in report["tier_selection"]["decisions"].items())
                if report.get("tier_selection", {}).get("decisions") else "") + ".",
             *([f"Ratings: closed-form ridge chosen by inner grouped CV: "
                + "; ".join(f"`{k}` {v['candidate']} (alpha {v['alpha']:g})" for k, v in report["ridge_selection"].items()
                            if "candidate" in v)
                + " (`ridge_midi` is used when the input is MIDI)."] if report.get("ridge_selection") else []),
             *([f"Quality (T2 severity ranking): closed-form pairwise ranking ridge, alpha "
                f"{report['ridge_selection']['quality']['alpha']:g} by inner folds grouped by source performance"
                + (f"; for MIDI input `quality_ridge_midi` (embeddings + MIDI statistics, block weights "
                   f"{report['ridge_selection']['quality']['midi']['block_weights']}, alpha "
                   f"{report['ridge_selection']['quality']['midi']['alpha']:g})"
                   if "midi" in report["ridge_selection"]["quality"] else "") + "."]
               if "quality" in report.get("ridge_selection", {}) else []), "",
             *_nested_selection_lines(report),
             "| protocol | system | mean R² [95 % CI] | pairwise acc. |", "|---|---|---|---|"]
    for prot, r in report["protocols"].items():
        for label, key in REPORT_SYSTEMS:
            m = r.get(key)
            if not m:
                continue
            i = m.get("interval")
            ci = f" [{i['low']:.3f}, {i['high']:.3f}]" if i else ""
            lines.append(f"| {prot} ({r['folds']} folds) | {label} | {m['mean_r2']:.3f}{ci} | "
                         f"{m.get('mean_pairwise_accuracy', float('nan')):.3f} |")
    pub = report.get("published_mean_r2", {})
    lines += ["", f"Published (segment-level splits, not these protocols): {pub}.", ""]
    for prot, r in report["protocols"].items():
        m, b = r["model"], r["baseline_ridge_midi"]
        i = m.get("interval") or {"low": m["mean_r2"], "high": m["mean_r2"]}
        verdict = ("above: the model's interval excludes it" if i["low"] > b["mean_r2"] else
                   "below: the model's interval excludes it" if i["high"] < b["mean_r2"] else
                   "the model's interval includes it: not separated")
        lines.append(f"- {prot}: the model is {m['mean_r2'] - b['mean_r2']:+.3f} mean R² from the ridge on MIDI "
                     f"statistics ({verdict}).")
    lines += ["", "Piece-grouped R² stays near 0: each piece shifts the mean ratings, and unseen pieces are hard. "
              "See docs/performance.md.", ""]
    return "\n".join(lines)


def embedder_inputs(cfg: PerformanceConfig, rows: list[PercePianoRow], work: Path
                    ) -> tuple[dict[str, EmbedderInputs], list[PercePianoRow]]:
    """Render and embed ``rows`` with ``cfg.embedder`` and every ``cfg.candidates`` entry (cached,
    resumable), and the rows every one of them embedded (a file that fails to render is in the
    embedding report of ``embeddings/{key}/``). T2/T4 data (``_t2_data``/``_t4_data``) are
    attached lazily: built only for an embedder some selection chooses.

    With ``cfg.only_cached``, the rows are those already embedded by ``cfg.embedder``, and a
    candidate missing any of them is skipped (warned).

    Returns:
        embedder key -> ``EmbedderInputs`` (row-aligned with the returned rows), and the rows.
    """
    specs = list({s.key: s for s in [_spec(cfg.embedder)] + [_spec(c) for c in cfg.candidates]}.values())
    if cfg.only_cached:
        cached = {p.stem for p in (work / "embeddings" / specs[0].key / "embeddings").glob("*.pt")}
        rows = [r for r in rows if r.segment_id in cached]
        keep = [specs[0]]
        for spec in specs[1:]:
            have = {p.stem for p in (work / "embeddings" / spec.key / "embeddings").glob("*.pt")}
            if all(r.segment_id in have for r in rows):
                keep.append(spec)
            else:
                log.warning("only_cached: %s has not embedded every performance; not a candidate", spec.key)
        specs = keep
    tables = {spec.key: embed_rows(rows, spec, work, cfg.soundfont, workers=cfg.workers) for spec in specs}
    rows = [r for r in rows if all(r.segment_id in t.index for t in tables.values())]
    inputs: dict[str, EmbedderInputs] = {}
    for spec in specs:
        tab = tables[spec.key]
        tab = tab.subset([tab.index[r.segment_id] for r in rows])

        def load_t2(spec: EmbedderSpec = spec) -> dict[str, Any] | None:
            return _t2_data(cfg, rows, spec, work) if cfg.tiers.t2 and cfg.degrade_segments else None

        def load_t4(spec: EmbedderSpec = spec, tab: EmbeddingTable = tab) -> dict[str, Any] | None:
            return _t4_data(cfg, rows, spec, work, tab) if cfg.tiers.t4 and cfg.augment_segments else None

        inputs[spec.key] = EmbedderInputs(spec, tab, load_t2, load_t4)
    return inputs, rows


def run_performance(settings: Any, progress: Any = None) -> PerformanceRun:
    """Run the whole job for ``settings.performance`` (see the module docstring): embed with every
    candidate embedder (``embedder_inputs``); grouped CV per protocol, the embedder and tiers
    chosen inside each outer fold from its training side (``cfg.nested_selection``; else once, on
    all rows, before the CV); the final model with the choice made on all rows; register; tag.

    Raises:
        ValueError: ``settings.performance`` missing. FileNotFoundError: PercePiano not found.
    """
    cfg: PerformanceConfig = settings.performance
    if cfg is None:
        raise ValueError("settings.performance is not set")
    t0 = time.time()
    work = Path(settings.paths.data_root) / "performance" / cfg.name
    inputs, rows = embedder_inputs(cfg, select_rows(cfg), work)
    stats = midi_stats(rows, work)
    final = select_procedure(cfg, inputs, rows, stats, np.arange(len(rows)))
    spec, table, t2, t4, tiers = final.inputs.spec, final.inputs.table, final.inputs.t2, final.inputs.t4, final.tiers
    report: dict[str, Any] = {"dataset": cfg.name, "n": len(rows), "embedder": spec.key, "dim": table.dim,
                              "pieces": dict(Counter(r.piece for r in rows)),
                              "performers": dict(Counter(r.performer for r in rows)),
                              "only_cached": cfg.only_cached, "limit": cfg.limit,
                              "nested_selection": cfg.nested_selection,
                              "selection": final.report["embedder"], "tiers": tiers.model_dump(),
                              "tier_selection": final.report["tiers"], "protocols": {},
                              "published_mean_r2": {"symbolic": 0.35, "muq_audio_arXiv_2601.19029": 0.537}}
    for protocol in cfg.protocols:
        report["protocols"][protocol] = (cross_validate(cfg, inputs, rows, stats, protocol) if cfg.nested_selection
                                         else cross_validate(cfg, final.inputs, rows, stats, protocol, tiers=tiers))
    # final model on everything
    from eno_hf.performance.trainer import InvarianceData, OrdinalData, fit_tiers

    mcfg = build_model_config(cfg, table.dim, spec, t2=t2 is not None and tiers.t2, t3=tiers.t3)
    y = np.stack([r.labels for r in rows]).astype(np.float64)
    model = fit_tiers(mcfg, table, y, [r.passage for r in rows],
                      t2=OrdinalData(t2["table"], t2["order"], t2["groups"], keys=t2["source"],
                                     midi=t2["midi"] if mcfg.midi_statistics else None) if t2 and tiers.t2 else None,
                      t4=InvarianceData(t4["clean"], t4["augmented"]) if t4 and tiers.t4 else None,
                      epochs=cfg.epochs, learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay, seed=cfg.seed,
                      groups_per_batch=cfg.groups_per_batch, per_group=cfg.per_group,
                      ridge_groups=[getattr(r, cfg.ridge_groups) for r in rows], midi=stats)
    report["ridge_selection"] = dict(model.config.ridge_selection)
    model_dir = work / "model"
    model.save_pretrained(model_dir)
    report["runtime_s"] = round(time.time() - t0, 1)
    (work / "report.json").write_text(json.dumps(report, indent=2, default=float))
    (model_dir / "eval_report.json").write_text(json.dumps(report, indent=2, default=float))
    (model_dir / "README.md").write_text(performance_model_card({**report, "model_name": cfg.model_name}),
                                         encoding="utf-8")
    from eno_hf.registry.hub import register

    summary = {p: {"mean_r2": v["model"]["mean_r2"], "ridge_midi_mean_r2": v["baseline_ridge_midi"]["mean_r2"],
                   **({"audio_only_mean_r2": v["model_audio_only"]["mean_r2"]} if "model_audio_only" in v else {})}
               for p, v in report["protocols"].items()}
    registered = register(model_dir, settings.paths.hub(), cfg.model_name, {"metrics": summary, "embedder": spec.key})
    tags = None
    if cfg.tag_files:
        from eno_hf.inference.performance import tag_performance_paths

        tags = list(tag_performance_paths(cfg.tag_files, registered, render_cache=work / "render"))
    return PerformanceRun(report, model_dir, registered, tags)
