"""``TierTrainer``: one ``transformers.Trainer`` for all tiers, each with its confidence weight.

Every training step is one item of a ``TierPlan``: a dict ``tier -> batch`` (``t1`` always; ``t2``
and ``t4`` when their data exist, cycled). ``compute_loss`` runs the model once per tier,
``model(embeddings, frame_mask, labels, tier=...)``, and sums the tier losses, which the model
already weights by ``config.tier_weights`` (T1 1.0, T2 0.6, T3 0.4, T4 0.3 by default); the mean
of each loss term since the last log is logged as ``loss_{term}``.

``fit_tiers`` is the whole recipe: feature standardisation and target standardisation (folded back
into the regression heads) from the training data, seeded batch plans (``samplers``),
``TierTrainer.train``, and, with ``ratings_fit="ridge"``, ``fit_ridge_heads``: the ratings head in
closed form, its (layers, pooling, MIDI weight, alpha) chosen by inner grouped CV
(``eno_hf.performance.probe.select_ridge``).
"""

from __future__ import annotations

import gc
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor
from transformers import Trainer, TrainingArguments
from transformers.trainer_callback import PrinterCallback

from eno_hf.performance.data import EmbeddingTable, collate_frames
from eno_hf.performance.model import EnoForPerformanceEvaluation, EnoPerformanceConfig
from eno_hf.performance.probe import Candidate, _center_scale, head_candidates, pooled_blocks, select_ridge
from eno_hf.performance.samplers import group_batches, grouped_folds, ordered_group_batches, paired_batches

__all__ = ["OrdinalData", "InvarianceData", "TierPlan", "TierTrainer", "fit_quality_ridge", "fit_ridge_heads",
           "fit_tiers"]


@dataclass
class OrdinalData:
    """T2: a table of performances with ``order`` (higher = better) within ``groups``; ``keys``:
    the group of each row for the inner folds of ``fit_quality_ridge`` (e.g. the source
    performance of a degraded rendering; default ``groups``); ``midi``: ``(n,
    len(config.midi_statistics))`` MIDI statistics of the rows (for ``quality_ridge_midi``)."""

    table: EmbeddingTable
    order: np.ndarray
    groups: list[Any]
    keys: list[Any] | None = None
    midi: np.ndarray | None = None

    def subset(self, rows: Sequence[int]) -> "OrdinalData":
        """The rows ``rows`` (in that order) of every field."""
        rows = list(rows)
        return OrdinalData(self.table.subset(rows), np.asarray(self.order)[rows], [self.groups[i] for i in rows],
                           keys=None if self.keys is None else [self.keys[i] for i in rows],
                           midi=None if self.midi is None else np.asarray(self.midi)[rows])


@dataclass
class InvarianceData:
    """T4: ``clean`` and ``augmented`` tables, row i of both = the same segment."""

    clean: EmbeddingTable
    augmented: EmbeddingTable


@dataclass
class TierPlan(torch.utils.data.Dataset):
    """Seeded per-step batches of every tier (see the module docstring)."""

    t1: EmbeddingTable
    ratings: np.ndarray
    groups: list[Any]
    epochs: int = 30
    groups_per_batch: int = 8
    per_group: int = 4
    seed: int = 0
    t2: OrdinalData | None = None
    t4: InvarianceData | None = None
    max_frames: int | None = 32
    steps: list[dict[str, list[int]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        gid = {g: i for i, g in enumerate(sorted(set(map(str, self.groups))))}
        self.group_ids = torch.tensor([gid[str(g)] for g in self.groups])
        t2b: list[list[int]] = []
        t4b: list[list[int]] = []
        for e in range(self.epochs):
            for b in group_batches([str(g) for g in self.groups], self.groups_per_batch, self.per_group, self.seed, e):
                self.steps.append({"t1": b})
            if self.t2 is not None:
                t2b += ordered_group_batches([str(g) for g in self.t2.groups], 4, self.seed, e)
            if self.t4 is not None:
                t4b += paired_batches([(i, i) for i in range(len(self.t4.clean))], 16, self.seed, e)
        for k, step in enumerate(self.steps):
            if t2b:
                step["t2"] = t2b[k % len(t2b)]
            if t4b:
                step["t4"] = t4b[k % len(t4b)]

    def __len__(self) -> int:
        return len(self.steps)

    def __getitem__(self, k: int) -> dict[str, dict[str, Any]]:
        step, out = self.steps[k], {}
        idx = step["t1"]
        x, m = collate_frames([self.t1.tensors[i] for i in idx], self.max_frames)
        out["t1"] = {"embeddings": x, "frame_mask": m,
                     "labels": {"ratings": torch.as_tensor(self.ratings[idx], dtype=torch.float32),
                                "group": self.group_ids[idx]}}
        if "t2" in step and self.t2 is not None:
            idx = step["t2"]
            x, m = collate_frames([self.t2.table.tensors[i] for i in idx], self.max_frames)
            gmap = {g: j for j, g in enumerate(sorted({str(self.t2.groups[i]) for i in idx}))}
            out["t2"] = {"embeddings": x, "frame_mask": m,
                         "labels": {"order": torch.as_tensor(self.t2.order[idx], dtype=torch.float32),
                                    "group": torch.tensor([gmap[str(self.t2.groups[i])] for i in idx])}}
        if "t4" in step and self.t4 is not None:
            idx = step["t4"]
            half = len(idx) // 2
            tensors = [self.t4.clean.tensors[i] for i in idx[:half]] + [self.t4.augmented.tensors[i] for i in idx[half:]]
            x, m = collate_frames(tensors, self.max_frames)
            out["t4"] = {"embeddings": x, "frame_mask": m, "labels": {}}
        return out


class TierTrainer(Trainer):
    """``transformers.Trainer`` over a ``TierPlan`` (``per_device_train_batch_size=1``: one plan
    item = one step holding every tier's batch)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("data_collator", lambda items: items[0])
        super().__init__(*args, **kwargs)
        self._sums: dict[str, float] = {}
        self._count = 0

    def compute_loss(self, model: torch.nn.Module, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Tensor | int | None = None) -> Tensor | tuple[Tensor, Any]:
        total: Tensor | None = None
        outs = {}
        for tier, batch in inputs.items():
            out = model(embeddings=batch["embeddings"], frame_mask=batch["frame_mask"], labels=batch["labels"], tier=tier)
            outs[tier] = out
            total = out.loss if total is None else total + out.loss
            if model.training:
                for name, v in (out.losses or {}).items():
                    self._sums[f"{tier}_{name}"] = self._sums.get(f"{tier}_{name}", 0.0) + float(v.detach())
        if model.training:
            self._count += 1
        return (total, outs) if return_outputs else total

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._count:
            logs.update({f"loss_{k}": round(v / self._count, 6) for k, v in self._sums.items()})
            self._sums, self._count = {}, 0
        super().log(logs, start_time)


def fit_tiers(config: EnoPerformanceConfig, t1: EmbeddingTable, ratings: np.ndarray, groups: Sequence[Any], *,
              t2: OrdinalData | None = None, t4: InvarianceData | None = None, epochs: int = 30,
              learning_rate: float = 1e-3, weight_decay: float = 0.05, seed: int = 0, groups_per_batch: int = 8,
              per_group: int = 4, output_dir: str | None = None, log_history: list | None = None,
              num_threads: int | None = 1, ridge_groups: Sequence[Any] | None = None,
              midi: np.ndarray | None = None, inner_folds: int = 4,
              transcription: np.ndarray | None = None, midi_statistics_only: bool = False
              ) -> EnoForPerformanceEvaluation:
    """Train a model on the tiers given (T1 + T3 from ``t1``/``groups``; T2/T4 optional).

    Args:
        config: model config (heads: a regression head for T1; a projection head enables T3; a
            ranking head is needed for ``t2``).
        t1: training performances; ratings: ``(n, K)`` float (NaN = unrated; not allowed with
            ``ratings_fit="ridge"``); groups: passage ids.
        log_history: if a list, the Trainer's ``log_history`` is appended to it.
        ridge_groups: ``(n,)`` group of each row for the inner folds of ``fit_ridge_heads`` (e.g.
            the performer or the piece); default ``groups``. midi: ``(n, len(config.midi_statistics))``
            MIDI statistics for ``ridge_midi``. inner_folds: of the ridge selection.
        transcription: ``(n, len(config.midi_statistics))`` statistics of automatic
            transcriptions of the training renders, for ``ridge_transcription`` (needed when
            ``config.transcription_map``).
        midi_statistics_only: ``ridge_midi`` is the ridge on the MIDI statistics alone (the
            baseline's map), not chosen among the embeddings + statistics candidates.
        num_threads: torch intra-op threads while training (restored after). 1 by default: this
            model is small, and on a shared 2-core machine 2 threads made each step ~20x slower
            (measured: 2.2 s vs 0.09 s per step under load).

    Returns:
        the trained model in eval mode.
    """
    prev_threads = torch.get_num_threads()
    if num_threads:
        torch.set_num_threads(num_threads)
    try:
        model = _fit(config, t1, ratings, groups, t2, t4, epochs, learning_rate, weight_decay, seed, groups_per_batch,
                     per_group, output_dir, log_history)
    finally:
        torch.set_num_threads(prev_threads)
    if config.ridge_head is not None:
        fit_ridge_heads(model, t1, ratings, list(ridge_groups if ridge_groups is not None else groups), midi,
                        inner_folds=inner_folds, seed=seed, transcription=transcription,
                        midi_statistics_only=midi_statistics_only)
    if config.quality_ridge_head is not None and t2 is not None and len(t2.table):
        fit_quality_ridge(model, t2, inner_folds=inner_folds, seed=seed)
    return model


#: penalties tried by ``fit_quality_ridge`` (z-scored features, +-1 pair targets)
QUALITY_ALPHAS = np.logspace(0, 5, 11)


def _pair_rows(order: np.ndarray, groups: Sequence[Any], rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``(a, b)`` within ``rows``, same group, ``order[a] > order[b]``: ``(P,)`` x 2."""
    by: dict[Any, list[int]] = {}
    for i in rows:
        by.setdefault(groups[i], []).append(int(i))
    a, b = [], []
    for idx in by.values():
        for i in idx:
            for j in idx:
                if order[i] > order[j]:
                    a.append(i)
                    b.append(j)
    return np.array(a, dtype=int), np.array(b, dtype=int)


def _pairwise_ridge(z: np.ndarray, order: np.ndarray, groups: Sequence[Any], rows: np.ndarray,
                    alphas: np.ndarray) -> np.ndarray:
    """``(len(alphas), columns)`` weights ``w`` minimising ``sum_pairs (w . (z_a - z_b) - 1)^2 +
    alpha |w|^2`` over the ordered pairs of ``rows`` (dual form: one eigendecomposition)."""
    a, b = _pair_rows(order, groups, rows)
    if not len(a):
        return np.zeros((len(alphas), z.shape[1]))
    d = z[a] - z[b]
    evals, evecs = np.linalg.eigh(d @ d.T)
    proj = evecs.T @ np.ones(len(a))
    return np.stack([d.T @ (evecs @ (proj / (np.clip(evals, 0.0, None) + al))) for al in alphas])


#: weights of the z-scored MIDI-statistics block tried by ``fit_quality_ridge`` for
#: ``quality_ridge_midi`` (0 embeddings: the statistics alone)
QUALITY_MIDI_WEIGHTS = ((1.0, 1.0), (1.0, 4.0), (1.0, 16.0), (0.0, 1.0))


def _select_pairwise_ridge(x: np.ndarray, col_weight: np.ndarray, t2: OrdinalData, inner_folds: int, seed: int,
                           alphas: np.ndarray) -> tuple[np.ndarray, float, float, float, int]:
    """Pairwise ranking ridge on the columns of ``x`` (z-scored, then scaled by ``col_weight``),
    alpha by ``inner_folds`` folds grouped by ``t2.keys``; refit on all rows. Returns ``(w, bias,
    alpha, inner_spearman, pairs)`` with ``w`` ``(columns,)`` in the raw units of ``x``."""
    from eno_hf.performance.metrics import ordinal_metrics

    order, groups = np.asarray(t2.order, float), list(t2.groups)
    keys = list(t2.keys if t2.keys is not None else groups)
    n_keys = len(set(map(str, keys)))
    inner = grouped_folds(keys, min(inner_folds, n_keys), seed) if n_keys > 1 else []
    scores = np.zeros(len(alphas))
    for tr, va in inner:
        mu, sd = _center_scale(x[tr])
        w = _pairwise_ridge((x - mu) / sd * col_weight, order, groups, np.asarray(tr), alphas)
        zva = (x[va] - mu) / sd * col_weight
        for k in range(len(alphas)):
            rho = ordinal_metrics(zva @ w[k], order[va], [groups[i] for i in va])["spearman"]
            scores[k] += (rho if np.isfinite(rho) else 0.0) / len(inner)
    best = int(np.argmax(scores)) if inner else len(alphas) // 2
    mu, sd = _center_scale(x)
    rows = np.arange(len(x))
    w = _pairwise_ridge((x - mu) / sd * col_weight, order, groups, rows, alphas[best: best + 1])[0] * col_weight / sd
    return (w, float(-(w @ mu)), float(alphas[best]), float(scores[best]) if inner else float("nan"),
            int(len(_pair_rows(order, groups, rows)[0])))


def fit_quality_ridge(model: EnoForPerformanceEvaluation, t2: OrdinalData, *, inner_folds: int = 4, seed: int = 0,
                      alphas: np.ndarray = QUALITY_ALPHAS) -> dict[str, Any]:
    """Fit the model's closed-form ranking scores on the T2 performances: ``quality_ridge``
    (embeddings) and, when the model takes MIDI statistics and ``t2.midi`` is given,
    ``quality_ridge_midi`` (embeddings + MIDI statistics).

    A pairwise ranking ridge (RankSVM with squared loss; Herbrich et al. 2000, Joachims 2002):
    features = mean ++ population std over all frames of the raw embeddings (++ the MIDI
    statistics), z-scored; for every pair of one group with ``order[a] > order[b]``, ``w . (z_a -
    z_b)`` is regressed on 1. ``alpha`` (and, with MIDI, the block weights
    ``QUALITY_MIDI_WEIGHTS``: embeddings x MIDI) is chosen by ``inner_folds`` folds grouped by
    ``t2.keys`` (mean within-group Spearman on the held-out side;
    ``eno_hf.performance.metrics.ordinal_metrics``), then ``w`` is refit on all rows and installed
    in raw units (``model.set_quality_ridge``).

    Returns:
        ``{"alpha", "inner_spearman", "pairs"}`` (+ ``"midi": {"alpha", "inner_spearman",
        "block_weights"}``), also in ``model.config.ridge_selection["quality"]``.

    Raises:
        ValueError: the model has no closed-form ranking head, or it takes MIDI statistics and
            ``t2.midi`` is None or of the wrong shape.
    """
    if model.quality_ridge is None:
        raise ValueError("fit_quality_ridge: the model has quality_fit != 'ridge' or no ranking head")
    if model.quality_ridge_midi is not None and t2.midi is None:  # else it keeps its random weights
        raise ValueError("fit_quality_ridge: the model takes MIDI statistics (config.midi_statistics) but t2.midi is None")
    x = t2.table.pooled_mean_std()
    d = model.config.input_dim
    w, bias, alpha, score, pairs = _select_pairwise_ridge(x, np.ones(x.shape[1]), t2, inner_folds, seed, alphas)
    selection: dict[str, Any] = {"alpha": alpha, "inner_spearman": score, "pairs": pairs}
    model.set_quality_ridge(torch.as_tensor(w[:d]), torch.as_tensor(w[d:]), bias)
    m = len(model.config.midi_statistics)
    if model.quality_ridge_midi is not None and t2.midi is not None:
        midi = np.asarray(t2.midi, dtype=np.float64)
        if midi.shape != (len(x), m):
            raise ValueError(f"fit_quality_ridge: t2.midi has shape {midi.shape}, expected {(len(x), m)}")
        xm = np.hstack([x, midi])
        best = None
        for we, wm in QUALITY_MIDI_WEIGHTS:
            cw = np.concatenate([np.full(x.shape[1], we), np.full(m, wm)])
            fit = _select_pairwise_ridge(xm, cw, t2, inner_folds, seed, alphas)
            if best is None or fit[3] > best[1][3]:
                best = ((we, wm), fit)
        (we, wm), (wq, bq, aq, sq, _) = best
        model.set_quality_ridge(torch.as_tensor(wq[:d]), torch.as_tensor(wq[d:2 * d]), bq,
                                weight_midi=torch.as_tensor(wq[2 * d:]))
        selection["midi"] = {"alpha": aq, "inner_spearman": sq, "block_weights": [we, wm]}
    model.config.ridge_selection = {**model.config.ridge_selection, "quality": selection}
    return selection


def fit_ridge_heads(model: EnoForPerformanceEvaluation, table: EmbeddingTable, ratings: np.ndarray,
                    keys: Sequence[Any], midi: np.ndarray | None = None, *, inner_folds: int = 4,
                    seed: int = 0, transcription: np.ndarray | None = None,
                    midi_statistics_only: bool = False) -> dict[str, Any]:
    """Fit the model's closed-form ratings maps on ``table`` (after ``set_standardization``).

    Blocks: mean and std over all frames of the raw embeddings, split into the prefix
    (``config.prefix_dim`` columns) and embedding layers. ``ridge`` chooses among (layers in
    {embedding, prefix+embedding}) x (pooling in {mean, meanstd}); ``ridge_midi`` (when
    ``config.midi_statistics`` and ``midi`` are given) among the MIDI statistics alone and those
    candidates plus the statistics at weight 1 or 4; ``ridge_transcription`` (when
    ``config.transcription_map``) the same choice with ``transcription`` in place of ``midi``. Each
    choice and its alpha by ``inner_folds`` grouped folds of ``keys`` (``probe.select_ridge``, mean
    R² over the rating dimensions). ``midi_statistics_only``: ``ridge_midi`` has the one
    candidate "MIDI statistics alone" (only its alpha is chosen).

    Args:
        table: ``n`` performances, ``(frames_i, input_dim)``; ratings: ``(n, K)`` finite floats;
        keys: ``(n,)`` groups for the inner folds; midi: ``(n, len(config.midi_statistics))``;
        transcription: the same statistics of the performances' automatic transcriptions.

    Returns:
        ``{"ridge": {candidate, alpha, inner_r2}, "ridge_midi": ..., "ridge_transcription": ...}``
        (also in ``model.config.ridge_selection``).

    Raises:
        ValueError: no ridge head, NaN ratings, ``midi`` (``transcription``) missing although the
            config names MIDI statistics (a transcription map), or either of the wrong shape.
    """
    cfg = model.config
    if cfg.ridge_head is None:
        raise ValueError("fit_ridge_heads: the model has ratings_fit != 'ridge'")
    y = np.asarray(ratings, dtype=np.float64)
    d, p = cfg.input_dim, cfg.prefix_dim
    blocks = pooled_blocks([t.numpy() for t in table.tensors], d - p, "frames")
    rows = np.arange(len(y))
    slices = {"frames/prefix/mean": (0, 0, p), "frames/embedding/mean": (0, p, d),
              "frames/prefix/std": (1, 0, p), "frames/embedding/std": (1, p, d)}

    def install(fit: Any, with_midi: bool, transcribed: bool = False) -> None:
        w = [np.zeros((y.shape[1], d)), np.zeros((y.shape[1], d))]
        for b, (part, lo, hi) in slices.items():
            if b in fit.weights:
                w[part][:, lo:hi] = fit.weights[b].T
        w_midi = fit.weights["midi"].T if "midi" in fit.weights else np.zeros((y.shape[1], len(cfg.midi_statistics)))
        model.set_ridge(torch.as_tensor(w[0]), torch.as_tensor(w[1]), torch.as_tensor(fit.intercept),
                        torch.as_tensor(w_midi) if with_midi else None, selection=fit.summary(),
                        transcription=transcribed)

    def statistics(x: np.ndarray | None, what: str) -> np.ndarray:
        if x is None:  # the map would keep its random initial weights
            raise ValueError(f"the model takes {len(cfg.midi_statistics)} MIDI statistics (config.midi_statistics"
                             + ("" if what == "midi" else " and transcription_map") + f"): pass {what}, or build the "
                             "config without " + ("midi_statistics" if what == "midi" else "transcription_map"))
        x = np.asarray(x, dtype=np.float64)
        if x.shape != (len(y), len(cfg.midi_statistics)):
            raise ValueError(f"{what} must be {(len(y), len(cfg.midi_statistics))}, got {x.shape}")
        return x

    fit, _ = select_ridge(blocks, y, list(keys), rows, head_candidates("frames", p > 0, False), inner_folds=inner_folds,
                          seed=seed)
    install(fit, False)
    for what, x in (("midi", midi), ("transcription", transcription)):
        if not cfg.midi_statistics or (what == "transcription" and model.ridge_transcription is None):
            continue
        blocks["midi"] = statistics(x, what)
        cands = [Candidate(None)] if what == "midi" and midi_statistics_only else head_candidates("frames", p > 0, True)
        fit, _ = select_ridge(blocks, y, list(keys), rows, cands, inner_folds=inner_folds, seed=seed)
        install(fit, True, transcribed=what == "transcription")
    return dict(cfg.ridge_selection)


def _fit(config, t1, ratings, groups, t2, t4, epochs, learning_rate, weight_decay, seed, groups_per_batch, per_group,
         output_dir, log_history) -> EnoForPerformanceEvaluation:
    # Trainer.train() ends with accelerate's free_memory(), a full gc.collect(): ~0.45 s over the
    # ~0.5 M objects of the imported libraries, in each of the job's dozens of small fits. Collect
    # now and freeze what is alive (imports, the data: Python's gc.freeze), so those collections
    # skip it; after the first fit this collect only sees what was made since.
    gc.collect()
    gc.freeze()
    torch.manual_seed(seed)
    model = EnoForPerformanceEvaluation(config)
    mean, std = t1.frame_stats()
    model.set_standardization(mean, std)
    # targets standardised per dimension with the training side's mean/std (ratings spread ~0.05-0.1
    # on a 0-1 scale: raw MSE is ~100x smaller than the contrastive term and weight decay), folded
    # back into the regression heads after training, so predictions are on the rating scale
    r_mean = np.nanmean(ratings, axis=0)
    r_std = np.nanstd(ratings, axis=0)
    r_std = np.where(r_std > 1e-6, r_std, 1.0)
    ridge = config.ridge_head
    reg_heads = [s.name for s in config.head_specs if s.kind == "regression" and (ridge is None or s.name != ridge.name)]
    for name in reg_heads:
        model.set_head_bias(name, torch.zeros(len(r_mean)))
    z = (np.asarray(ratings, dtype=np.float64) - r_mean) / r_std
    if config.quality_ridge_head is not None:
        t2 = None  # the ranking head is fitted in closed form (fit_quality_ridge), not by gradient
    plan = TierPlan(t1, z.astype(np.float32), list(groups), epochs=epochs,
                    groups_per_batch=groups_per_batch, per_group=per_group, seed=seed, t2=t2, t4=t4)
    trainable = reg_heads or t2 is not None or t4 is not None or any(s.kind == "projection" for s in config.head_specs)
    if not trainable:  # a ridge ratings head alone: nothing to train by gradient
        return model.eval()
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=output_dir or tmp, num_train_epochs=1, per_device_train_batch_size=1,
                                 learning_rate=learning_rate, weight_decay=weight_decay, warmup_steps=max(1, len(plan) // 20),
                                 lr_scheduler_type="cosine", logging_steps=max(1, len(plan) // 10), save_strategy="no",
                                 eval_strategy="no", report_to=[], remove_unused_columns=False, use_cpu=True,
                                 dataloader_num_workers=0, disable_tqdm=True, seed=seed, data_seed=seed)
        trainer = TierTrainer(model=model, args=args, train_dataset=plan)
        trainer.remove_callback(PrinterCallback)  # it print()s every log dict to stdout (breaks --json)
        trainer.train()
        if log_history is not None:
            log_history.extend(trainer.state.log_history)
    with torch.no_grad():
        for name in reg_heads:
            head = model.heads[name]
            sd, mu = torch.as_tensor(r_std, dtype=head.weight.dtype), torch.as_tensor(r_mean, dtype=head.weight.dtype)
            head.weight.mul_(sd[:, None])
            head.bias.copy_(head.bias * sd + mu)
    return model.eval()
