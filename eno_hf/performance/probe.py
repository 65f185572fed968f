"""Ridge probes on pooled frame embeddings (and MIDI statistics), selected by *inner* grouped CV.

Feature blocks of one performance (``pooled_blocks``): for each encoder, the frame tensor
``(frames, dim)`` of ``features="prefix+embedding"`` is split into its layers (``prefix``: the
front/mid-end features, ``embedding``: the penultimate layer, the last ``emb_dim`` columns) and
pooled over frames into ``mean`` and ``std`` blocks. A *candidate* is (encoder, layers, pooling,
MIDI weight): the concatenation of its blocks, each block z-scored per column on the training side
and scaled by ``1/sqrt(columns)`` so every block weighs the same in the kernel, plus optionally the
MIDI-statistics block times ``sqrt(midi_weight)``.

``nested_ridge_cv``: outer grouped folds (performer or piece: no group on both sides); inside each
outer training side, ``inner_folds`` grouped folds pick the candidate and the ridge ``alpha`` by
mean R² over the 19 dimensions; the chosen one is refit on the whole outer training side and
predicts the held-out fold. Targets are standardised per dimension with the training side's
mean/std (so one ``alpha`` suits all 19), predictions mapped back. Ridge is solved in kernel form
(``K = X X^T``, one eigendecomposition per fit, all alphas at once): Hoerl & Kennard (1970);
``sklearn.linear_model.Ridge`` gives the same solution. The held-out fold never influences the
scaling, the candidate, ``alpha`` or the weights.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from eno_hf.performance.samplers import grouped_folds

__all__ = ["ALPHAS", "Candidate", "RidgeFit", "candidates", "fit_ridge", "head_candidates", "kernel_ridge_path", "nested_ridge_cv",
           "pooled_blocks", "select_ridge"]

ALPHAS = np.logspace(-1, 4, 11)
"""Ridge penalties tried (on z-scored, block-scaled features and standardised targets)."""


@dataclass(frozen=True)
class Candidate:
    """One probe input: ``encoder`` (None = MIDI statistics only), ``layers`` (``"embedding"``,
    ``"prefix"`` or ``"prefix+embedding"``), ``pooling`` (``"mean"`` or ``"meanstd"``),
    ``midi_weight`` (0 = no MIDI statistics)."""

    encoder: str | None
    layers: str = "prefix+embedding"
    pooling: str = "meanstd"
    midi_weight: float = 0.0

    @property
    def key(self) -> str:
        if self.encoder is None:
            return "midi_statistics"
        midi = f"+midi*{self.midi_weight:g}" if self.midi_weight else ""
        return f"{self.encoder}/{self.layers}/{self.pooling}{midi}"

    def blocks(self) -> list[tuple[str, float]]:
        """``(block name, weight)`` of the candidate's blocks."""
        out: list[tuple[str, float]] = []
        if self.encoder is not None:
            for layer in self.layers.split("+"):
                for stat in ("mean", "std") if self.pooling == "meanstd" else ("mean",):
                    out.append((f"{self.encoder}/{layer}/{stat}", 1.0))
        if self.encoder is None or self.midi_weight:
            out.append(("midi", self.midi_weight or 1.0))
        return out


def pooled_blocks(tensors: Sequence[Any], emb_dim: int, name: str) -> dict[str, np.ndarray]:
    """Pool ``(frames, dim)`` tensors of one encoder into ``{name}/{layer}/{mean,std}`` blocks,
    each ``(n, columns)`` float64; ``layer`` is ``embedding`` (last ``emb_dim`` columns) and, when
    ``dim > emb_dim``, ``prefix`` (the others)."""
    mean = np.stack([np.asarray(t, dtype=np.float64).mean(0) for t in tensors])
    std = np.stack([np.asarray(t, dtype=np.float64).std(0) for t in tensors])
    dim = mean.shape[1]
    out = {f"{name}/embedding/mean": mean[:, dim - emb_dim:], f"{name}/embedding/std": std[:, dim - emb_dim:]}
    if dim > emb_dim:
        out[f"{name}/prefix/mean"] = mean[:, : dim - emb_dim]
        out[f"{name}/prefix/std"] = std[:, : dim - emb_dim]
    return out


def candidates(encoders: Sequence[str], layers: Sequence[str] = ("embedding", "prefix+embedding"),
               poolings: Sequence[str] = ("mean", "meanstd"), midi_weights: Sequence[float] = (0.0, 1.0, 4.0)
               ) -> list[Candidate]:
    """The grid searched by ``nested_ridge_cv``, MIDI statistics alone first."""
    out = [Candidate(None)]
    for e in encoders:
        for la in layers:
            for p in poolings:
                for w in midi_weights:
                    out.append(Candidate(e, la, p, w))
    return out


def head_candidates(encoder: str, prefix: bool, midi: bool) -> list[Candidate]:
    """The candidates of a model's ridge ratings map (``trainer.fit_ridge_heads``): layers
    ``embedding`` (and ``prefix+embedding`` when the frames have a prefix) x pooling ``mean`` /
    ``meanstd``; with ``midi``, the MIDI statistics alone and each of those plus the statistics at
    weight 1 or 4."""
    layers = ("embedding", "prefix+embedding") if prefix else ("embedding",)
    audio = [Candidate(encoder, la, po) for la in layers for po in ("mean", "meanstd")]
    if not midi:
        return audio
    return [Candidate(None)] + [Candidate(encoder, c.layers, c.pooling, w) for c in audio for w in (1.0, 4.0)]


def _center_scale(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column mean and std of ``x`` (std <= 1e-9 -> 1, so constant columns stay finite)."""
    mu, sd = x.mean(0), x.std(0)
    return mu, np.where(sd > 1e-9, sd, 1.0)


def _scaled(blocks: dict[str, np.ndarray], names: Sequence[tuple[str, float]], tr: np.ndarray,
            test_blocks: dict[str, np.ndarray] | None = None, te: np.ndarray | None = None) -> np.ndarray:
    """Concatenate the blocks, z-scored with the rows ``tr`` and scaled by ``sqrt(w / columns)``;
    the rows ``te`` of a block in ``test_blocks`` are taken from there (same z-scoring)."""
    parts = []
    for name, w in names:
        x = blocks[name]
        mu, sd = _center_scale(x[tr])
        if test_blocks is not None and name in test_blocks and te is not None:
            x = x.copy()
            x[te] = test_blocks[name][te]
        parts.append((x - mu) / sd * np.sqrt(w / x.shape[1]))
    return np.concatenate(parts, axis=1)


def kernel_ridge_path(k_train: np.ndarray, k_test: np.ndarray, y_train: np.ndarray,
                      alphas: np.ndarray = ALPHAS) -> np.ndarray:
    """Ridge predictions for every alpha: ``(len(alphas), n_test, K)``.

    Args:
        k_train: ``(n, n)`` Gram matrix of the (centred) training rows; k_test: ``(m, n)``.
        y_train: ``(n, K)`` centred targets.
    """
    evals, evecs = np.linalg.eigh(k_train)
    evals = np.clip(evals, 0.0, None)
    proj = evecs.T @ y_train
    left = k_test @ evecs
    return np.stack([left @ (proj / (evals + a)[:, None]) for a in alphas])


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean over columns of R² (``1 - SSE/SST``)."""
    sst = ((y - y.mean(0)) ** 2).sum(0)
    sse = ((y - pred) ** 2).sum(0)
    return float(np.mean(1.0 - sse / np.where(sst > 0, sst, np.nan)))


def _fit_predict(gram: np.ndarray, y: np.ndarray, tr: np.ndarray, te: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """Ridge with intercept (targets standardised on ``tr``; Gram centred on ``tr``): ``(A, len(te), K)``."""
    mu, sd = _center_scale(y[tr])
    z = (y[tr] - mu) / sd
    k_tt = gram[np.ix_(tr, tr)]
    row = k_tt.mean(0)
    k_c = k_tt - row[None, :] - row[:, None] + row.mean()
    k_s = gram[np.ix_(te, tr)]
    k_sc = k_s - row[None, :] - k_s.mean(1, keepdims=True) + row.mean()
    return kernel_ridge_path(k_c, k_sc, z, alphas) * sd + mu


def _group_folds(keys: Sequence[Hashable], idx: np.ndarray, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    sub = grouped_folds([keys[i] for i in idx], n_folds, seed)
    return [(idx[a], idx[b]) for a, b in sub]


def _inner_scores(grams: dict[str, np.ndarray], y: np.ndarray, keys: Sequence[Hashable], tr: np.ndarray,
                  cands: Sequence[Candidate], inner_folds: int, alphas: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Candidate key -> ``(len(alphas),)`` mean R² over the inner grouped folds within ``tr``."""
    inner = _group_folds(keys, tr, inner_folds, seed)
    scores: dict[str, np.ndarray] = {}
    for c in cands:
        g = sum(w * grams[b] for b, w in c.blocks())
        per_alpha = np.zeros(len(alphas))
        for itr, iva in inner:
            p = _fit_predict(g, y, itr, iva, alphas)
            per_alpha += np.array([_r2(y[iva], p[a]) for a in range(len(alphas))]) / len(inner)
        scores[c.key] = per_alpha
    return scores


@dataclass
class RidgeFit:
    """A ridge map in the units of the raw blocks: ``prediction = sum_b blocks[b] @ weights[b] +
    intercept``. ``weights``: block name -> ``(columns, K)`` float64 (block weight, z-scoring and
    target standardisation folded in); ``intercept``: ``(K,)``; ``candidate``, ``alpha``,
    ``inner_r2`` (mean inner-fold R² of the choice, NaN when not selected by CV)."""

    candidate: Candidate
    alpha: float
    weights: dict[str, np.ndarray]
    intercept: np.ndarray
    inner_r2: float = float("nan")

    def predict(self, blocks: dict[str, np.ndarray], rows: np.ndarray | None = None) -> np.ndarray:
        """``(n, K)`` predictions for ``rows`` (all when None) of ``blocks``."""
        out = None
        for b, w in self.weights.items():
            x = blocks[b] if rows is None else blocks[b][rows]
            out = x @ w if out is None else out + x @ w
        return out + self.intercept

    def summary(self) -> dict[str, Any]:
        return {"candidate": self.candidate.key, "alpha": self.alpha, "inner_r2": self.inner_r2}


def fit_ridge(blocks: dict[str, np.ndarray], y: np.ndarray, tr: np.ndarray, cand: Candidate, alpha: float) -> RidgeFit:
    """Fit ``cand`` with penalty ``alpha`` on rows ``tr`` (the same solution as ``_fit_predict``:
    blocks z-scored on ``tr``, scaled by ``sqrt(weight / columns)``, targets standardised on ``tr``)
    and return it in raw block units (``RidgeFit``).

    Raises:
        ValueError: ``y[tr]`` holds NaN.
    """
    tr = np.asarray(tr)
    if not np.isfinite(y[tr]).all():
        raise ValueError("ridge targets must be finite (drop unrated rows first)")
    mu_y, sd_y = _center_scale(y[tr])
    z = (y[tr] - mu_y) / sd_y
    feats, scales = [], []
    for b, w in cand.blocks():
        x = blocks[b][tr]
        mu, sd = _center_scale(x)
        c = np.sqrt(w / x.shape[1]) / sd
        feats.append((x - mu) * c)
        scales.append((b, mu, c))
    f = np.concatenate(feats, axis=1)
    evals, evecs = np.linalg.eigh(f @ f.T)
    dual = evecs @ ((evecs.T @ z) / (np.clip(evals, 0.0, None) + alpha)[:, None])  # (K_gram + alpha I)^-1 z
    w_all = f.T @ dual  # (columns, K) in scaled units
    weights, intercept, k = {}, mu_y.astype(np.float64).copy(), 0
    for b, mu, c in scales:
        wb = w_all[k: k + len(c)] * c[:, None] * sd_y[None, :]
        k += len(c)
        weights[b] = weights.get(b, 0) + wb
        intercept -= mu @ wb
    return RidgeFit(cand, float(alpha), weights, intercept)


def select_ridge(blocks: dict[str, np.ndarray], y: np.ndarray, keys: Sequence[Hashable], tr: np.ndarray,
                 cands: Sequence[Candidate], *, inner_folds: int = 4, alphas: np.ndarray = ALPHAS, seed: int = 0,
                 grams: dict[str, np.ndarray] | None = None) -> tuple[RidgeFit, dict[str, np.ndarray]]:
    """Choose (candidate, alpha) by ``inner_folds`` grouped folds of ``keys`` within rows ``tr``
    (mean R² over the target columns) and fit the choice on all of ``tr``.

    Returns:
        the ``RidgeFit`` and ``candidate key -> (len(alphas),)`` inner R² of every candidate.

    Raises:
        ValueError: no candidate, or NaN targets.
    """
    if not cands:
        raise ValueError("select_ridge needs at least one candidate")
    tr = np.asarray(tr)
    if grams is None:
        grams = {}
        for b in {b for c in cands for b, _ in c.blocks()}:
            x = _scaled(blocks, [(b, 1.0)], tr)
            grams[b] = x @ x.T
    scores = _inner_scores(grams, y, keys, tr, cands, inner_folds, alphas, seed)
    best = max(cands, key=lambda c: scores[c.key].max())
    a = int(np.argmax(scores[best.key]))
    fit = fit_ridge(blocks, y, tr, best, float(alphas[a]))
    fit.inner_r2 = float(scores[best.key][a])
    return fit, scores


def nested_ridge_cv(blocks: dict[str, np.ndarray], y: np.ndarray, keys: Sequence[Hashable],
                    folds: list[tuple[np.ndarray, np.ndarray]], cands: Sequence[Candidate], *,
                    inner_folds: int = 4, alphas: np.ndarray = ALPHAS, seed: int = 0,
                    fixed: Sequence[Candidate] = (), test_blocks: dict[str, np.ndarray] | None = None
                    ) -> dict[str, Any]:
    """Outer-fold predictions of the inner-CV-selected ridge probe, and of each ``fixed`` candidate
    (its alpha chosen by inner CV too), in the same ``folds``.

    Args:
        blocks: name -> ``(n, columns)`` (``pooled_blocks`` + ``"midi"``).
        y: ``(n, K)`` targets (no NaN). keys: ``(n,)`` group of each row for the inner folds (the
            protocol's column). folds: outer ``(train, test)`` index arrays.
        cands: the candidates the inner CV chooses among.
        test_blocks: name -> ``(n, columns)`` read instead of ``blocks[name]`` for the outer test
            rows only: train on one input, predict from another (e.g. MIDI statistics of the
            source MIDI to train, of a transcription of the audio to predict). Training, inner
            selection and z-scoring see only ``blocks``.

    Returns:
        ``{"selected": (n, K) predictions, "choices": per fold {candidate, alpha, inner_r2},
        "inner_r2": candidate key -> mean inner R² over outer folds, "fixed": key -> (n, K)
        predictions}``.
    """
    n = len(y)
    pred = np.zeros_like(y, dtype=np.float64)
    fixed_pred = {c.key: np.zeros_like(pred) for c in fixed}
    choices, inner_table = [], {c.key: [] for c in cands}
    allc = list(dict.fromkeys(list(cands) + list(fixed)))
    for tr, te in folds:
        tr, te = np.asarray(tr), np.asarray(te)
        grams: dict[str, np.ndarray] = {}
        for b in {b for c in allc for b, _ in c.blocks()}:
            x = _scaled(blocks, [(b, 1.0)], tr, test_blocks, te)
            grams[b] = x @ x.T
        scores = _inner_scores(grams, y, keys, tr, allc, inner_folds, alphas, seed)
        for k in inner_table:
            inner_table[k].append(float(scores[k].max()))
        best = max(cands, key=lambda c: scores[c.key].max())
        a = int(np.argmax(scores[best.key]))
        g = sum(w * grams[b] for b, w in best.blocks())
        pred[te] = _fit_predict(g, y, tr, te, alphas[a: a + 1])[0]
        choices.append({"candidate": best.key, "alpha": float(alphas[a]), "inner_r2": float(scores[best.key][a])})
        for c in fixed:
            a = int(np.argmax(scores[c.key]))
            g = sum(w * grams[b] for b, w in c.blocks())
            fixed_pred[c.key][te] = _fit_predict(g, y, tr, te, alphas[a: a + 1])[0]
    return {"selected": pred, "choices": choices,
            "inner_r2": {k: float(np.mean(v)) for k, v in inner_table.items() if v},
            "chosen_counts": dict(Counter(c["candidate"] for c in choices)), "fixed": fixed_pred, "n": n}
