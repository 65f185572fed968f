"""Orchestration: one outer fold of a candidate (``fit_predict``), every fold of every candidate
(``run_cv``) and the whole ``eno cv`` command (``cross_validate``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from eno_hf.evaluation.cv.candidates import Candidate, load_candidates
from eno_hf.evaluation.cv.data import ENSEMBLE_BLOCK, CVData, labels_of, load_cv_data
from eno_hf.evaluation.cv.default import fit_predict_default, frozen_features, load_prefix
from eno_hf.evaluation.cv.folds import PROTOCOLS, folds_file, inner_folds, load_or_make_folds
from eno_hf.evaluation.cv.probes import (
    L2_GRID, MLP_EPOCH_GRID, fit_predict_linear, fit_predict_mlp, fit_predict_prior, fit_predict_ridge,
)
from eno_hf.evaluation.cv.report import report_dir, write_cv_report
from eno_hf.evaluation.cv.scores import fold_metrics
from eno_hf.evaluation.cv.stats import add_reference_differences, corrected_interval
from eno_hf.models.heads import SINGLELABEL

if TYPE_CHECKING:
    from eno_hf.config import Settings

log = logging.getLogger(__name__)


def fit_predict(cand: Candidate, data: CVData, train: np.ndarray, test: np.ndarray, n_inner: int = 3,
                seed: int = 0, l2_grid: Sequence[float] = L2_GRID, epoch_grid: Sequence[int] = MLP_EPOCH_GRID
                ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Select on inner folds of ``train``, refit on ``train``, predict ``test`` (indices into ``data.ids``).

    Returns:
        ``(probs, info)``: head -> ``(len(test), n_out)`` probabilities (a single-label head's
        temperature-scaled, its raw probabilities under ``"<head>:raw"``); ``info`` holds the chosen
        hyper-parameters and temperature.
    """
    if cand.model == "prior":
        return fit_predict_prior(data, train, test)
    if cand.model == "default":
        return fit_predict_default(cand, data, train, test, seed=seed)
    inner = inner_folds(data.groups[train], n_inner)
    X = data.matrix(cand.features)
    if cand.model == "ridge":
        return fit_predict_ridge(data, X, train, test, inner)
    if cand.model == "linear":
        return fit_predict_linear(cand, data, X, train, test, inner, l2_grid)
    return fit_predict_mlp(cand, data, X, train, test, inner, seed, epoch_grid)


def run_cv(data: CVData, candidates: Sequence[Candidate], folds: np.ndarray, n_inner: int = 3,
           reference: str | None = "msd-musicnn-logreg", l2_grid: Sequence[float] = L2_GRID,
           epoch_grid: Sequence[int] = MLP_EPOCH_GRID) -> dict[str, Any]:
    """Cross-validate ``candidates`` on ``folds`` (``(n_repeats, n)`` fold index per recording); the
    outer fold ``f`` of repeat ``r`` uses seed ``r * n_folds + f``.

    Returns:
        ``{"candidates": {name: {"description", "spec", "metrics": {"head/metric": interval + "folds"},
        "vs_reference": {...}, "info": [...]}}, "n_recordings", "n_folds", "n_repeats", "reference"}``
        (intervals: ``stats.corrected_interval``).
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
                rows.append(fold_metrics(data.heads, labels_of(data, test), probs))
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


def cross_validate(settings: Settings, candidates: Sequence[str] | None = None, n_folds: int = 5, n_repeats: int = 3,
                   seed: int = 0, n_inner: int = 3, out_dir: str | Path | None = None,
                   reference: str = "msd-musicnn-logreg", folds_dir: str | Path | None = None,
                   dataset_path: str | Path | None = None, protocol: str = "artist") -> dict[str, Any]:
    """Build (or reuse) the dataset of ``settings``, cache the features the candidates need, run
    ``run_cv`` on fixed saved folds and write the report.

    Args:
        settings: the project settings.
        candidates: names of ``configs/cv/*.yaml`` candidates (default: all).
        out_dir: default ``{data_root}/cv/{dataset}-{version}``.
        folds_dir: where the folds file (``folds.folds_file``) is kept (default
            ``{data_root}/cv/{dataset}-{version}``), so runs with other ``out_dir`` s share the folds.
        dataset_path: a saved dataset to use as is (default: ``build_dataset(settings)``, which
            hashes every source file to find the cached version).
        protocol: ``artist`` (artist-grouped outer and inner folds) or ``random`` (stratified,
            no grouping, outer and inner: every clip its own group); ``folds.make_folds``.

    Returns:
        the report dict (``"protocol"`` and ``"folds_file"`` included), with ``"json"`` /
        ``"markdown"`` paths added.

    Raises:
        KeyError: unknown candidate name. ValueError: unknown protocol.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown CV protocol {protocol!r} (one of {PROTOCOLS})")
    from datasets import load_from_disk

    from eno_hf.data.build import build_dataset

    cands = load_candidates(list(candidates) if candidates else None)
    ds_path = Path(dataset_path) if dataset_path else Path(build_dataset(settings, progress=False).path)
    dataset = load_from_disk(str(ds_path))
    blocks = sorted({b for c in cands for b in c.features})
    data = load_cv_data(dataset, ds_path, settings.paths.data_root, settings.model.heads, blocks)
    data.settings = settings
    if any(c.model == "default" for c in cands) or ENSEMBLE_BLOCK in blocks:
        data.prefix = load_prefix(settings, dataset, ds_path, settings.paths.data_root, data.ids)
        if ENSEMBLE_BLOCK in blocks:
            data.blocks[ENSEMBLE_BLOCK] = frozen_features(settings, data.prefix, len(data.ids))
    default_dir = report_dir(settings.paths.data_root, ds_path.parent.name, ds_path.name)
    out = Path(out_dir) if out_dir else default_dir
    single = next((h.name for h in data.heads if h.kind == SINGLELABEL), None)
    strata = data.labels[single] if single else np.zeros(len(data.ids), dtype=np.int64)
    name = folds_file(n_folds, n_repeats, seed, protocol)
    folds = load_or_make_folds(Path(folds_dir or default_dir) / name, list(data.ids), list(data.groups),
                               strata, n_folds, n_repeats, seed, protocol)
    if protocol == "random":  # no artist grouping in model selection either
        data.groups = np.asarray(data.ids, dtype=object)
    report = run_cv(data, cands, folds, n_inner=n_inner, reference=reference)
    report["dataset"] = str(ds_path)
    report["protocol"] = protocol
    report["folds_file"] = name
    js, md = write_cv_report(report, out)
    report["json"], report["markdown"] = str(js), str(md)
    return report
