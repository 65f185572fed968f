"""Cross-validation of the *default* model itself: LoRA on the taggers' top layers + trunk + heads.

The default of ``configs/small.yaml`` is a ``tagger_ensemble`` fine-tuned with LoRA on the top layer
of every sub-tagger (``model.finetune=lora``); ``eno_hf.training.train`` trains it on the cached
frozen bottoms (``TaggerEnsembleEncoder.frozen_prefix``) and only runs the trainable tops
(``from_prefix``). This module does the same inside every outer fold of ``evaluation.cv``:

1. ``prefix_cache``: the frozen prefix of every inference window of every recording (the model's own
   ``split_windows`` on each segment's waveform), computed ONCE per dataset version and model
   (taggers, chunking) and stored in ``{data_root}/cache/cv-features/{dataset}-{version}/prefix-{key}.npz``
   (``features (n_windows, prefix_dim) float32``, ``ids`` = recording id of each window).
   ``frozen_features`` turns it into the per-recording frozen ensemble features (the un-adapted tops,
   mean over the recording's windows), the ``ensemble`` block of ``evaluation.cv``.
2. ``fit_predict_default``: per outer fold a fresh model (pretrained taggers, new LoRA adapters,
   trunk and heads: ``models.factory.create_model`` + ``models.lora.apply_finetune`` with the
   config's ``model`` section), the encoder's standardization set from the training part, then the
   default's recipe: AdamW (``train.learning_rate``, ``train.weight_decay``), batch ``train.batch_size``,
   linear decay with ``train.warmup_ratio`` warm-up (the ``transformers.Trainer`` schedule), cross-entropy
   for the quadrant and BCE with ``pos_weight = n_neg / n_pos`` (capped at 100, as ``training.train``)
   for the tags, up to ``train.epochs`` epochs; the epoch is picked as ``eno train`` does, by the
   validation score (mean over heads of macro-F1 / macro ROC-AUC) with early stopping
   (``train.early_stopping_patience``), on an artist-grouped validation part of the outer training
   part with the config's validation share (``validation_inner``: 1/9 of its artists for the 80/10/10
   split; the default trains on the rest, like ``eno train`` on its train/validation split; before
   2026-12-04 (4f9b4ea) it was 1/3, which trained the CV models on less data than the real one). The quadrant temperature (Guo et al. 2017) is fitted on that validation part. Window
   probabilities are averaged per recording (as ``predict_dataset``).

``candidate`` options (``evaluation.cv.Candidate``): ``seeds`` (average of several fresh models),
``balanced`` (class weights ``n / (K n_k)`` on the quadrant cross-entropy too), ``refit`` (after the
epoch choice, a fresh model trained on the whole outer training part, validation included, with the
same learning-rate schedule, stopped after the chosen epoch; the quadrant temperature stays the one
fitted on the first model's validation predictions).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

PREFIX_PREFIX = "prefix"


def _model(settings: Any, heads: Sequence[Mapping[str, Any]]) -> Any:
    """A fresh default model for the CV heads with LoRA injected (``apply_finetune(settings.model)``)."""
    from eno_hf.models.factory import create_model
    from eno_hf.models.lora import apply_finetune

    vocab = {h["name"]: list(h["labels"]) for h in heads}
    return apply_finetune(create_model(settings, vocab), settings.model)


def prefix_key(settings: Any) -> str:
    """Cache key of the prefix features: taggers, chunking and sample rate of ``settings.model``."""
    from eno_hf.utils.io import json_hash

    m = settings.model
    return json_hash({"encoder": m.encoder, "taggers": list(m.taggers), "chunk_s": m.chunk_s,
                      "sample_rate": settings.dataset.audio.sample_rate}, 12)


def encode_prefixes(model: Any, split: Any, batch_rows: int | None = None, desc: str = "prefix features"
                    ) -> tuple[np.ndarray, np.ndarray]:
    """``frozen_prefix`` of every used inference window of every row of ``split``
    (``eno_hf.training.cache.encode_split`` with ``prefix=True``: shared out to worker processes on
    the CPU, progress shown under ``desc``).

    Returns:
        ``(features (n_windows, prefix_dim) float32, recording ids (n_windows,) str)``.
    """
    from eno_hf.training.cache import encode_split

    feats, rows = encode_split(model, split, batch_rows=batch_rows, desc=desc, prefix=True)
    ids = np.asarray([str(r) for r in split["recording_id"]], dtype=str)
    return feats, (ids[rows] if len(rows) else np.zeros(0, dtype=str))


def prefix_cache(settings: Any, dataset: Any, dataset_path: str | Path, data_root: str | Path,
                 heads: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """The frozen prefixes of all windows of all splits of ``dataset``, from the cache or computed
    and written there (see the module docstring).

    Returns:
        ``{"features": (n_windows, prefix_dim) float32, "ids": (n_windows,) str}``.

    Raises:
        FileNotFoundError: tagger weights absent.
    """
    from eno_hf.evaluation.cv_features import cache_dir

    path = cache_dir(data_root, dataset_path) / f"{PREFIX_PREFIX}-{prefix_key(settings)}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            return {"features": z["features"], "ids": z["ids"]}
    path.parent.mkdir(parents=True, exist_ok=True)
    model = _model(settings, heads)
    parts, ids = [], []
    for name, split in dataset.items():
        log.info("prefix features of split %s (%d rows) -> %s", name, len(split), path)
        f, r = encode_prefixes(model, split, desc=f"prefix features ({name})")
        parts.append(f)
        ids.append(r)
    out = {"features": np.concatenate(parts), "ids": np.concatenate(ids)}
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **out)
    tmp.replace(path)
    return out


def window_index(prefix_ids: np.ndarray, recording_ids: np.ndarray) -> np.ndarray:
    """Index into ``recording_ids`` of every prefix window. Raises ``ValueError`` on unknown ids."""
    pos = {r: i for i, r in enumerate(recording_ids.tolist())}
    missing = sorted(set(prefix_ids.tolist()) - set(pos))
    if missing:
        raise ValueError(f"prefix cache holds {len(missing)} recordings not in the CV data (e.g. {missing[:3]})")
    return np.asarray([pos[r] for r in prefix_ids.tolist()], dtype=np.int64)


def frozen_features(settings: Any, heads: Sequence[Mapping[str, Any]], prefix: Mapping[str, np.ndarray],
                    recording_ids: np.ndarray) -> np.ndarray:
    """Per-recording frozen ensemble features: the pretrained (un-adapted) tops on the cached prefixes
    (``raw_from_prefix``, mean+max over each tagger's windows), averaged over the recording's windows.

    Returns:
        ``(len(recording_ids), output_dim)`` float64 (rows in ``recording_ids`` order).
    """
    import torch

    model = _model(settings, heads)
    encoder = model.encoder.eval()
    with torch.no_grad():
        raw = torch.cat([encoder.raw_from_prefix(p, model.window_samples)
                         for p in torch.from_numpy(prefix["features"]).split(64)]).double().numpy()
    idx = window_index(prefix["ids"], recording_ids)
    sums = np.zeros((len(recording_ids), raw.shape[1]))
    np.add.at(sums, idx, raw)
    counts = np.bincount(idx, minlength=len(recording_ids))
    if (counts == 0).any():
        raise ValueError(f"{int((counts == 0).sum())} recordings have no prefix window")
    return sums / counts[:, None]


def _recording_mean(values: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """Mean of window rows per recording (``owner``: 0..n-1 position of each window's recording)."""
    sums = np.zeros((n, values.shape[1]))
    np.add.at(sums, owner, values)
    return sums / np.maximum(np.bincount(owner, minlength=n), 1)[:, None]


def _score(heads: Sequence[Mapping[str, Any]], labels: Mapping[str, np.ndarray], probs: Mapping[str, np.ndarray]) -> float:
    """``eno train``'s validation score: mean over heads of macro-F1 (single-label) / macro ROC-AUC."""
    from eno_hf.evaluation import cv

    vals = [cv._score(h["kind"], labels[h["name"]], probs[h["name"]]) for h in heads]
    vals = [v for v in vals if np.isfinite(v)]
    return float(np.mean(vals)) if vals else 0.0


def train_default(settings: Any, heads: Sequence[Mapping[str, Any]], prefix: np.ndarray,
                  labels: Mapping[str, np.ndarray], val_prefix: np.ndarray, val_owner: np.ndarray,
                  val_labels: Mapping[str, np.ndarray] | None, seed: int, balanced: bool = False,
                  max_epochs: int | None = None, stop_after: int | None = None) -> tuple[Any, dict[str, Any]]:
    """Train one fresh default model on window prefixes (see the module docstring).

    Args:
        prefix: ``(n_windows, prefix_dim)`` float32 training windows; ``labels``: head -> per-window
            labels (``(n,)`` int / ``(n, n_tags)`` 0-1, -1 = missing).
        val_prefix, val_owner, val_labels: validation windows, the 0..m-1 recording of each window,
            recording-level labels (for the epoch choice / early stopping); ``val_labels=None``: no
            validation, the model after ``stop_after`` epochs is returned (the refit).
        max_epochs: default ``settings.train.epochs`` (the length of the learning-rate schedule).
        stop_after: stop after this many epochs (default ``max_epochs``), schedule unchanged.

    Returns:
        ``(predict, info)``: ``predict(prefix, owner, n) -> head -> (n, n_out)`` recording-level
        probabilities (window mean; single-label also ``"<head>:logits"`` = log of the mean
        probabilities), ``info`` = ``{"best_epoch", "epochs_run", "val_score"}``.
    """
    import torch
    import torch.nn.functional as F

    from eno_hf.evaluation.cv import POS_WEIGHT_CAP, _labelled, _loss_weights
    from eno_hf.evaluation.metrics import SINGLELABEL

    t = settings.train
    epochs = int(max_epochs or t.epochs)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = _model(settings, heads)
    encoder, n_samples = model.encoder, model.window_samples
    X = torch.from_numpy(np.ascontiguousarray(prefix, dtype=np.float32))
    with torch.no_grad():
        encoder.eval()
        raw = torch.cat([encoder.raw_from_prefix(p, n_samples) for p in X.split(64)])
        encoder.set_standardization(raw.mean(dim=0), raw.std(dim=0, unbiased=False))
    ys, masks, weights = {}, {}, {}
    for h in heads:
        y = labels[h["name"]]
        mask = _labelled(h["kind"], y)
        masks[h["name"]] = torch.from_numpy(mask)
        ys[h["name"]] = torch.from_numpy(np.where(y < 0, 0, y)).long() if h["kind"] == SINGLELABEL \
            else torch.from_numpy(np.where(y < 0, 0, y)).float()
        if h["kind"] == SINGLELABEL:
            weights[h["name"]] = _loss_weights(h["kind"], y[mask], len(h["labels"]), True) if balanced else None
        else:  # the default's pos_weight (training.train.compute_pos_weight): always on
            pos = y[mask].sum(axis=0).astype(np.float64)
            w = np.where(pos > 0, (mask.sum() - pos) / np.maximum(pos, 1), 1.0)
            weights[h["name"]] = torch.tensor(np.minimum(w, POS_WEIGHT_CAP), dtype=torch.float32)
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for n, p in model.named_parameters() if p.requires_grad and not n.endswith("bias")]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and n.endswith("bias")]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": t.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=t.learning_rate)
    steps_per_epoch = math.ceil(len(X) / t.batch_size)
    total = epochs * steps_per_epoch
    warm = int(math.ceil(t.warmup_ratio * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / max(1, warm) if s < warm else max(0.0, (total - s) / max(1, total - warm)))

    def set_train() -> None:
        model.train()
        for m in encoder.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.eval()

    def predict(P: np.ndarray, owner: np.ndarray, n: int) -> dict[str, np.ndarray]:
        model.eval()
        outs: dict[str, list[np.ndarray]] = {h["name"]: [] for h in heads}
        with torch.no_grad():
            for part in torch.from_numpy(np.ascontiguousarray(P, dtype=np.float32)).split(64):
                hid = model.trunk(encoder.from_prefix(part, n_samples))
                for h in heads:
                    z = model.heads[h["name"]](hid)
                    outs[h["name"]].append((torch.softmax(z, -1) if h["kind"] == SINGLELABEL else torch.sigmoid(z)).double().numpy())
        res: dict[str, np.ndarray] = {}
        for h in heads:
            p = _recording_mean(np.concatenate(outs[h["name"]]), owner, n)
            res[h["name"]] = p
            if h["kind"] == SINGLELABEL:
                res[f"{h['name']}:logits"] = np.log(np.clip(p, 1e-7, None))
        return res

    patience = int(t.early_stopping_patience)
    best = (-np.inf, 0, None)
    bad = 0
    epoch = 0
    last = min(epochs, int(stop_after)) if stop_after else epochs
    for epoch in range(1, last + 1):
        set_train()
        for idx in torch.randperm(len(X), generator=gen).split(t.batch_size):
            hid = model.trunk(encoder.from_prefix(X[idx], n_samples))
            loss = hid.new_zeros(())
            for h in heads:
                m = masks[h["name"]][idx]
                if not m.any():
                    continue
                z, y = model.heads[h["name"]](hid[m]), ys[h["name"]][idx][m]
                if h["kind"] == SINGLELABEL:
                    loss = loss + F.cross_entropy(z, y, weight=weights[h["name"]])
                else:
                    loss = loss + F.binary_cross_entropy_with_logits(z, y, pos_weight=weights[h["name"]])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        if val_labels is None:
            continue
        score = _score(heads, val_labels, predict(val_prefix, val_owner, len(next(iter(val_labels.values())))))
        if score > best[0]:
            best, bad = (score, epoch, {k: v.detach().clone() for k, v in model.state_dict().items()}), 0
        else:
            bad += 1
            if bad >= patience:
                break
    if val_labels is None:
        return predict, {"best_epoch": epoch, "epochs_run": epoch, "val_score": float("nan")}
    model.load_state_dict(best[2])
    return predict, {"best_epoch": best[1], "epochs_run": epoch, "val_score": best[0]}


def validation_inner(settings: Any) -> int:
    """How many parts the outer training part is cut into so that one (the validation part) has the
    config's share: ``round((train + validation) / validation)`` of ``dataset.split`` (80/10/10 -> 9), at
    least 2. So the default in CV trains on the same share of its non-test data as ``eno train``."""
    split = settings.dataset.split
    if split.validation <= 0:
        raise ValueError("dataset.split.validation must be > 0: the default picks its epoch on it")
    return max(2, int(round((split.train + split.validation) / split.validation)))


def fit_predict_default(cand: Any, data: Any, train: np.ndarray, test: np.ndarray, seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """One outer fold of the default model (``evaluation.cv.fit_predict`` for ``model="default"``).

    ``data`` is a ``CVData`` with ``settings`` and ``prefix`` set (``evaluation.cv.cross_validate``
    does it). Returns ``(probs, info)`` as ``fit_predict``.
    """
    from eno_hf.evaluation.cv import _inner_folds, _probs, fit_temperature
    from eno_hf.evaluation.metrics import SINGLELABEL

    settings, prefix = data.settings, data.prefix
    owner_all = window_index(prefix["ids"], data.ids)
    itr, iva = _inner_folds(data.groups[train], cand.val_inner or validation_inner(settings))[0]
    fit_rec, val_rec = train[itr], train[iva]

    def windows(recs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos = np.full(len(data.ids), -1)
        pos[recs] = np.arange(len(recs))
        sel = np.flatnonzero(pos[owner_all] >= 0)
        return sel, pos[owner_all[sel]]

    fit_w, fit_owner = windows(fit_rec)
    val_w, val_owner = windows(val_rec)
    test_w, test_owner = windows(test)
    heads = data.heads
    wlabels = {h["name"]: data.labels[h["name"]][fit_rec][fit_owner] for h in heads}
    vlabels = {h["name"]: data.labels[h["name"]][val_rec] for h in heads}
    all_w, all_owner = windows(train)
    all_labels = {h["name"]: data.labels[h["name"]][train][all_owner] for h in heads}
    sums: dict[str, np.ndarray] = {}
    vsums: dict[str, np.ndarray] = {}
    infos = []
    for s in range(cand.seeds):
        predict, info = train_default(settings, heads, prefix["features"][fit_w], wlabels, prefix["features"][val_w],
                                      val_owner, vlabels, seed=seed * 1000 + s, balanced=cand.balanced)
        infos.append(info)
        for k, v in predict(prefix["features"][val_w], val_owner, len(val_rec)).items():
            vsums[k] = vsums.get(k, 0.0) + v / cand.seeds
        if cand.refit:  # a fresh model on training + validation part, stopped at the chosen epoch
            predict, _ = train_default(settings, heads, prefix["features"][all_w], all_labels, None, None, None,
                                       seed=seed * 1000 + s, balanced=cand.balanced, stop_after=max(1, info["best_epoch"]))
        for k, v in predict(prefix["features"][test_w], test_owner, len(test)).items():
            sums[k] = sums.get(k, 0.0) + v / cand.seeds
    out: dict[str, np.ndarray] = {}
    info_out: dict[str, Any] = {"best_epoch": [i["best_epoch"] for i in infos],
                                "epochs_run": [i["epochs_run"] for i in infos]}
    for h in heads:
        name = h["name"]
        if h["kind"] == SINGLELABEL:
            logits = np.log(np.clip(sums[name], 1e-7, None))
            temp = fit_temperature(np.log(np.clip(vsums[name], 1e-7, None)), vlabels[name])
            info_out[f"{name}_temperature"] = temp
            out[f"{name}:raw"] = sums[name]
            out[name] = _probs(SINGLELABEL, logits, temp)
        else:
            out[name] = sums[name]
    return out, info_out
