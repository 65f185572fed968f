"""Repeated cross-validation of model candidates (``eno cv``): artist-grouped by default, or
stratified random folds with no grouping (``--protocol random``, the protocol of Panda et al., IEEE
TAFFC 2018, on 4Q).

Protocol (what every headline figure of ``docs/quality.md`` comes from):

- Folds (``folds``): ``n_repeats`` x ``n_folds`` artist-grouped folds over **all** recordings of the
  dataset (every split), stratified by the single-label head, fixed by seed and saved to
  ``folds-k{k}-r{r}-s{seed}.json``, so every candidate and baseline is scored on the same folds
  (``--protocol random``: stratified folds over the recordings, ``folds-random-k{k}-r{r}-s{seed}.json``,
  and ungrouped inner folds).
- Model selection only inside the training part of each outer fold: inner artist-grouped folds for
  the probes (``probes``: L2 strength, ridge alpha, MLP epochs), a validation part with the
  config's share for the default (``default``: epoch choice and early stopping, as ``eno train``).
  Temperature scaling of the single-label head on the same inner predictions (``calibration``).
- Metrics per outer test fold by head kind (``scores``): single-label macro-F1, accuracy, ECE
  before / after temperature scaling; multi-label macro ROC-AUC and PR-AUC.
- Intervals (``stats``): mean over the ``n_folds * n_repeats`` folds with the corrected repeated
  k-fold t interval (Nadeau & Bengio 2003); differences to a reference candidate paired on the folds.

Candidates are declared in ``configs/cv/{name}.yaml`` (``candidates``). The default is trained per
fold through ``eno_hf.training.train.fit``, the trainer of ``eno train`` (``default``); the probes
read per-recording features cached once per dataset version (``features``). ``run`` orchestrates,
``report`` writes ``cv_report.json`` / ``.md``.

The public names of the submodules are importable from here.
"""

from __future__ import annotations

from eno_hf.evaluation.cv.calibration import ECE_BINS, expected_calibration_error, fit_temperature, probabilities
from eno_hf.evaluation.cv.candidates import (
    BASELINES, CANDIDATES_DIR, Candidate, candidate_names, load_candidate, load_candidates,
)
from eno_hf.evaluation.cv.data import ENSEMBLE_BLOCK, CVData, PrefixPart, load_cv_data
from eno_hf.evaluation.cv.folds import inner_folds, load_or_make_folds, make_folds
from eno_hf.evaluation.cv.probes import (
    L2_GRID, MLP_EPOCH_GRID, RIDGE_ALPHAS, fit_linear, fit_mlp, ridge_path, standardize,
)
from eno_hf.evaluation.cv.report import combine_reports, markdown_table, report_dir, write_cv_report
from eno_hf.evaluation.cv.run import cross_validate, fit_predict, run_cv
from eno_hf.evaluation.cv.scores import KIND_METRICS, fold_metrics, macro_average_precision, macro_roc_auc
from eno_hf.evaluation.cv.stats import add_reference_differences, corrected_interval


def __getattr__(name: str):  # noqa: ANN202  (module attribute hook)
    """``CANDIDATES``: name -> ``Candidate`` of every ``configs/cv/*.yaml``, read when asked for."""
    if name == "CANDIDATES":
        return {c.name: c for c in load_candidates()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BASELINES", "CANDIDATES_DIR", "ECE_BINS", "ENSEMBLE_BLOCK", "KIND_METRICS", "L2_GRID", "MLP_EPOCH_GRID",
    "RIDGE_ALPHAS", "CVData", "Candidate", "PrefixPart", "add_reference_differences", "candidate_names",
    "combine_reports", "corrected_interval", "cross_validate", "expected_calibration_error", "fit_linear",
    "fit_mlp", "fit_predict", "fit_temperature", "fold_metrics", "inner_folds", "load_candidate",
    "load_candidates", "load_cv_data", "load_or_make_folds", "macro_average_precision", "macro_roc_auc",
    "make_folds", "markdown_table", "probabilities", "report_dir", "ridge_path", "run_cv", "standardize",
    "write_cv_report",
]
