"""Flaw classifier + correction regressor on fingerprints, compared with boosting and linear baselines.

Families, fitted on the same splits in one run (scikit-learn):

- ``random_forest`` (the plan): ``RandomForestClassifier`` and ``RandomForestRegressor`` (native
  multi-output), ``n_estimators=500``, ``max_depth=8``;
- ``gradient_boosting``: ``HistGradientBoostingClassifier`` and one ``HistGradientBoostingRegressor``
  per output (``MultiOutputRegressor``), library defaults;
- ``linear``: ``StandardScaler`` + ``LogisticRegression`` and ``StandardScaler`` + ``Ridge``.

Inputs: the 64 fingerprint columns (``FINGERPRINT_NAMES``, float32). Classification target: ``flaw``
(``none`` = gold). Regression target: the ``target_*`` correction vector (rows without a known
correction are left out of regression). Splits are grouped by source recording (``group``: a gold
file and all its variants stay on one side): an 80/20 ``GroupShuffleSplit`` hold-out and a
``StratifiedGroupKFold`` cross-validation over all files (``eno_hf.data.folds.group_folds``).
Metrics: accuracy and macro-F1 of the flaw, MAE and R² per correction output (and their means).
Intervals: 95 % percentile intervals of a group (cluster) bootstrap over the pooled out-of-fold
predictions (``models.bootstrap`` resamples of whole groups), next to the fold mean and standard deviation.

The registered model is the ``random_forest`` pair fitted on the 80 % training side; its hold-out
metrics are the ``test`` metrics of the card.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import (HistGradientBoostingClassifier, HistGradientBoostingRegressor,
                              RandomForestClassifier, RandomForestRegressor)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, r2_score
from sklearn.model_selection import GroupShuffleSplit
from sklearn.multioutput import MultiOutputRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from eno_hf.clarity.config import ModelsConfig
from eno_hf.data.folds import fold_pairs, group_folds
from eno_hf.features.fingerprint import FINGERPRINT_NAMES
from eno_hf.utils.io import atomic_write_json

__all__ = ["FAMILIES", "make_models", "split_holdout", "score", "train_and_compare"]

FAMILIES = ("random_forest", "gradient_boosting", "linear")


def make_models(family: str, cfg: ModelsConfig):
    """``(classifier, regressor)`` of one family (unfitted)."""
    if family == "random_forest":
        return (RandomForestClassifier(n_estimators=cfg.n_estimators, max_depth=cfg.max_depth,
                                       random_state=cfg.seed, n_jobs=cfg.n_jobs),
                RandomForestRegressor(n_estimators=cfg.n_estimators, max_depth=cfg.max_depth,
                                      random_state=cfg.seed, n_jobs=cfg.n_jobs))
    if family == "gradient_boosting":
        return (HistGradientBoostingClassifier(random_state=cfg.seed),
                MultiOutputRegressor(HistGradientBoostingRegressor(random_state=cfg.seed)))
    if family == "linear":
        return (make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
                make_pipeline(StandardScaler(), Ridge(alpha=1.0)))
    raise ValueError(f"unknown model family {family!r}; expected one of {FAMILIES}")


def split_holdout(groups: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, test)`` of a grouped hold-out split (no group on both sides)."""
    gss = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
    return next(gss.split(np.zeros(len(groups)), groups=groups))


def score(y_cls: np.ndarray, p_cls: np.ndarray, y_reg: np.ndarray | None, p_reg: np.ndarray | None,
          outputs: list[str]) -> dict[str, Any]:
    """Flaw accuracy / macro-F1 and per-output MAE / R² (plus means)."""
    out: dict[str, Any] = {"flaw_accuracy": float(accuracy_score(y_cls, p_cls)),
                           "flaw_macro_f1": float(f1_score(y_cls, p_cls, average="macro", zero_division=0))}
    if y_reg is not None and len(y_reg):
        mae = mean_absolute_error(y_reg, p_reg, multioutput="raw_values")
        r2 = r2_score(y_reg, p_reg, multioutput="raw_values")
        out["correction_mae_mean"] = float(np.mean(mae))
        out["correction_r2_mean"] = float(np.mean(r2))
        out["per_output"] = {o: {"mae": float(m), "r2": float(r)} for o, m, r in zip(outputs, mae, r2)}
    return out


def _fit_predict(family: str, cfg: ModelsConfig, X: np.ndarray, y_cls: np.ndarray, y_reg: np.ndarray,
                 has_reg: np.ndarray, tr: np.ndarray, te: np.ndarray):
    clf, reg = make_models(family, cfg)
    clf.fit(X[tr], y_cls[tr])
    tr_r = tr[has_reg[tr]]
    reg.fit(X[tr_r], y_reg[tr_r])
    return clf, reg, clf.predict(X[te]), reg.predict(X[te])


def _bootstrap(groups: np.ndarray, y_cls, p_cls, y_reg, p_reg, has_reg, outputs, n: int, seed: int
               ) -> dict[str, list[float]]:
    rng = np.random.default_rng(seed)
    uniq, inv = np.unique(groups, return_inverse=True)
    members = [np.nonzero(inv == g)[0] for g in range(len(uniq))]
    keys = ["flaw_accuracy", "flaw_macro_f1", "correction_mae_mean", "correction_r2_mean"]
    samples: dict[str, list[float]] = {k: [] for k in keys}
    for _ in range(n):
        idx = np.concatenate([members[g] for g in rng.integers(0, len(uniq), len(uniq))])
        r = idx[has_reg[idx]]
        s = score(y_cls[idx], p_cls[idx], y_reg[r] if len(r) > 1 else None, p_reg[r] if len(r) > 1 else None,
                  outputs)
        for k in keys:
            if k in s:
                samples[k].append(s[k])
    return {k: [round(float(np.percentile(v, 2.5)), 4), round(float(np.percentile(v, 97.5)), 4)]
            for k, v in samples.items() if v}


def train_and_compare(frame: pd.DataFrame, target_cols: list[str], cfg: ModelsConfig,
                      families: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Hold-out and grouped CV of every family; returns metrics and the fitted registered pair.

    Returns:
        ``{"families": {family: {"test": metrics, "cv": {"folds", "mean", "std", "ci95", "pooled"}}},
        "split": {...}, "model": (classifier, regressor) of random_forest fitted on train,
        "test_index": array, "classes": [...], "outputs": [...]}``.

    Raises:
        ValueError: fewer than two flaw classes or fewer groups than folds.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # OpenMP/BLAS spin-waits on a shared 2-core box cost 50x
        return _train_and_compare(frame, target_cols, cfg, families)


def _train_and_compare(frame, target_cols, cfg, families):
    families = families or (FAMILIES if cfg.compare else ("random_forest",))
    X = frame[list(FINGERPRINT_NAMES)].to_numpy(dtype=np.float32)
    y_cls = frame["flaw"].astype(str).to_numpy()
    y_reg = frame[target_cols].to_numpy(dtype=np.float64)
    has_reg = ~np.isnan(y_reg).any(axis=1)
    y_reg = np.nan_to_num(y_reg)
    groups = frame["group"].astype(str).to_numpy()
    outputs = [c.removeprefix("target_") for c in target_cols]
    if len(set(y_cls)) < 2:
        raise ValueError(f"need at least two flaw classes, got {sorted(set(y_cls))}")
    n_groups = len(set(groups))
    folds = min(cfg.cv_folds, n_groups)
    if folds < 2:
        raise ValueError(f"need at least 2 groups for grouped CV, got {n_groups}")
    tr, te = split_holdout(groups, cfg.test_size, cfg.seed)
    assert not set(groups[tr]) & set(groups[te])
    fold_idx = fold_pairs(group_folds(groups, folds, cfg.seed, strata=y_cls))  # StratifiedGroupKFold, shuffled

    result: dict[str, Any] = {"families": {}}
    registered = None
    for fam in families:
        clf, reg, pc, pr = _fit_predict(fam, cfg, X, y_cls, y_reg, has_reg, tr, te)
        rte = has_reg[te]
        test = score(y_cls[te], pc, y_reg[te][rte], pr[rte], outputs)
        if fam == "random_forest":
            registered = (clf, reg)
        oof_c = np.empty(len(X), dtype=object)
        oof_r = np.zeros_like(y_reg)
        per_fold = []
        for ftr, fte in fold_idx:
            _, _, fc, fr = _fit_predict(fam, cfg, X, y_cls, y_reg, has_reg, ftr, fte)
            oof_c[fte], oof_r[fte] = fc, fr
            m = has_reg[fte]
            per_fold.append(score(y_cls[fte], fc, y_reg[fte][m], fr[m], outputs))
        keys = ["flaw_accuracy", "flaw_macro_f1", "correction_mae_mean", "correction_r2_mean"]
        pooled = score(y_cls, oof_c.astype(str), y_reg[has_reg], oof_r[has_reg], outputs)
        result["families"][fam] = {
            "test": test,
            "cv": {"folds": len(fold_idx),
                   "mean": {k: round(float(np.mean([f[k] for f in per_fold if k in f])), 4) for k in keys},
                   "std": {k: round(float(np.std([f[k] for f in per_fold if k in f])), 4) for k in keys},
                   "ci95": _bootstrap(groups, y_cls, oof_c.astype(str), y_reg, oof_r, has_reg, outputs,
                                      cfg.bootstrap, cfg.seed),
                   "pooled": pooled},
        }
    result["split"] = {"train_files": int(len(tr)), "test_files": int(len(te)),
                       "train_groups": int(len(set(groups[tr]))), "test_groups": int(len(set(groups[te]))),
                       "cv_folds": len(fold_idx), "grouped_by": "source recording (group)",
                       "regression_rows": int(has_reg.sum())}
    result["model"] = registered
    result["test_index"] = te
    result["classes"] = [str(c) for c in registered[0].classes_] if registered else []
    result["outputs"] = outputs
    return result


def save_model(model_dir: Path, sklearn_dir: Path, clf, reg, classes: list[str], outputs: list[str],
               metrics: dict[str, Any], extra: dict[str, Any]) -> Path:
    """Write ``config.json`` into ``model_dir`` and ``classifier.joblib`` / ``regressor.joblib`` into
    ``sklearn_dir``.

    The joblib files are pickles written by this run and loaded only by this run's ``export`` step
    and ``benchmarks/clarity.py``; they stay out of ``model_dir`` (which the hub copies and others may
    pull): the portable, safe artifacts are the ONNX files that ``export`` adds there.
    """
    import joblib
    import sklearn

    model_dir.mkdir(parents=True, exist_ok=True)
    sklearn_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(clf, sklearn_dir / "classifier.joblib")
    joblib.dump(reg, sklearn_dir / "regressor.joblib")
    config = {"model_type": "eno-clarity", "library": f"scikit-learn {sklearn.__version__}",
              "feature_columns": list(FINGERPRINT_NAMES), "input_dim": len(FINGERPRINT_NAMES),
              "classes": classes, "correction_outputs": outputs, "metrics": metrics, **extra}
    atomic_write_json(model_dir / "config.json", config, indent=1)
    return model_dir


def _fmt(x: Any) -> str:
    return f"{x:.3f}" if isinstance(x, float) else str(x)


def write_card(model_dir: Path, metrics: dict[str, Any], info: dict[str, Any]) -> Path:
    """Write the model card ``README.md`` (metrics of every family, with CV intervals)."""
    fams = metrics["families"]
    lines = ["---", "library_name: sklearn", "tags: [audio, mixing, onnx, eno, random-forest]", "---", "",
             "# eno-clarity: mix-flaw classifier + correction regressor", "",
             "Input: the 64-float eno fingerprint (`eno_hf.features.fingerprint`, columns in "
             "`config.json` `feature_columns`) of a mono stem normalized to "
             f"{info.get('target_lufs')} LUFS at {info.get('sample_rate')} Hz.",
             f"Outputs: flaw class ({', '.join(info.get('classes', []))}) and the correction vector "
             f"({', '.join(info.get('outputs', []))}).", "",
             f"Data: {info.get('data')}", "",
             "Split (grouped by source recording: a gold file and all its variants on one side): "
             + ", ".join(f"{k} {v}" for k, v in metrics["split"].items() if isinstance(v, int)), "",
             "Intervals: 95 % group-bootstrap percentile intervals over pooled out-of-fold predictions.", "",
             "| family | test acc | test macro-F1 | test MAE | test R² | CV acc [95 % CI] | CV macro-F1 [95 % CI] "
             "| CV MAE [95 % CI] | CV R² [95 % CI] |",
             "|---|---|---|---|---|---|---|---|---|"]
    for fam, m in fams.items():
        t, cv = m["test"], m["cv"]

        def ci(k):
            lo, hi = cv["ci95"].get(k, [None, None])
            return f"{_fmt(cv['mean'][k])} [{_fmt(lo)}, {_fmt(hi)}]"
        lines.append(f"| {fam} | {_fmt(t['flaw_accuracy'])} | {_fmt(t['flaw_macro_f1'])} | "
                     f"{_fmt(t.get('correction_mae_mean'))} | {_fmt(t.get('correction_r2_mean'))} | "
                     f"{ci('flaw_accuracy')} | {ci('flaw_macro_f1')} | {ci('correction_mae_mean')} | "
                     f"{ci('correction_r2_mean')} |")
    rf = fams.get("random_forest", {}).get("test", {}).get("per_output", {})
    if rf:
        lines += ["", "Random forest, hold-out, per correction output:", "", "| output | MAE | R² |", "|---|---|---|"]
        lines += [f"| {o} | {_fmt(v['mae'])} | {_fmt(v['r2'])} |" for o, v in rf.items()]
    if info.get("onnx"):
        lines += ["", f"ONNX: {info['onnx']}"]
    lines += ["", "Limitations: trained on Hydrogen drum samples and General-MIDI renderings with "
              "synthetic (pedalboard) flaws of known parameters; real mix problems are less tidy."]
    path = model_dir / "README.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
