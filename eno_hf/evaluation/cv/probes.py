"""Probes on cached recording-level features: label prior, ridge, logistic regression, MLP.

Every probe chooses its hyper-parameter on inner artist-grouped folds of the outer training part
(``folds.inner_folds``) by the head's ``scores.selection_score``, refits on the whole training part
and predicts the outer test part; a single-label head's softmax gets the temperature fitted on the
inner out-of-fold logits at the chosen value (``calibration.fit_temperature``).

- ``ridge``: standardised features -> ridge regression on one-hot / 0-1 targets, solved in closed
  form for every strength and tag at once (``ridge_path``); alpha in ``RIDGE_ALPHAS`` per head.
- ``linear``: standardised features -> L2-regularised logistic regression per head (softmax for
  single-label, independent sigmoids = one-vs-rest for multi-label), full-batch L-BFGS in PyTorch;
  L2 in ``L2_GRID`` per head.
- ``mlp``: the default model's trunk + heads (Linear -> ReLU -> dropout -> one linear layer per head)
  on frozen features, trained by ``training.train.fit`` (eno's one trainer; ``fit_mlp``); epochs in
  ``MLP_EPOCH_GRID``; ``seeds`` models averaged.

Losses and the missing-label rule are ``eno_hf.models.losses``' (``head_loss``, ``labelled_mask``,
``balanced_weights`` for ``balanced`` logistic probes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from eno_hf.config import Settings
from eno_hf.evaluation.cv.calibration import fit_temperature, probabilities
from eno_hf.evaluation.cv.candidates import Candidate
from eno_hf.evaluation.cv.data import CVData
from eno_hf.evaluation.cv.scores import selection_score
from eno_hf.models.heads import SINGLELABEL, HeadSpec
from eno_hf.models.losses import balanced_weights, head_loss, labelled_mask

RIDGE_ALPHAS = (0.01, 0.1, 1.0, 10.0)
"""Ridge strengths tried on the inner folds (``alpha * n_features``: features are standardised)."""
L2_GRID = (1e-2, 1e-1)
"""L2 strengths tried on the inner folds (penalty on the mean loss; features standardised)."""
MLP_EPOCH_GRID = (20, 60)
"""MLP epochs tried on the inner folds."""
POS_WEIGHT_CAP = 100.0
"""Upper bound of class-balanced multi-label ``pos_weight`` (as ``training.train.compute_pos_weight``)."""

Folds = list[tuple[np.ndarray, np.ndarray]]


def standardize(Xtr: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """``[Xtr, *others]`` minus ``Xtr``'s column means over its column standard deviations (1 where
    a column is constant)."""
    mu, sd = Xtr.mean(axis=0), Xtr.std(axis=0)
    sd = np.where(sd > 1e-8, sd, 1.0)
    return [(x - mu) / sd for x in (Xtr, *others)]


def _weights(kind: str, y: np.ndarray, n_out: int, balanced: bool) -> Any:
    return balanced_weights(kind, y, n_out, POS_WEIGHT_CAP) if balanced else None


def fit_linear(X: np.ndarray, y: np.ndarray, kind: str, n_out: int, l2: float, balanced: bool = False,
               max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """L2-regularised logistic regression (softmax / per-tag sigmoid) by full-batch L-BFGS.

    Args:
        X: ``(n, d)`` standardised features. y: ``(n,)`` class ids or ``(n, n_out)`` 0/1 (labelled rows only).
        l2: penalty ``l2 * ||W||^2`` added to the mean loss (bias not penalised).
        balanced: class-balanced loss weights (``models.losses.balanced_weights``).

    Returns:
        ``(W (d, n_out), b (n_out,))`` float64.
    """
    import torch

    torch.manual_seed(0)
    Xt = torch.tensor(X, dtype=torch.float32)
    yt = torch.tensor(y, dtype=torch.long if kind == SINGLELABEL else torch.float32)
    W = torch.zeros(X.shape[1], n_out, requires_grad=True)
    b = torch.zeros(n_out, requires_grad=True)
    weight = _weights(kind, y, n_out, balanced)
    opt = torch.optim.LBFGS([W, b], lr=1.0, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> Any:
        opt.zero_grad()
        loss = head_loss(kind, Xt @ W + b, yt, weight) + l2 * W.square().sum()
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


def probe_dataset(X: np.ndarray, labels: Mapping[str, np.ndarray], heads: Sequence[HeadSpec]) -> Any:
    """One ``datasets.Dataset`` row per recording in the layout ``EnoCollator`` reads: ``embedding``
    (``(d,)`` float32, numpy-formatted), ``recording_id`` (``"0"``, ``"1"``, ...) and per head its
    column: single-label class id (-1 missing), multi-label list of positive class ids (None missing).

    Args:
        X: ``(n, d)`` features. labels: head -> ``(n,)`` / ``(n, k)`` labels (< 0 missing).
    """
    from datasets import Dataset

    columns: dict[str, Any] = {"embedding": np.asarray(X, dtype=np.float32),
                               "recording_id": [str(i) for i in range(len(X))]}
    for h in heads:
        y = np.asarray(labels[h.name])
        mask = labelled_mask(h.kind, y)
        if h.kind == SINGLELABEL:
            columns[h.column] = np.where(mask, y, -1).astype(np.int64)
        else:
            columns[h.column] = [np.flatnonzero(row > 0).tolist() if ok else None for row, ok in zip(y, mask)]
    # label columns stay Python objects: numpy formatting fails on a batch starting with a None list
    return Dataset.from_dict(columns).with_format("numpy", columns=["embedding"], output_all_columns=True)


def fit_mlp(X: np.ndarray, labels: Mapping[str, np.ndarray], heads: Sequence[HeadSpec], epochs: int,
            seed: int, hidden_dim: int = 256, dropout: float = 0.5, lr: float = 1e-3, weight_decay: float = 0.05,
            batch_size: int = 32) -> Any:
    """The default's trunk + heads on frozen features, trained by eno's one trainer.

    An ``EnoForAudioTagging`` with ``encoder=embeddings`` (``models.factory.create_model``: Linear ->
    ReLU -> dropout trunk, one linear layer per head) trained by ``training.train.fit`` for
    ``epochs`` epochs without validation: the ``transformers.Trainer`` AdamW (no decay on biases),
    linear learning-rate decay without warm-up, gradient clipping at 1, shuffling seeded by ``seed``,
    and the loss in the model's ``forward(labels)`` (``models.losses.multitask_loss``: the sum of
    per-head mean losses over labelled rows).

    Args:
        X: ``(n, d)`` standardised features. labels: head -> ``(n,)`` / ``(n, k)`` labels (< 0 missing).
        heads: supervised heads (``HeadSpec``). epochs: training epochs. seed: initialisation and
            data order.

    Returns:
        a callable ``X (m, d) -> {head: logits (m, n_out) float64}`` (eval mode).
    """
    import tempfile

    import torch

    from eno_hf.models.factory import create_model
    from eno_hf.training.train import fit

    base = Settings()
    settings = base.model_copy(update={
        "model": base.model.model_copy(update={
            "encoder": "embeddings", "embedding_columns": ["embedding"], "embedding_dim": int(X.shape[1]),
            "hidden_dim": hidden_dim, "dropout": dropout, "finetune": "full", "heads": []}),
        "train": base.train.model_copy(update={
            "epochs": epochs, "batch_size": batch_size, "learning_rate": lr, "weight_decay": weight_decay,
            "warmup_ratio": 0.0, "seed": seed, "augment": False, "resume": False, "num_workers": 0})})
    torch.manual_seed(seed)
    model = create_model(settings, list(heads))
    with tempfile.TemporaryDirectory(prefix="eno-cv-mlp-") as tmp:
        trainer = fit(settings, model, list(heads), probe_dataset(X, labels, heads), None, tmp, ["embedding"],
                      cached=True, progress=None)
    trained = trainer.model.eval()

    def predict(Xn: np.ndarray) -> dict[str, np.ndarray]:
        with torch.no_grad():
            logits = trained(input_values=torch.tensor(Xn, dtype=torch.float32))["head_logits"]
        return {h.name: logits[h.name].double().numpy() for h in heads}

    return predict


def _targets(kind: str, y: np.ndarray, n_out: int) -> np.ndarray:
    return np.eye(n_out)[y] if kind == SINGLELABEL else y.astype(np.float64)


def _calibrated(kind: str, name: str, logits: np.ndarray, temperature: float, out: dict[str, np.ndarray]) -> None:
    """``out[name]`` = probabilities; a single-label head's at ``temperature``, its raw ones under ``name:raw``."""
    if kind == SINGLELABEL:
        out[f"{name}:raw"] = probabilities(kind, logits)
        out[name] = probabilities(kind, logits, temperature)
    else:
        out[name] = probabilities(kind, logits)


def fit_predict_prior(data: CVData, train: np.ndarray, test: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The label prior: the training part's class frequencies / tag rates for every test recording."""
    out: dict[str, np.ndarray] = {}
    for h in data.heads:
        y = data.labels[h.name][train]
        y = y[labelled_mask(h.kind, y)]
        n = len(h.labels)
        prior = (np.bincount(y, minlength=n) / max(len(y), 1)) if h.kind == SINGLELABEL else y.mean(axis=0)
        out[h.name] = np.broadcast_to(prior, (len(test), n)).copy()
        if h.kind == SINGLELABEL:
            out[f"{h.name}:raw"] = out[h.name]
    return out, {}


def fit_predict_ridge(data: CVData, X: np.ndarray, train: np.ndarray, test: np.ndarray, inner: Folds,
                      alphas: Sequence[float] = RIDGE_ALPHAS) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Ridge probe: alpha chosen on the inner folds per head; single-label scores -> softmax with a
    temperature fitted on the inner out-of-fold scores; multi-label scores -> sigmoid (ranking metrics
    are unchanged by it)."""
    out: dict[str, np.ndarray] = {}
    info: dict[str, Any] = {}
    for h in data.heads:
        kind, n_out, name = h.kind, len(h.labels), h.name
        y_all = data.labels[name]
        oofs = [np.zeros((len(train), n_out)) for _ in alphas]
        for itr, iva in inner:
            tr_idx, va_idx = train[itr], train[iva]
            keep = labelled_mask(kind, y_all[tr_idx])
            Xtr, Xva = standardize(X[tr_idx][keep], X[va_idx])
            for o, pred in zip(oofs, ridge_path(Xtr, _targets(kind, y_all[tr_idx][keep], n_out), Xva, alphas)):
                o[iva] = pred
        temps = [fit_temperature(o, y_all[train]) if kind == SINGLELABEL else 1.0 for o in oofs]
        scores = [selection_score(kind, y_all[train], probabilities(kind, o, t)) for o, t in zip(oofs, temps)]
        j = int(np.argmax(scores))
        keep = labelled_mask(kind, y_all[train])
        Xtr, Xte = standardize(X[train][keep], X[test])
        logits = ridge_path(Xtr, _targets(kind, y_all[train][keep], n_out), Xte, [alphas[j]])[0]
        info[f"{name}_alpha"] = alphas[j]
        if kind == SINGLELABEL:
            info[f"{name}_temperature"] = temps[j]
        _calibrated(kind, name, logits, temps[j], out)
    return out, info


def fit_predict_linear(cand: Candidate, data: CVData, X: np.ndarray, train: np.ndarray, test: np.ndarray,
                       inner: Folds, l2_grid: Sequence[float] = L2_GRID) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Logistic probe on the recording-level features ``X``: per head, the L2 strength with the best
    inner out-of-fold score, refitted on ``train``; single-label probabilities temperature-scaled on
    the inner out-of-fold logits."""

    def fit_pred(tr: np.ndarray, ev: np.ndarray, y_all: np.ndarray, kind: str, n_out: int, l2: float) -> np.ndarray:
        tr = tr[labelled_mask(kind, y_all[tr])]
        Xtr, Xev = standardize(X[tr], X[ev])
        W, b = fit_linear(Xtr, y_all[tr], kind, n_out, l2, cand.balanced)
        return Xev @ W + b

    out: dict[str, np.ndarray] = {}
    info: dict[str, Any] = {}
    for h in data.heads:
        kind, n_out, name = h.kind, len(h.labels), h.name
        y_all = data.labels[name]
        best: tuple[float, float, np.ndarray | None] = (-np.inf, l2_grid[0], None)
        for l2 in l2_grid:
            oof = np.zeros((len(train), n_out))
            for itr, iva in inner:
                oof[iva] = fit_pred(train[itr], train[iva], y_all, kind, n_out, l2)
            score = selection_score(kind, y_all[train], probabilities(kind, oof))
            if best[2] is None or score > best[0]:
                best = (score, l2, oof)
        _, l2, oof = best
        logits = fit_pred(train, test, y_all, kind, n_out, l2)
        info[f"{name}_l2"] = l2
        t = 1.0
        if kind == SINGLELABEL:
            t = info[f"{name}_temperature"] = fit_temperature(oof, y_all[train])
        _calibrated(kind, name, logits, t, out)
    return out, info


def fit_predict_mlp(cand: Candidate, data: CVData, X: np.ndarray, train: np.ndarray, test: np.ndarray,
                    inner: Folds, seed: int, epoch_grid: Sequence[int] = MLP_EPOCH_GRID
                    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """MLP probe (``fit_mlp``, ``cand.seeds`` seeds averaged in logit space): the epoch count with the
    best inner out-of-fold score (mean over heads), refitted on ``train``; single-label temperature
    from the inner out-of-fold logits."""
    heads = data.heads

    def run(tr_idx: np.ndarray, ev_idx: np.ndarray, epochs: int) -> dict[str, np.ndarray]:
        Xtr, Xev = standardize(X[tr_idx], X[ev_idx])
        labels = {h.name: data.labels[h.name][tr_idx] for h in heads}
        logits: dict[str, np.ndarray] = {}
        for s in range(cand.seeds):
            pred = fit_mlp(Xtr, labels, heads, epochs, seed=seed * 1000 + s)(Xev)
            for k, v in pred.items():
                logits[k] = logits.get(k, 0.0) + v / cand.seeds
        return logits

    best: tuple[float, int, dict[str, np.ndarray] | None] = (-np.inf, epoch_grid[0], None)
    for epochs in epoch_grid:
        oof = {h.name: np.zeros((len(train), len(h.labels))) for h in heads}
        for itr, iva in inner:
            pred = run(train[itr], train[iva], epochs)
            for k in oof:
                oof[k][iva] = pred[k]
        score = float(np.mean([selection_score(h.kind, data.labels[h.name][train],
                                               probabilities(h.kind, oof[h.name])) for h in heads]))
        if best[2] is None or score > best[0]:
            best = (score, epochs, oof)
    _, epochs, oof = best
    logits = run(train, test, epochs)
    out: dict[str, np.ndarray] = {}
    info: dict[str, Any] = {"epochs": epochs}
    for h in heads:
        name, kind = h.name, h.kind
        t = 1.0
        if kind == SINGLELABEL:
            t = info[f"{name}_temperature"] = fit_temperature(oof[name], data.labels[name][train])
        _calibrated(kind, name, logits[name], t, out)
    return out, info
