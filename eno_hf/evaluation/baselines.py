"""Baselines any trained model must beat, evaluated with the same metrics on the same recordings.

- ``label_prior``: every recording gets the training label frequencies (multi-label), the training
  class priors (single-label) or the training mean (regression). ROC-AUC is 0.5 by construction;
  PR-AUC equals tag prevalence.
- ``feature_probe``: a linear probe on hand-crafted features (the classic MIR recipe, e.g.
  Tzanetakis & Cook 2002 MFCC statistics): per recording, the mean of the segment ``fingerprint``
  vectors plus MFCC mean/std over all frames → ``StandardScaler`` → ``LogisticRegression``
  (one-vs-rest for multi-label; scikit-learn), ``C`` chosen on validation from a small grid.
  Regression heads use ``Ridge`` (``alpha = 1 / C``).

Input: a ``datasets.DatasetDict`` of segment rows with ``recording_id``, label columns,
``fingerprint`` ``(64,)`` and/or ``mfcc`` ``(n_mfcc, frames)``; label vocabularies come from
``ds.features``. Label encodings follow ``eno_hf.data.collate``: multi-label lists of class ids
(``None`` = missing, empty list = no positive tag), single-label ``ClassLabel`` (-1/None missing),
numeric float (None/NaN missing).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from eno_hf.evaluation.thresholds import tune_thresholds
from eno_hf.metrics import (
    HEAD_METRICS, NAN, Head, evaluate_heads, head_field, multilabel_metrics, regression_metrics, singlelabel_metrics,
)
from eno_hf.models.heads import MULTILABEL, SINGLELABEL, HeadSpec, head_specs_from_features

DEFAULT_C_GRID = (0.01, 0.1, 1.0, 10.0)
FEATURE_COLUMNS = ("fingerprint", "mfcc")


class RecordingTable(NamedTuple):
    """One row per recording (sorted by id).

    Attributes:
        ids: ``(n_rec,)`` recording ids.
        X: ``(n_rec, n_features)`` float64: mean fingerprint, MFCC mean, MFCC std (what exists).
        labels: head name -> labels in the ``metrics`` encodings (multi-label ``(n_rec, n_tags)``
            with -1 rows for missing; single-label ``(n_rec,)`` int, -1 missing; regression
            ``(n_rec,)`` float, NaN missing).
    """

    ids: np.ndarray
    X: np.ndarray
    labels: dict[str, np.ndarray]


# ----------------------------------------------------------------------------- heads and labels
def resolve_heads(features: Mapping[str, Any], heads: Sequence[Head]) -> list[HeadSpec]:
    """``HeadSpec`` s with vocabularies read from ``features``
    (``eno_hf.models.heads.head_specs_from_features``).

    Heads of a kind without metrics (projection, ranking) and heads whose column is not in
    ``features`` are dropped.

    Args:
        features: ``datasets.Features`` of a split (``ds.features``).
        heads: dicts or objects (``HeadConfig``) with ``name``, ``kind``, optional ``column``.
    """
    keep = [h for h in heads
            if head_field(h, "kind") in HEAD_METRICS and head_field(h, "column", head_field(h, "name")) in features]
    return head_specs_from_features(features, keep)


def _encode_labels(kind: str, values: Sequence[Any], n_labels: int) -> np.ndarray:
    if kind == MULTILABEL:
        y = np.zeros((len(values), n_labels), dtype=np.int64)
        for i, ids in enumerate(values):
            if ids is None:
                y[i] = -1
            else:
                y[i, np.asarray(ids, dtype=np.int64).reshape(-1)] = 1
        return y
    if kind == SINGLELABEL:
        return np.asarray([-1 if v is None or int(v) < 0 else int(v) for v in values], dtype=np.int64)
    return np.asarray([NAN if v is None else float(v) for v in values], dtype=np.float64)


def recording_table(ds_split: Any, heads: Sequence[Head]) -> RecordingTable:
    """Per-recording features and labels of one split (see ``RecordingTable``).

    Features: mean over the recording's segments of ``fingerprint``; mean and std over all MFCC
    frames of the recording (``mfcc`` is ``(n_mfcc, frames)`` per segment).

    Args:
        ds_split: a ``datasets.Dataset`` of segment rows.
        heads: head descriptions (see ``resolve_heads``).

    Raises:
        ValueError: the split has no ``recording_id`` or neither ``fingerprint`` nor ``mfcc``.
    """
    cols = set(ds_split.column_names)
    if "recording_id" not in cols:
        raise ValueError("recording_table: the split has no 'recording_id' column")
    feat_cols = [c for c in FEATURE_COLUMNS if c in cols]
    if not feat_cols:
        raise ValueError(f"recording_table: the split has none of the feature columns {FEATURE_COLUMNS}")
    rheads = resolve_heads(ds_split.features, heads)
    label_cols = sorted({h.column for h in rheads})

    meta = ds_split.select_columns(["recording_id", *label_cols]).to_dict()
    ids = np.asarray(meta["recording_id"], dtype=object)
    unique, first = np.unique(ids.astype(str), return_index=True)
    index = {rid: i for i, rid in enumerate(unique)}

    fp_sum: np.ndarray | None = None
    mf_sum = mf_sq = None
    n_seg = np.zeros(len(unique))
    n_frames = np.zeros(len(unique))
    feats = ds_split.select_columns(["recording_id", *feat_cols]).with_format("numpy")
    for batch in feats.iter(batch_size=64):
        for k, rid in enumerate(batch["recording_id"]):
            i = index[str(rid)]
            if "fingerprint" in batch:
                fp = np.asarray(batch["fingerprint"][k], dtype=np.float64).reshape(-1)
                if fp_sum is None:
                    fp_sum = np.zeros((len(unique), fp.size))
                fp_sum[i] += fp
                n_seg[i] += 1
            if "mfcc" in batch:
                m = np.stack([np.asarray(r, dtype=np.float64) for r in batch["mfcc"][k]]) \
                    if batch["mfcc"][k].dtype == object else np.asarray(batch["mfcc"][k], np.float64)
                if mf_sum is None:
                    mf_sum, mf_sq = np.zeros((len(unique), m.shape[0])), np.zeros((len(unique), m.shape[0]))
                mf_sum[i] += m.sum(axis=1)
                mf_sq[i] += (m ** 2).sum(axis=1)
                n_frames[i] += m.shape[1]
    parts = []
    if fp_sum is not None:
        parts.append(fp_sum / np.maximum(n_seg, 1)[:, None])
    if mf_sum is not None:
        nf = np.maximum(n_frames, 1)[:, None]
        mean = mf_sum / nf
        parts += [mean, np.sqrt(np.maximum(mf_sq / nf - mean ** 2, 0.0))]
    X = np.concatenate(parts, axis=1) if parts else np.zeros((len(unique), 0))
    X = np.nan_to_num(X, nan=0.0, posinf=0.0, neginf=0.0)

    labels = {h.name: _encode_labels(h.kind, [meta[h.column][j] for j in first],
                                        len(h.labels))
              for h in rheads}
    return RecordingTable(unique, X, labels)


def _table(split: Any, heads: Sequence[Head]) -> RecordingTable:
    return split if isinstance(split, RecordingTable) else recording_table(split, heads)


def _labelled(kind: str, y: np.ndarray) -> np.ndarray:
    from eno_hf.models.losses import labelled_mask

    return labelled_mask(kind, y)


# ----------------------------------------------------------------------------- label prior
def _prior(kind: str, y: np.ndarray, n_labels: int) -> np.ndarray:
    y = y[_labelled(kind, y)]
    if kind == MULTILABEL:
        return y.mean(axis=0) if len(y) else np.zeros(n_labels)
    if kind == SINGLELABEL:
        counts = np.bincount(y, minlength=n_labels).astype(np.float64)
        return counts / counts.sum() if counts.sum() else np.full(n_labels, 1.0 / max(n_labels, 1))
    return np.array(float(np.mean(y)) if len(y) else 0.0)


def label_prior_baseline(
    train: Any, test: Any, heads: Sequence[Head], validation: Any | None = None,
    features: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Predict training label frequencies / class priors / the mean target for every recording.

    Args:
        train, test: ``datasets.Dataset`` splits (or ``RecordingTable``s).
        heads: head descriptions; vocabularies are read from ``train.features``.
        validation: optional split; if given, multi-label thresholds are tuned on it (a constant
            prediction then becomes "always tag" or "never tag" per tag), else 0.5.
        features: ``datasets.Features`` holding the vocabularies; default the splits' own
            (needed when every split is given as a ``RecordingTable``).

    Returns:
        ``evaluate_heads`` output on ``test``: ``{head: metrics, "score": float}``.
    """
    rheads = resolve_heads(features or _features(train, test), heads)
    tr, te = _table(train, heads), _table(test, heads)
    va = _table(validation, heads) if validation is not None else None
    preds, thresholds = {}, {}
    for h in rheads:
        name, kind, n = h.name, h.kind, len(h.labels)
        prior = _prior(kind, tr.labels[name], n)
        preds[name] = np.broadcast_to(prior, (len(te.ids), *prior.shape)).copy()
        if kind == MULTILABEL and va is not None:
            thresholds[name] = tune_thresholds(
                va.labels[name], np.broadcast_to(prior, (len(va.ids), n)))
    return evaluate_heads(rheads, preds, te.labels, thresholds or None)


def _features(*splits: Any) -> Mapping[str, Any]:
    for s in splits:
        if s is not None and not isinstance(s, RecordingTable):
            return s.features
    raise ValueError("baselines: give at least one datasets.Dataset split (for the label vocabularies)")


# ----------------------------------------------------------------------------- feature probe
def _probe_score(kind: str, y: np.ndarray, probs: np.ndarray) -> float:
    if kind == MULTILABEL:
        return multilabel_metrics(y, probs)["roc_auc_macro"]
    if kind == SINGLELABEL:
        return singlelabel_metrics(y, probs)["f1_macro"]
    return -regression_metrics(y, probs)["rmse"]


def _fit_predict(kind: str, C: float, X: np.ndarray, y: np.ndarray, n_labels: int,
                 X_out: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Fit one probe and return its predictions for each array in ``X_out``."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.multiclass import OneVsRestClassifier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant tags ("Label not ... present"), convergence
        if kind == MULTILABEL:
            present = y.sum(axis=0) > 0       # tags absent from train: predict 0
            out = [np.zeros((len(x), n_labels)) for x in X_out]
            if present.any() and len(y):
                clf = OneVsRestClassifier(LogisticRegression(C=C, max_iter=2000))
                clf.fit(X, y[:, present])
                for o, x in zip(out, X_out):
                    o[:, present] = clf.predict_proba(x) if len(x) else 0.0
            return out
        if kind == SINGLELABEL:
            classes = np.unique(y)
            out = [np.zeros((len(x), n_labels)) for x in X_out]
            if len(classes) == 1:
                for o in out:
                    o[:, classes[0]] = 1.0
                return out
            clf = LogisticRegression(C=C, max_iter=2000).fit(X, y)
            for o, x in zip(out, X_out):
                if len(x):
                    o[:, clf.classes_] = clf.predict_proba(x)
            return out
        reg = Ridge(alpha=1.0 / C).fit(X, y)
        return [reg.predict(x) if len(x) else np.zeros(0) for x in X_out]


def feature_probe_baseline(
    train: Any, validation: Any, test: Any, heads: Sequence[Head],
    c_grid: Sequence[float] = DEFAULT_C_GRID, features: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Linear probe on fingerprint + MFCC statistics (see module docstring).

    ``C`` is chosen per head on ``validation`` (macro ROC-AUC / macro-F1 / -RMSE); with no usable
    validation labels ``C = 1``. Multi-label thresholds are tuned on validation (F1, per tag).
    Tags absent from train are predicted 0; classes absent from train get probability 0.

    Args:
        train, validation, test: ``datasets.Dataset`` splits (or ``RecordingTable``s);
            ``validation`` may be None.
        heads: head descriptions (see ``resolve_heads``).
        c_grid: inverse regularisation strengths tried.
        features: ``datasets.Features`` holding the vocabularies (see ``label_prior_baseline``).

    Returns:
        ``evaluate_heads`` output on ``test``: ``{head: metrics, "score": float}``, each head's
        metrics with an extra ``probe_C``.
    """
    from sklearn.preprocessing import StandardScaler

    rheads = resolve_heads(features or _features(train, validation, test), heads)
    tr, te = _table(train, heads), _table(test, heads)
    va = _table(validation, heads) if validation is not None else None
    if not len(tr.ids):
        raise ValueError("feature_probe_baseline: the train split has no recordings")
    scaler = StandardScaler().fit(tr.X)

    def scale(X: np.ndarray) -> np.ndarray:  # empty splits have no feature columns to scale
        return scaler.transform(X) if len(X) else np.zeros((0, tr.X.shape[1]))

    Xtr, Xte = scale(tr.X), scale(te.X)
    Xva = scale(va.X) if va is not None and len(va.ids) else None
    if Xva is None:
        va = None
    from threadpoolctl import threadpool_limits

    preds, thresholds, chosen = {}, {}, {}
    # one BLAS thread: the fits are ~100-dimensional, and a second OpenBLAS thread only spins
    # (63 s -> 7.6 s for the 4Q probe on a busy 2-core machine; identical results)
    with threadpool_limits(limits=1):
        for h in rheads:
            name, kind, n = h.name, h.kind, len(h.labels)
            mtr = _labelled(kind, tr.labels[name])
            ytr = tr.labels[name][mtr]
            if not mtr.any():
                continue
            best = (-np.inf, 1.0, None, None)
            va_ok = va is not None and _labelled(kind, va.labels[name]).any()
            for C in (c_grid if va_ok else (1.0,)):
                outs = _fit_predict(kind, C, Xtr[mtr], ytr, n, [Xte] + ([Xva] if va_ok else []))
                score = _probe_score(kind, va.labels[name], outs[1]) if va_ok else 0.0
                score = -np.inf if np.isnan(score) else score
                if best[2] is None or score > best[0]:
                    best = (score, C, outs[0], outs[1] if va_ok else None)
            _, chosen[name], preds[name], p_va = best
            if kind == MULTILABEL and p_va is not None:
                thresholds[name] = tune_thresholds(va.labels[name], p_va)
    res = evaluate_heads(rheads, preds, te.labels, thresholds or None)
    for name, C in chosen.items():
        if name in res:
            res[name]["probe_C"] = float(C)
    return res


def run_baselines(
    dataset: Mapping[str, Any], heads: Sequence[Head], test_split: str = "test",
    validation_split: str = "validation", train_split: str = "train",
    c_grid: Sequence[float] = DEFAULT_C_GRID,
) -> dict[str, dict[str, Any]]:
    """Both baselines on a ``DatasetDict``; each split's features are read once.

    Returns:
        ``{"label_prior": {head: metrics, "score": float}, "feature_probe": {...}}``.

    Raises:
        KeyError: the train or test split is missing.
    """
    for s in (train_split, test_split):
        if s not in dataset:
            raise KeyError(f"run_baselines: the dataset has no {s!r} split (has {list(dataset)})")
    features = dataset[train_split].features
    rheads = resolve_heads(features, heads)
    tables = {s: recording_table(dataset[s], rheads)
              for s in (train_split, validation_split, test_split) if s in dataset}
    va = tables.get(validation_split)
    if va is not None and not len(va.ids):
        va = None
    return {
        "label_prior": label_prior_baseline(tables[train_split], tables[test_split], rheads,
                                            validation=va, features=features),
        "feature_probe": feature_probe_baseline(tables[train_split], va, tables[test_split], rheads,
                                                c_grid=c_grid, features=features),
    }
