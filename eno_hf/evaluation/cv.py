"""Repeated artist-grouped cross-validation of model candidates on cached per-recording features.

Protocol (what every headline figure of ``docs/quality.md`` comes from):

- Folds: ``n_repeats`` x ``n_folds`` artist-grouped folds over **all** recordings of the dataset (every
  split), stratified by the single-label head (quadrant): scikit-learn ``StratifiedGroupKFold(shuffle=True,
  random_state=seed + repeat)``. They are written to ``folds.json`` (ids, groups, fold index per repeat) and
  reused as long as the recording ids agree, so every candidate and baseline is scored on the same folds.
- Model selection only inside the training part of each outer fold: an inner ``GroupKFold`` (by artist)
  gives out-of-fold predictions for every grid value (L2 strength, epochs for the MLP); the value with the
  best inner score (head kind's ``metrics.SCORE_METRIC``: macro-F1 / macro ROC-AUC) is refitted on the whole
  training part. The inner out-of-fold logits at that value also fit the temperature (Guo et al. 2017,
  "On calibration of modern neural networks") applied to the outer test fold's quadrant probabilities.
- Metrics per outer test fold (``metrics.singlelabel_metrics`` / ``multilabel_metrics``): quadrant macro-F1 and
  accuracy, expected calibration error (15 equal-width bins of the top probability) before / after
  temperature scaling; moods ("descriptors") and genres macro ROC-AUC and PR-AUC (tags with both classes in
  the fold).
- Interval: mean over the ``n_folds * n_repeats`` folds with a 95 % interval from the corrected repeated
  k-fold t statistic (Nadeau & Bengio 2003, "Inference for the generalization error"; Bouckaert & Frank 2004):
  ``se = sqrt((1 / (k r) + n_test / n_train) * var)``, ``t`` with ``k r - 1`` degrees of freedom; the
  naive ``sd / sqrt(k r)`` is too narrow because training sets overlap. Differences to a reference candidate
  use the same statistic on the per-fold differences (paired: same folds).

Candidates (``Candidate``): ``prior`` (label prior baseline), ``ridge`` (standardised features -> ridge
regression on one-hot / 0-1 targets, solved in closed form for all strengths and tags at once (``ridge_path``);
quadrant scores -> softmax with the inner-fold temperature), ``linear`` (standardised features -> L2-regularised
logistic regression per head: softmax for single-label, independent sigmoids = one-vs-rest for multi-label,
full-batch L-BFGS in PyTorch), ``linear-segments`` (the same logistic probe trained on every 3-s window of
the training recordings, each with its recording's labels; a recording's logits are the mean of its windows'
logits) or ``mlp`` (the default model's trunk + heads: Linear -> ReLU -> dropout -> one
linear head per head, joint multitask loss, AdamW, the default's hidden size / dropout / weight decay,
epochs chosen on the inner folds; ``seeds`` > 1 averages that many seeds) or ``default`` (the config's own model:
LoRA-top ``tagger_ensemble`` + trunk + heads trained per fold on cached frozen prefixes with the config's recipe,
``evaluation.cv_finetune``). ``features`` name cached blocks
(``cv_features``): ``"msd-musicnn"`` = penultimate mean+max, ``"ensemble"`` = the default's frozen encoder
(``cv_finetune.frozen_features``), ``"msd-musicnn:tags"`` = its 50 tag
probabilities (as logits), ``"msd-musicnn:windows"`` = its window-level penultimate (``linear-segments``),
``"msd-musicnn:pool"`` = its pooled mid-level features (1506, mean over windows), ``"handcrafted"``.
``augment=k`` (``linear``, ``linear-segments``): the training part also holds ``k`` augmented copies of
every training recording (the ``{tagger}-aug{k}`` sets of ``cv_features``: gain, coloured noise, EQ,
pitch shift), each with its recording's labels; inner validation and outer test rows stay the
original recordings, so scores stay comparable with every other candidate. ``balanced``: class-balanced losses (single-label class weights
``n / (K n_k)``; multi-label ``pos_weight = n_neg / n_pos`` capped at 100, as ``training.train``).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from eno_hf.evaluation.metrics import MULTILABEL, SINGLELABEL, singlelabel_metrics

log = logging.getLogger(__name__)

METRICS: tuple[tuple[str, str, str], ...] = (
    ("quadrant", "f1_macro", "quadrant macro-F1"),
    ("quadrant", "accuracy", "quadrant accuracy"),
    ("quadrant", "ece", "quadrant ECE (raw)"),
    ("quadrant", "ece_calibrated", "quadrant ECE (temperature-scaled)"),
    ("descriptors", "roc_auc_macro", "moods macro ROC-AUC"),
    ("descriptors", "pr_auc_macro", "moods macro PR-AUC"),
    ("genres", "roc_auc_macro", "genres macro ROC-AUC"),
    ("genres", "pr_auc_macro", "genres macro PR-AUC"),
)
"""(head, metric key, label) rows of the report."""
RIDGE_ALPHAS = (0.01, 0.1, 1.0, 10.0)
"""Ridge strengths tried on the inner folds (``alpha * n_features``: features are standardised)."""
L2_GRID = (1e-2, 1e-1)
"""L2 strengths tried on the inner folds (penalty on the mean loss; features standardised)."""
MLP_EPOCH_GRID = (20, 60)
"""MLP epochs tried on the inner folds."""
POS_WEIGHT_CAP = 100.0
ECE_BINS = 15


@dataclass
class Candidate:
    """A model to cross-validate (see the module docstring)."""

    name: str
    model: Literal["prior", "ridge", "linear", "linear-segments", "mlp", "default"] = "ridge"
    features: list[str] = field(default_factory=list)
    balanced: bool = False
    seeds: int = 1
    augment: int = 0
    """Augmented copies per training recording (``linear``, ``linear-segments``; 0: none)."""
    refit: bool = False
    """``default``: refit on the whole training part at the chosen epoch (``cv_finetune``)."""
    val_inner: int | None = None
    """``default``: the validation part is ``1 / val_inner`` of the training artists; default: as the
    config's split (``cv_finetune.validation_inner``: 80/10/10 -> 9)."""
    description: str = ""


def augmented_block(block: str, copies: int) -> str:
    """The augmented counterpart of a feature block: ``"msd-musicnn:pool"`` -> ``"msd-musicnn-aug4:pool"``."""
    base, sep, part = block.partition(":")
    return f"{base}-aug{copies}{sep}{part}"


DEFAULT_ENSEMBLE = ["ensemble"]
"""The default's frozen encoder: ``cv_finetune.frozen_features`` (jamendo-fcn + msd-fcn + jamendo-musicnn of
``model.taggers``, pretrained tops on the cached prefixes)."""
ENSEMBLE_BLOCK = "ensemble"
CANDIDATES: dict[str, Candidate] = {c.name: c for c in [
    Candidate("label-prior", "prior", [], description="baseline: training label frequencies / class priors"),
    Candidate("fingerprint-mfcc-probe", "ridge", ["handcrafted"],
              description="baseline: ridge probe on fingerprint + MFCC statistics"),
    Candidate("msd-musicnn-probe", "ridge", ["msd-musicnn"],
              description="ridge probe on MSD-Musicnn penultimate mean+max"),
    Candidate("msd-musicnn-logreg", "linear", ["msd-musicnn"],
              description="baseline (the peer): logistic-regression probe on MSD-Musicnn penultimate mean+max"),
    Candidate("default", "default", [],
              description="the config's model (default: LoRA-top tagger_ensemble + trunk + heads), trained per fold "
                          "with its own recipe (evaluation.cv_finetune)"),
    Candidate("default-balanced", "default", [], balanced=True,
              description="the default + class-balanced quadrant cross-entropy"),
    Candidate("default-3seeds", "default", [], seeds=3, description="the default, average of 3 seeds"),
    Candidate("default-refit", "default", [], refit=True,
              description="the default, epoch chosen on the validation part, then refit on training + validation"),
    Candidate("default-val3", "default", [], val_inner=3,
              description="the default with a validation part of 1/3 of the training artists (before 2026-12-04, 4f9b4ea)"),
    Candidate("ensemble-mlp", "mlp", DEFAULT_ENSEMBLE,
              description="the default's encoder frozen + its MLP trunk/heads"),
    Candidate("ensemble-probe", "ridge", DEFAULT_ENSEMBLE,
              description="ridge probe on the default's frozen ensemble features"),
    Candidate("ensemble-logreg", "linear", DEFAULT_ENSEMBLE,
              description="logistic probe on the default's frozen ensemble features"),
    Candidate("ensemble+msd-probe", "ridge", [*DEFAULT_ENSEMBLE, "msd-musicnn"],
              description="ensemble + MSD Musicnn, ridge probe"),
    Candidate("ensemble+msd-logreg", "linear", [*DEFAULT_ENSEMBLE, "msd-musicnn"],
              description="ensemble + MSD Musicnn, logistic probe"),
    Candidate("ensemble+msd-mlp", "mlp", [*DEFAULT_ENSEMBLE, "msd-musicnn"],
              description="ensemble + MSD Musicnn, MLP trunk/heads"),
    Candidate("ensemble+msd+hc-probe", "ridge", [*DEFAULT_ENSEMBLE, "msd-musicnn", "handcrafted"],
              description="ensemble + MSD Musicnn + handcrafted, ridge probe"),
    Candidate("ensemble+msd-logreg-balanced", "linear", [*DEFAULT_ENSEMBLE, "msd-musicnn"], balanced=True,
              description="ensemble + MSD Musicnn, logistic probe, class-balanced losses"),
    Candidate("ensemble+msd-mlp-5seeds", "mlp", [*DEFAULT_ENSEMBLE, "msd-musicnn"], seeds=5,
              description="ensemble + MSD Musicnn, MLP, 5-seed average"),
    Candidate("msd-musicnn+hc-probe", "ridge", ["msd-musicnn", "handcrafted"],
              description="MSD Musicnn + handcrafted, ridge probe"),
    Candidate("msd-musicnn+tags-probe", "ridge", ["msd-musicnn", "msd-musicnn:tags"],
              description="MSD Musicnn penultimate + its 50-tag outputs, ridge probe"),
    Candidate("msd-musicnn+hc-logreg", "linear", ["msd-musicnn", "handcrafted"],
              description="MSD Musicnn + handcrafted (fingerprint, MFCC statistics), logistic probe"),
    Candidate("msd-musicnn+tags-logreg", "linear", ["msd-musicnn", "msd-musicnn:tags"],
              description="MSD Musicnn penultimate + its 50-tag outputs, logistic probe"),
    Candidate("msd-musicnn-segments-logreg", "linear-segments", ["msd-musicnn:windows"],
              description="MSD Musicnn, logistic probe trained on 3-s windows, window logits averaged per clip"),
    Candidate("msd-musicnn-aug4-logreg", "linear", ["msd-musicnn"], augment=4,
              description="the peer trained on its recordings + 4 augmented copies of each (gain, noise, EQ, pitch)"),
    Candidate("msd-musicnn-segments-aug4-logreg", "linear-segments", ["msd-musicnn:windows"], augment=4,
              description="MSD Musicnn 3-s window probe trained on the windows of the recordings + 4 augmented "
                          "copies, window logits averaged per clip"),
    Candidate("msd-musicnn-pool-logreg", "linear", ["msd-musicnn:pool"],
              description="logistic probe on MSD Musicnn's pooled mid-level features (1506, mean over windows)"),
    Candidate("msd-musicnn+pool-logreg", "linear", ["msd-musicnn", "msd-musicnn:pool"],
              description="MSD Musicnn penultimate mean+max + pooled mid-level features, logistic probe"),
    Candidate("msd-musicnn-pool-aug4-logreg", "linear", ["msd-musicnn:pool"], augment=4,
              description="pooled mid-level features, logistic probe, + 4 augmented copies per training recording"),
    Candidate("msd-musicnn-logreg-balanced", "linear", ["msd-musicnn"], balanced=True,
              description="MSD Musicnn, logistic probe, class-balanced losses"),
    Candidate("fingerprint-mfcc-logreg", "linear", ["handcrafted"],
              description="fingerprint + MFCC statistics, logistic-regression probe"),
    Candidate("msd-musicnn-mlp", "mlp", ["msd-musicnn"], description="MSD Musicnn, MLP trunk/heads"),
    Candidate("msd-musicnn+hc-mlp", "mlp", ["msd-musicnn", "handcrafted"],
              description="MSD Musicnn + handcrafted, MLP trunk/heads"),
    Candidate("msd-vgg-probe", "ridge", ["msd-vgg"], description="ridge probe on MSD-VGG penultimate mean+max"),
]}
BASELINES = ("label-prior", "fingerprint-mfcc-probe", "msd-musicnn-logreg")


# ----------------------------------------------------------------------------- data
@dataclass
class CVData:
    """Recording-level table: ``ids (n,)``, ``groups (n,)`` (artists), ``heads`` (``{name, kind, labels}``),
    ``labels`` (head -> ``(n,)`` int or ``(n, n_tags)`` int, -1 missing), ``blocks`` (feature block -> ``(n, d)``)."""

    ids: np.ndarray
    groups: np.ndarray
    heads: list[dict[str, Any]]
    labels: dict[str, np.ndarray]
    blocks: dict[str, np.ndarray]
    settings: Any = None
    """``Settings`` of the model to cross-validate (``model="default"`` candidates)."""
    prefix: dict[str, np.ndarray] | None = None
    """``cv_finetune.prefix_cache`` output (``model="default"`` candidates and the ``ensemble`` block)."""
    segments: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    """``"x:windows"`` -> ``(rows (m, d) float64, owner (m,) int)``: tagger x's window-level
    penultimate, ``owner`` the index into ``ids`` of each window (``linear-segments`` candidates)."""
    augmented: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    """``augmented_block`` name (``"x-aug4"``, ``"x-aug4:pool"``, ``"x-aug4:windows"``) -> ``(rows (m, d)
    float64, owner (m,) int)``: rows of augmented copies, ``owner`` the index into ``ids`` of the
    recording each was made from (training-only rows of ``augment`` candidates)."""

    def matrix(self, names: Sequence[str]) -> np.ndarray:
        """``(n, sum d)`` float64 concatenation of the blocks ``names`` (``"x:tags"``: logit of x's tags)."""
        parts = []
        for name in names:
            if name not in self.blocks:
                raise KeyError(f"feature block {name!r} not loaded (have {sorted(self.blocks)})")
            parts.append(self.blocks[name])
        return np.concatenate(parts, axis=1).astype(np.float64) if parts else np.zeros((len(self.ids), 0))

    def augmented_rows(self, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(rows (m, sum d) float64, owner (m,) int)``: the augmented blocks ``names`` side by side.

        Raises:
            KeyError: a block not loaded. ValueError: the blocks' rows belong to different copies.
        """
        missing = [n for n in names if n not in self.augmented]
        if missing or not names:
            raise KeyError(f"augmented blocks {missing or names} not loaded (have {sorted(self.augmented)})")
        owner = self.augmented[names[0]][1]
        if any(not np.array_equal(self.augmented[n][1], owner) for n in names):
            raise ValueError(f"augmented blocks {list(names)} hold different copies")
        return np.concatenate([self.augmented[n][0] for n in names], axis=1), owner


def load_cv_data(dataset: Any, dataset_path: str | Path, data_root: str | Path, heads: Sequence[Any],
                 feature_sets: Sequence[str], settings: Any = None, need_prefix: bool = False) -> CVData:
    """All recordings of ``dataset`` (every split) with labels and the cached feature sets (``cv_features``).

    With ``need_prefix`` or the ``ensemble`` block among ``feature_sets``, ``settings`` (its ``model``)
    gives the default model whose frozen prefixes are loaded or computed (``cv_finetune.prefix_cache``);
    the ``ensemble`` block is then ``cv_finetune.frozen_features``.

    Raises:
        ValueError: no single-label head (needed for stratification) or no ``group`` column.
    """
    from eno_hf.evaluation.baselines import recording_table, resolve_heads
    from eno_hf.evaluation.cv_features import load_or_compute

    first = next(iter(dataset.values()))
    rheads = resolve_heads(first.features, heads)
    if "group" not in first.column_names:
        raise ValueError("cross-validation needs a 'group' column (artist) in the dataset")
    ids, labels, groups = [], {h["name"]: [] for h in rheads}, {}
    for split in dataset.values():
        t = recording_table(split, rheads)
        ids += list(t.ids)
        for h in rheads:
            labels[h["name"]].append(t.labels[h["name"]])
        meta = split.select_columns(["recording_id", "group"]).to_dict()
        groups.update({str(r): str(g) for r, g in zip(meta["recording_id"], meta["group"])})
    order = np.argsort(np.asarray(ids, dtype=str))
    ids_arr = np.asarray(ids, dtype=str)[order]
    lab = {k: np.concatenate(v)[order] for k, v in labels.items()}
    from eno_hf.evaluation.cv_features import AUGMENTED

    sets = sorted({b.split(":")[0] for b in feature_sets} - {ENSEMBLE_BLOCK})
    require: dict[str, list[str]] = {}
    for b in feature_sets:
        base, _, part = b.partition(":")
        if part in ("windows", "pool"):
            require.setdefault(base, []).append(part)
    feats = load_or_compute(dataset, dataset_path, data_root, sets, rheads, require=require)
    segments: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    augmented: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    blocks: dict[str, np.ndarray] = {}
    for name, arrays in feats.items():
        if list(arrays["ids"]) != list(ids_arr):
            raise ValueError(f"feature set {name}: ids differ from the dataset's")
        row_blocks = {name: np.asarray(arrays["embedding"], dtype=np.float64)}
        if "pool" in arrays:
            row_blocks[f"{name}:pool"] = np.asarray(arrays["pool"], dtype=np.float64)
        if "tags" in arrays:
            p = np.clip(np.asarray(arrays["tags"], dtype=np.float64), 1e-6, 1 - 1e-6)
            row_blocks[f"{name}:tags"] = np.log(p / (1 - p))
        windows = None
        if "windows" in require.get(name, ()):
            windows = (np.asarray(arrays["windows"], dtype=np.float64), np.asarray(arrays["window_owner"], dtype=np.int64))
        if AUGMENTED.match(name):
            owner = np.asarray(arrays["copy_owner"], dtype=np.int64)
            augmented.update({k: (v, owner) for k, v in row_blocks.items()})
            if windows is not None:
                augmented[f"{name}:windows"] = windows
        else:
            blocks.update(row_blocks)
            if windows is not None:
                segments[f"{name}:windows"] = windows
    prefix = None
    if need_prefix or ENSEMBLE_BLOCK in feature_sets:
        from eno_hf.evaluation.cv_finetune import frozen_features, prefix_cache

        if settings is None:
            raise ValueError("the default model's prefixes need settings")
        prefix = prefix_cache(settings, dataset, dataset_path, data_root, rheads)
        if ENSEMBLE_BLOCK in feature_sets:
            blocks[ENSEMBLE_BLOCK] = frozen_features(settings, rheads, prefix, ids_arr)
    return CVData(ids_arr, np.asarray([groups[i] for i in ids_arr]), rheads, lab, blocks, settings, prefix,
                  segments, augmented)


# ----------------------------------------------------------------------------- folds
def make_folds(ids: Sequence[str], groups: Sequence[str], strata: np.ndarray, n_folds: int = 5,
               n_repeats: int = 3, seed: int = 0) -> np.ndarray:
    """``(n_repeats, n)`` int fold index of every recording: artist-grouped, stratified by ``strata``
    (scikit-learn ``StratifiedGroupKFold(n_folds, shuffle=True, random_state=seed + repeat)``).

    Raises:
        ValueError: fewer groups than folds.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    groups = np.asarray(groups)
    if len(set(groups.tolist())) < n_folds:
        raise ValueError(f"{len(set(groups.tolist()))} groups for {n_folds} folds")
    out = np.full((n_repeats, len(ids)), -1, dtype=np.int64)
    y = np.where(np.asarray(strata) < 0, 0, strata)
    for r in range(n_repeats):
        cv = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed + r)
        for f, (_, test) in enumerate(cv.split(np.zeros(len(ids)), y, groups)):
            out[r, test] = f
    return out


def load_or_make_folds(path: str | Path, ids: Sequence[str], groups: Sequence[str], strata: np.ndarray,
                       n_folds: int, n_repeats: int, seed: int) -> np.ndarray:
    """Folds from ``path`` if it holds the same ids, folds, repeats and seed; else made and written there."""
    path = Path(path)
    if path.is_file():
        saved = json.loads(path.read_text())
        if (saved.get("ids") == list(ids) and saved.get("n_folds") == n_folds
                and saved.get("n_repeats") == n_repeats and saved.get("seed") == seed):
            return np.asarray(saved["folds"], dtype=np.int64)
        log.warning("%s: saved folds do not match (ids/folds/repeats/seed); making new ones", path)
    folds = make_folds(ids, groups, strata, n_folds, n_repeats, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"n_folds": n_folds, "n_repeats": n_repeats, "seed": seed, "ids": list(ids),
                                "groups": list(map(str, groups)), "folds": folds.tolist()}))
    return folds


# ----------------------------------------------------------------------------- models
def _standardize(Xtr: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mu, sd = Xtr.mean(axis=0), Xtr.std(axis=0)
    sd = np.where(sd > 1e-8, sd, 1.0)
    return [(x - mu) / sd for x in (Xtr, *others)]


def _labelled(kind: str, y: np.ndarray) -> np.ndarray:
    return y >= 0 if kind == SINGLELABEL else ~np.all(y < 0, axis=1)


def _loss_weights(kind: str, y: np.ndarray, n_out: int, balanced: bool) -> Any:
    import torch

    if not balanced:
        return None
    if kind == SINGLELABEL:
        counts = np.bincount(y, minlength=n_out).astype(np.float64)
        w = np.where(counts > 0, len(y) / (n_out * np.maximum(counts, 1)), 0.0)
        return torch.tensor(w, dtype=torch.float32)
    pos = y.sum(axis=0).astype(np.float64)
    w = np.where(pos > 0, (len(y) - pos) / np.maximum(pos, 1), 1.0)
    return torch.tensor(np.minimum(w, POS_WEIGHT_CAP), dtype=torch.float32)


def _head_loss(kind: str, logits: Any, y: Any, weight: Any) -> Any:
    import torch.nn.functional as F

    if kind == SINGLELABEL:
        return F.cross_entropy(logits, y, weight=weight)
    return F.binary_cross_entropy_with_logits(logits, y, pos_weight=weight)


def fit_linear(X: np.ndarray, y: np.ndarray, kind: str, n_out: int, l2: float, balanced: bool = False,
               max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """L2-regularised logistic regression (softmax / per-tag sigmoid) by full-batch L-BFGS.

    Args:
        X: ``(n, d)`` standardised features. y: ``(n,)`` class ids or ``(n, n_out)`` 0/1 (labelled rows only).
        l2: penalty ``l2 * ||W||^2`` added to the mean loss (bias not penalised).

    Returns:
        ``(W (d, n_out), b (n_out,))`` float64.
    """
    import torch

    torch.manual_seed(0)
    Xt = torch.tensor(X, dtype=torch.float32)
    yt = torch.tensor(y, dtype=torch.long if kind == SINGLELABEL else torch.float32)
    W = torch.zeros(X.shape[1], n_out, requires_grad=True)
    b = torch.zeros(n_out, requires_grad=True)
    weight = _loss_weights(kind, y, n_out, balanced)
    opt = torch.optim.LBFGS([W, b], lr=1.0, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> Any:
        opt.zero_grad()
        loss = _head_loss(kind, Xt @ W + b, yt, weight) + l2 * W.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    return W.detach().double().numpy(), b.detach().double().numpy()


def ridge_path(X: np.ndarray, Y: np.ndarray, Z: np.ndarray, alphas: Sequence[float]) -> list[np.ndarray]:
    """Ridge regression (least squares + ``alpha * d * ||W||^2``, intercept unpenalised) for every
    ``alpha`` at the cost of one eigendecomposition of the ``(n, n)`` Gram matrix (dual form, n << d).

    Args:
        X: ``(n, d)`` standardised training features. Y: ``(n, m)`` targets (one-hot / 0-1).
        Z: ``(k, d)`` rows to predict (standardised like ``X``).

    Returns:
        one ``(k, m)`` score array per alpha.
    """
    y_mean = Y.mean(axis=0)
    x_mean = X.mean(axis=0)
    Xc, Zc = X - x_mean, Z - x_mean
    s, U = np.linalg.eigh(Xc @ Xc.T)
    s = np.maximum(s, 0.0)
    UtY = U.T @ (Y - y_mean)
    ZXt_U = (Zc @ Xc.T) @ U
    return [ZXt_U @ (UtY / (s + a * X.shape[1])[:, None]) + y_mean for a in alphas]


def fit_mlp(X: np.ndarray, labels: Mapping[str, np.ndarray], heads: Sequence[Mapping[str, Any]], epochs: int,
            seed: int, hidden_dim: int = 256, dropout: float = 0.5, lr: float = 1e-3, weight_decay: float = 0.05,
            batch_size: int = 32, balanced: bool = False) -> Any:
    """The default's trunk + heads (Linear -> ReLU -> dropout -> per-head Linear) trained jointly
    (sum of per-head mean losses over labelled rows) with AdamW. Returns a callable
    ``X (m, d) -> {head: logits (m, n_out)}`` (eval mode)."""
    import torch
    from torch import nn

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    trunk = nn.Sequential(nn.Linear(X.shape[1], hidden_dim), nn.ReLU(), nn.Dropout(dropout))
    outs = nn.ModuleDict({h["name"]: nn.Linear(hidden_dim, len(h["labels"])) for h in heads})
    params = [*trunk.parameters(), *outs.parameters()]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    Xt = torch.tensor(X, dtype=torch.float32)
    ys, masks, weights = {}, {}, {}
    for h in heads:
        y = labels[h["name"]]
        mask = _labelled(h["kind"], y)
        masks[h["name"]] = torch.tensor(mask)
        ys[h["name"]] = torch.tensor(np.where(y < 0, 0, y), dtype=torch.long if h["kind"] == SINGLELABEL else torch.float32)
        weights[h["name"]] = _loss_weights(h["kind"], y[mask], len(h["labels"]), balanced)
    n = len(X)
    for _ in range(epochs):
        trunk.train()
        for idx in torch.randperm(n, generator=gen).split(batch_size):
            hid = trunk(Xt[idx])
            loss = hid.new_zeros(())
            for h in heads:
                m = masks[h["name"]][idx]
                if m.any():
                    loss = loss + _head_loss(h["kind"], outs[h["name"]](hid[m]), ys[h["name"]][idx][m], weights[h["name"]])
            opt.zero_grad()
            loss.backward()
            opt.step()
    trunk.eval()

    def predict(Xn: np.ndarray) -> dict[str, np.ndarray]:
        with torch.no_grad():
            hid = trunk(torch.tensor(Xn, dtype=torch.float32))
            return {h["name"]: outs[h["name"]](hid).double().numpy() for h in heads}

    return predict


def _probs(kind: str, logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits / temperature
    if kind == SINGLELABEL:
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
    return 1.0 / (1.0 + np.exp(-z))


def macro_roc_auc(y: np.ndarray, scores: np.ndarray) -> float:
    """Macro ROC-AUC over the tags with both classes among the labelled rows (rows with a negative
    entry are dropped), by the rank-sum (Mann-Whitney) identity with average ranks for ties: equal to
    ``metrics.multilabel_metrics(...)["roc_auc_macro"]`` (scikit-learn) in one vectorised pass."""
    from scipy.stats import rankdata

    keep = ~np.any(y < 0, axis=1)
    y, scores = y[keep].astype(bool), scores[keep]
    pos = y.sum(axis=0)
    ok = (pos > 0) & (pos < len(y))
    if not ok.any():
        return float("nan")
    ranks = rankdata(scores[:, ok], axis=0)
    p, n = pos[ok], len(y) - pos[ok]
    auc = ((ranks * y[:, ok]).sum(axis=0) - p * (p + 1) / 2) / (p * n)
    return float(auc.mean())


def macro_average_precision(y: np.ndarray, scores: np.ndarray) -> float:
    """Macro PR-AUC (average precision, scikit-learn's step-wise definition over distinct thresholds)
    over the tags with both classes among the labelled rows; equal to ``multilabel_metrics(...)
    ["pr_auc_macro"]`` without its per-tag overhead."""
    keep = ~np.any(y < 0, axis=1)
    y, scores = y[keep].astype(bool), scores[keep]
    aps = []
    for j in range(y.shape[1]):
        yj = y[:, j]
        if not 0 < yj.sum() < len(yj):
            continue
        order = np.argsort(-scores[:, j], kind="mergesort")
        sj, yo = scores[order, j], yj[order]
        last = np.r_[np.flatnonzero(np.diff(sj) != 0), len(sj) - 1]
        tps = np.cumsum(yo)[last]
        precision = tps / (last + 1)
        recall = tps / tps[-1]
        aps.append(float(np.sum(np.diff(np.r_[0.0, recall]) * precision)))
    return float(np.mean(aps)) if aps else float("nan")


def _score(kind: str, y: np.ndarray, probs: np.ndarray) -> float:
    if kind == SINGLELABEL:
        v = singlelabel_metrics(y, probs)["f1_macro"]
    else:
        v = macro_roc_auc(y, probs)
    return -np.inf if v is None or not np.isfinite(v) else float(v)


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Temperature ``T`` minimising the NLL of ``softmax(logits / T)`` on labelled rows (bounded 1e-3 to 100)."""
    from scipy.optimize import minimize_scalar

    keep = y >= 0
    z, t = logits[keep], y[keep]
    if not len(t):
        return 1.0

    def nll(log_t: float) -> float:
        p = _probs(SINGLELABEL, z, math.exp(log_t))
        return float(-np.mean(np.log(np.clip(p[np.arange(len(t)), t], 1e-12, None))))

    return float(math.exp(minimize_scalar(nll, bounds=(math.log(1e-3), math.log(100.0)), method="bounded").x))


def expected_calibration_error(y: np.ndarray, probs: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """Top-label ECE (Guo et al. 2017): ``sum_b |B_b|/n * |acc(B_b) - conf(B_b)|`` over ``n_bins``
    equal-width confidence bins. ``y (n,)`` int (< 0 ignored), ``probs (n, K)``."""
    keep = y >= 0
    y, probs = y[keep], probs[keep]
    if not len(y):
        return float("nan")
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            ece += m.mean() * abs((pred[m] == y[m]).mean() - conf[m].mean())
    return float(ece)


def _inner_folds(groups: np.ndarray, n_inner: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import GroupKFold

    n_inner = min(n_inner, len(set(groups.tolist())))
    return list(GroupKFold(n_splits=n_inner).split(np.zeros(len(groups)), groups=groups))


def fit_predict(cand: Candidate, data: CVData, train: np.ndarray, test: np.ndarray, n_inner: int = 3,
                seed: int = 0, l2_grid: Sequence[float] = L2_GRID, epoch_grid: Sequence[int] = MLP_EPOCH_GRID
                ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Select on inner folds of ``train``, refit on ``train``, predict ``test``.

    Returns:
        ``(probs, info)``: head -> ``(len(test), n_out)`` probabilities (the single-label head
        temperature-scaled, its raw probabilities under ``"<head>:raw"``); ``info`` holds the chosen
        hyper-parameters and temperature.
    """
    heads = data.heads
    info: dict[str, Any] = {}
    if cand.model == "prior":
        out = {}
        for h in heads:
            y = data.labels[h["name"]][train]
            y = y[_labelled(h["kind"], y)]
            n = len(h["labels"])
            prior = (np.bincount(y, minlength=n) / max(len(y), 1)) if h["kind"] == SINGLELABEL else y.mean(axis=0)
            out[h["name"]] = np.broadcast_to(prior, (len(test), n)).copy()
            if h["kind"] == SINGLELABEL:
                out[f"{h['name']}:raw"] = out[h["name"]]
        return out, info
    if cand.model == "default":
        from eno_hf.evaluation.cv_finetune import fit_predict_default

        return fit_predict_default(cand, data, train, test, seed=seed)
    inner = _inner_folds(data.groups[train], n_inner)
    if cand.model == "linear-segments":
        return _fit_predict_linear_segments(cand, data, train, test, inner, l2_grid)
    X = data.matrix(cand.features)
    if cand.model == "ridge":
        return _fit_predict_ridge(data, X, train, test, inner)
    if cand.model == "linear":
        return _fit_predict_linear(cand, data, X, train, test, inner, l2_grid)
    return _fit_predict_mlp(cand, data, X, train, test, inner, seed, epoch_grid)


def _targets(kind: str, y: np.ndarray, n_out: int) -> np.ndarray:
    return np.eye(n_out)[y] if kind == SINGLELABEL else y.astype(np.float64)


def _fit_predict_ridge(data: CVData, X: np.ndarray, train: np.ndarray, test: np.ndarray,
                       inner: list[tuple[np.ndarray, np.ndarray]], alphas: Sequence[float] = RIDGE_ALPHAS
                       ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Ridge probe: alpha chosen on the inner folds per head; single-label scores -> softmax with a
    temperature fitted on the inner out-of-fold scores; multi-label scores -> sigmoid (ranking metrics
    are unchanged by it)."""
    out: dict[str, np.ndarray] = {}
    info: dict[str, Any] = {}
    for h in data.heads:
        kind, n_out, name = h["kind"], len(h["labels"]), h["name"]
        y_all = data.labels[name]
        oofs = [np.zeros((len(train), n_out)) for _ in alphas]
        for itr, iva in inner:
            tr_idx, va_idx = train[itr], train[iva]
            keep = _labelled(kind, y_all[tr_idx])
            Xtr, Xva = _standardize(X[tr_idx][keep], X[va_idx])
            for o, pred in zip(oofs, ridge_path(Xtr, _targets(kind, y_all[tr_idx][keep], n_out), Xva, alphas)):
                o[iva] = pred
        temps = [fit_temperature(o, y_all[train]) if kind == SINGLELABEL else 1.0 for o in oofs]
        scores = [_score(kind, y_all[train], _probs(kind, o, t)) for o, t in zip(oofs, temps)]
        j = int(np.argmax(scores))
        keep = _labelled(kind, y_all[train])
        Xtr, Xte = _standardize(X[train][keep], X[test])
        logits = ridge_path(Xtr, _targets(kind, y_all[train][keep], n_out), Xte, [alphas[j]])[0]
        info[f"{name}_alpha"] = alphas[j]
        if kind == SINGLELABEL:
            info[f"{name}_temperature"] = temps[j]
            out[f"{name}:raw"] = _probs(kind, logits)
            out[name] = _probs(kind, logits, temps[j])
        else:
            out[name] = _probs(kind, logits)
    return out, info


def _fit_predict_linear(cand: Candidate, data: CVData, X: np.ndarray, train: np.ndarray, test: np.ndarray,
                        inner: list[tuple[np.ndarray, np.ndarray]], l2_grid: Sequence[float]
                        ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Logistic probe on the recording-level features ``X`` (+ the augmented copies of the training
    recordings with ``cand.augment``)."""
    A, a_owner = (data.augmented_rows([augmented_block(b, cand.augment) for b in cand.features]) if cand.augment
                  else (np.zeros((0, X.shape[1])), np.zeros(0, dtype=np.int64)))

    def fit_pred(tr: np.ndarray, ev: np.ndarray, y_all: np.ndarray, kind: str, n_out: int, l2: float) -> np.ndarray:
        tr = tr[_labelled(kind, y_all[tr])]
        r_aug, p_aug = _window_rows(a_owner, tr)
        Xtr, Xev = _standardize(np.concatenate([X[tr], A[r_aug]]), X[ev])
        W, b = fit_linear(Xtr, np.concatenate([y_all[tr], y_all[tr][p_aug]]), kind, n_out, l2, cand.balanced)
        return Xev @ W + b

    return _select_linear(data, fit_pred, train, test, inner, l2_grid)


def _select_linear(data: CVData, fit_pred: Any, train: np.ndarray, test: np.ndarray,
                   inner: list[tuple[np.ndarray, np.ndarray]], l2_grid: Sequence[float]
                   ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Per head: the L2 strength with the best inner out-of-fold score, refitted on ``train``;
    single-label probabilities temperature-scaled on the inner out-of-fold logits.
    ``fit_pred(train_idx, eval_idx, y_all, kind, n_out, l2) -> (len(eval_idx), n_out)`` logits."""
    out: dict[str, np.ndarray] = {}
    info: dict[str, Any] = {}
    for h in data.heads:
        kind, n_out, name = h["kind"], len(h["labels"]), h["name"]
        y_all = data.labels[name]
        best = (-np.inf, l2_grid[0], None)
        for l2 in l2_grid:
            oof = np.zeros((len(train), n_out))
            for itr, iva in inner:
                oof[iva] = fit_pred(train[itr], train[iva], y_all, kind, n_out, l2)
            score = _score(kind, y_all[train], _probs(kind, oof))
            if best[2] is None or score > best[0]:
                best = (score, l2, oof)
        _, l2, oof = best
        logits = fit_pred(train, test, y_all, kind, n_out, l2)
        info[f"{name}_l2"] = l2
        if kind == SINGLELABEL:
            t = fit_temperature(oof, y_all[train])
            info[f"{name}_temperature"] = t
            out[f"{name}:raw"] = _probs(kind, logits)
            out[name] = _probs(kind, logits, t)
        else:
            out[name] = _probs(kind, logits)
    return out, info


def _window_rows(owner: np.ndarray, recordings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the windows of ``recordings`` (indices into ``ids``) and, per row, the position of
    its recording in ``recordings``."""
    pos_of = np.full(max(int(owner.max(initial=-1)), int(recordings.max(initial=-1))) + 1, -1)
    pos_of[recordings] = np.arange(len(recordings))
    rows = np.flatnonzero(pos_of[owner] >= 0)
    return rows, pos_of[owner[rows]]


def _clip_mean(window_logits: np.ndarray, pos: np.ndarray, n: int) -> np.ndarray:
    """``(m, n_out)`` window logits -> ``(n, n_out)`` per-recording means (``pos`` in ``range(n)``)."""
    sums = np.zeros((n, window_logits.shape[1]))
    np.add.at(sums, pos, window_logits)
    return sums / np.maximum(np.bincount(pos, minlength=n), 1)[:, None]


def _fit_predict_linear_segments(cand: Candidate, data: CVData, train: np.ndarray, test: np.ndarray,
                                 inner: list[tuple[np.ndarray, np.ndarray]], l2_grid: Sequence[float]
                                 ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Segment-level logistic probe: every window of a training recording is a training row with
    the recording's labels; a recording's logits are the mean of its windows' logits (segment
    predictions averaged per clip). L2 chosen and temperature fitted on the inner folds (by
    recording) as ``linear``. Uses the one ``"x:windows"`` block of ``cand.features``; with
    ``cand.augment`` the windows of the training recordings' augmented copies are training rows too."""
    if len(cand.features) != 1 or cand.features[0] not in data.segments:
        raise KeyError(f"{cand.name}: needs one window-level block (have {sorted(data.segments)})")
    W_all, owner = data.segments[cand.features[0]]
    A, a_owner = (data.augmented_rows([augmented_block(cand.features[0], cand.augment)]) if cand.augment
                  else (np.zeros((0, W_all.shape[1])), np.zeros(0, dtype=np.int64)))

    def fit_pred(tr: np.ndarray, ev: np.ndarray, y_all: np.ndarray, kind: str, n_out: int, l2: float) -> np.ndarray:
        tr = tr[_labelled(kind, y_all[tr])]
        r_tr, p_tr = _window_rows(owner, tr)
        r_aug, p_aug = _window_rows(a_owner, tr)
        r_ev, p_ev = _window_rows(owner, ev)
        Xtr, Xev = _standardize(np.concatenate([W_all[r_tr], A[r_aug]]), W_all[r_ev])
        W, b = fit_linear(Xtr, y_all[tr][np.concatenate([p_tr, p_aug])], kind, n_out, l2, cand.balanced)
        return _clip_mean(Xev @ W + b, p_ev, len(ev))

    return _select_linear(data, fit_pred, train, test, inner, l2_grid)


def _fit_predict_mlp(cand: Candidate, data: CVData, X: np.ndarray, train: np.ndarray, test: np.ndarray,
                     inner: list[tuple[np.ndarray, np.ndarray]], seed: int, epoch_grid: Sequence[int]
                     ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    heads = data.heads

    def run(tr_idx: np.ndarray, ev_idx: np.ndarray, epochs: int) -> dict[str, np.ndarray]:
        Xtr, Xev = _standardize(X[tr_idx], X[ev_idx])
        labels = {h["name"]: data.labels[h["name"]][tr_idx] for h in heads}
        logits: dict[str, np.ndarray] = {}
        for s in range(cand.seeds):  # seed ensemble: average the probabilities (logits of the mean)
            pred = fit_mlp(Xtr, labels, heads, epochs, seed=seed * 1000 + s, balanced=cand.balanced)(Xev)
            for k, v in pred.items():
                logits[k] = logits.get(k, 0.0) + v / cand.seeds
        return logits

    best: tuple[float, int, dict[str, np.ndarray] | None] = (-np.inf, epoch_grid[0], None)
    for epochs in epoch_grid:
        oof = {h["name"]: np.zeros((len(train), len(h["labels"]))) for h in heads}
        for itr, iva in inner:
            pred = run(train[itr], train[iva], epochs)
            for k in oof:
                oof[k][iva] = pred[k]
        score = float(np.mean([_score(h["kind"], data.labels[h["name"]][train], _probs(h["kind"], oof[h["name"]]))
                               for h in heads]))
        if best[2] is None or score > best[0]:
            best = (score, epochs, oof)
    _, epochs, oof = best
    logits = run(train, test, epochs)
    out: dict[str, np.ndarray] = {}
    info: dict[str, Any] = {"epochs": epochs}
    for h in heads:
        name, kind = h["name"], h["kind"]
        if kind == SINGLELABEL:
            t = fit_temperature(oof[name], data.labels[name][train])
            info[f"{name}_temperature"] = t
            out[f"{name}:raw"] = _probs(kind, logits[name])
            out[name] = _probs(kind, logits[name], t)
        else:
            out[name] = _probs(kind, logits[name])
    return out, info


# ----------------------------------------------------------------------------- metrics and intervals
def fold_metrics(data: CVData, test: np.ndarray, probs: Mapping[str, np.ndarray]) -> dict[str, float]:
    """``"head/metric"`` -> value on one test fold (see ``METRICS``)."""
    out: dict[str, float] = {}
    for h in data.heads:
        name, y = h["name"], data.labels[h["name"]][test]
        if h["kind"] == SINGLELABEL:
            m = singlelabel_metrics(y, probs[name])
            out[f"{name}/f1_macro"], out[f"{name}/accuracy"] = m["f1_macro"], m["accuracy"]
            out[f"{name}/ece"] = expected_calibration_error(y, probs.get(f"{name}:raw", probs[name]))
            out[f"{name}/ece_calibrated"] = expected_calibration_error(y, probs[name])
        elif h["kind"] == MULTILABEL:
            # = multilabel_metrics(...)["roc_auc_macro" / "pr_auc_macro"] (tested), vectorised
            out[f"{name}/roc_auc_macro"] = macro_roc_auc(y, probs[name])
            out[f"{name}/pr_auc_macro"] = macro_average_precision(y, probs[name])
    return out


def corrected_interval(values: Sequence[float], n_folds: int, confidence: float = 0.95) -> dict[str, float]:
    """Mean and ``confidence`` interval of repeated k-fold scores with the Nadeau-Bengio correction
    (``se = sqrt((1/n + 1/(k - 1)) var)``, ``n`` = number of fold scores, test/train ratio ``1/(k-1)``)."""
    from scipy import stats

    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if len(v) < 2:
        mean = float(v.mean()) if len(v) else float("nan")
        return {"mean": mean, "ci_low": float("nan"), "ci_high": float("nan"), "n": int(len(v))}
    se = math.sqrt((1.0 / len(v) + 1.0 / (n_folds - 1)) * v.var(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, len(v) - 1)) * se
    return {"mean": float(v.mean()), "ci_low": float(v.mean() - half), "ci_high": float(v.mean() + half),
            "half_width": half, "n": int(len(v))}


def run_cv(data: CVData, candidates: Sequence[Candidate], folds: np.ndarray, n_inner: int = 3,
           reference: str | None = "msd-musicnn-logreg", l2_grid: Sequence[float] = L2_GRID,
           epoch_grid: Sequence[int] = MLP_EPOCH_GRID) -> dict[str, Any]:
    """Cross-validate ``candidates`` on ``folds`` (``(n_repeats, n)``; see the module docstring).

    Returns:
        ``{"candidates": {name: {"description", "metrics": {"head/metric": interval + "folds"},
        "vs_reference": {...}, "info": [...]}}, "n_recordings", "n_folds", "n_repeats", "reference"}``.
    """
    n_repeats = folds.shape[0]
    n_folds = int(folds.max()) + 1
    results: dict[str, Any] = {}
    for cand in candidates:
        rows, infos = [], []
        for r in range(n_repeats):
            for f in range(n_folds):
                test = np.flatnonzero(folds[r] == f)
                train = np.flatnonzero(folds[r] != f)
                probs, info = fit_predict(cand, data, train, test, n_inner=n_inner, seed=r * n_folds + f,
                                          l2_grid=l2_grid, epoch_grid=epoch_grid)
                rows.append(fold_metrics(data, test, probs))
                infos.append(info)
                log.info("cv %s: repeat %d fold %d done (%s)", cand.name, r, f,
                         {k: round(v, 3) for k, v in rows[-1].items() if k.endswith(("f1_macro", "roc_auc_macro"))})
        keys = list(rows[0])
        results[cand.name] = {
            "description": cand.description, "spec": asdict(cand),
            "metrics": {k: {**corrected_interval([row[k] for row in rows], n_folds), "folds": [row[k] for row in rows]}
                        for k in keys},
            "info": infos,
        }
        log.info("cv %s: %s", cand.name, {k: round(v["mean"], 3) for k, v in results[cand.name]["metrics"].items()})
    report = {"n_recordings": int(folds.shape[1]), "n_folds": n_folds, "n_repeats": n_repeats,
              "reference": reference, "candidates": results}
    return add_reference_differences(report, reference)


def add_reference_differences(report: dict[str, Any], reference: str | None) -> dict[str, Any]:
    """(Re)compute every candidate's ``vs_reference`` from the stored per-fold values (same folds)."""
    cands = report["candidates"]
    report["reference"] = reference
    if reference not in cands:
        return report
    ref = cands[reference]["metrics"]
    for c in cands.values():
        c["vs_reference"] = {k: corrected_interval([a - b for a, b in zip(v["folds"], ref[k]["folds"])], report["n_folds"])
                             for k, v in c["metrics"].items() if k in ref}
    return report


def combine_reports(paths: Sequence[str | Path], reference: str | None = "msd-musicnn-logreg") -> dict[str, Any]:
    """Merge ``cv_report.json`` files of runs on the **same folds** (e.g. candidates run in parallel
    processes) into one report with differences to ``reference``.

    Raises:
        ValueError: the runs used different folds (recordings, folds or repeats differ).
    """
    reports = [json.loads(Path(p).read_text()) for p in paths]
    keys = {(r["n_recordings"], r["n_folds"], r["n_repeats"], r.get("folds_file")) for r in reports}
    if len(keys) != 1:
        raise ValueError(f"cannot combine CV reports made on different folds: {sorted(map(str, keys))}")
    merged = {k: v for k, v in reports[0].items() if k != "candidates"}
    merged["candidates"] = {n: c for r in reports for n, c in r["candidates"].items()}
    return add_reference_differences(merged, reference)


def report_dir(data_root: str | Path, dataset: str, version: str) -> Path:
    """``{data_root}/cv/{dataset}-{version}``: where ``eno cv`` writes a dataset version's folds and
    ``cv_report.json`` / ``.md`` by default (the model card reads the report from there)."""
    return Path(data_root) / "cv" / f"{dataset}-{version}"


def markdown_table(report: Mapping[str, Any]) -> str:
    """The report as a markdown table: one row per candidate, ``mean [low, high]`` per metric, and a
    second table of differences to the reference candidate."""
    cands = report["candidates"]
    keys = [(f"{h}/{m}", label) for h, m, label in METRICS if any(f"{h}/{m}" in c["metrics"] for c in cands.values())]

    def cell(iv: Mapping[str, Any] | None) -> str:
        if not iv or not np.isfinite(iv.get("mean", float("nan"))):
            return "–"
        if not np.isfinite(iv.get("ci_low", float("nan"))):
            return f"{iv['mean']:.3f}"
        return f"{iv['mean']:.3f} [{iv['ci_low']:.3f}, {iv['ci_high']:.3f}]"

    head = "| candidate | " + " | ".join(label for _, label in keys) + " |"
    sep = "|---" * (len(keys) + 1) + "|"
    lines = [f"{report['n_folds']}-fold x {report['n_repeats']} repeated artist-grouped CV on "
             f"{report['n_recordings']} recordings; mean [95 % corrected-t interval] over folds.", "", head, sep]
    lines += [f"| {n} | " + " | ".join(cell(c["metrics"].get(k)) for k, _ in keys) + " |" for n, c in cands.items()]
    ref = report.get("reference")
    if ref and any("vs_reference" in c for c in cands.values()):
        lines += ["", f"Difference to `{ref}` (paired, same folds):", "", head, sep]
        lines += [f"| {n} | " + " | ".join(cell(c.get("vs_reference", {}).get(k)) for k, _ in keys) + " |"
                  for n, c in cands.items() if n != ref]
    return "\n".join(lines) + "\n"


def write_cv_report(report: Mapping[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``cv_report.json`` and ``cv_report.md`` to ``out_dir``; returns both paths."""
    from eno_hf.evaluation.report import write_json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    js = write_json(out / "cv_report.json", report)
    md = out / "cv_report.md"
    md.write_text(markdown_table(report))
    return js, md


def cross_validate(settings: Any, candidates: Sequence[str] | None = None, n_folds: int = 5, n_repeats: int = 3,
                   seed: int = 0, n_inner: int = 3, out_dir: str | Path | None = None,
                   reference: str = "msd-musicnn-logreg", folds_dir: str | Path | None = None,
                   dataset_path: str | Path | None = None) -> dict[str, Any]:
    """Build (or reuse) the dataset of ``settings``, cache the features the candidates need, run
    ``run_cv`` on fixed saved folds and write the report.

    Args:
        settings: ``eno_hf.config.Settings``.
        candidates: names in ``CANDIDATES`` (default: all).
        out_dir: default ``{data_root}/cv/{dataset}-{version}``.
        folds_dir: where ``folds-k{k}-r{r}-s{seed}.json`` is kept (default ``{data_root}/cv/{dataset}-{version}``),
            so runs with other ``out_dir`` s share the folds.
        dataset_path: a saved dataset to use as is (default: ``build_dataset(settings)``, which
            hashes every source file to find the cached version).

    Returns:
        the report dict, with ``"json"`` / ``"markdown"`` paths added.

    Raises:
        KeyError: unknown candidate name.
    """
    from datasets import load_from_disk

    from eno_hf.data.build import build_dataset

    names = list(candidates) if candidates else list(CANDIDATES)
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown:
        raise KeyError(f"unknown CV candidates {unknown}; known: {sorted(CANDIDATES)}")
    cands = [CANDIDATES[n] for n in names]
    ds_path = Path(dataset_path) if dataset_path else Path(build_dataset(settings, progress=False).path)
    dataset = load_from_disk(str(ds_path))
    blocks = sorted({b for c in cands for b in c.features}
                    | {augmented_block(b, c.augment) for c in cands if c.augment for b in c.features})
    data = load_cv_data(dataset, ds_path, settings.paths.data_root, settings.model.heads, blocks, settings=settings,
                        need_prefix=any(c.model == "default" for c in cands))
    default_dir = report_dir(settings.paths.data_root, ds_path.parent.name, ds_path.name)
    out = Path(out_dir) if out_dir else default_dir
    single = next((h["name"] for h in data.heads if h["kind"] == SINGLELABEL), None)
    strata = data.labels[single] if single else np.zeros(len(data.ids), dtype=np.int64)
    folds = load_or_make_folds(Path(folds_dir or default_dir) / f"folds-k{n_folds}-r{n_repeats}-s{seed}.json", list(data.ids), list(data.groups),
                               strata, n_folds, n_repeats, seed)
    report = run_cv(data, cands, folds, n_inner=n_inner, reference=reference)
    report["dataset"] = str(ds_path)
    report["folds_file"] = f"folds-k{n_folds}-r{n_repeats}-s{seed}.json"
    js, md = write_cv_report(report, out)
    report["json"], report["markdown"] = str(js), str(md)
    return report
