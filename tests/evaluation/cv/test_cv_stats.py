"""evaluation.cv.stats: the corrected repeated k-fold interval and paired differences."""

from __future__ import annotations

import numpy as np
import pytest

from eno_hf.evaluation.cv.stats import add_reference_differences, corrected_interval


def test_corrected_interval_is_wider_than_naive() -> None:
    vals = [0.70, 0.72, 0.68, 0.75, 0.71, 0.69, 0.73, 0.70, 0.74, 0.72]
    iv = corrected_interval(vals, n_folds=5)
    naive = 2.262 * np.std(vals, ddof=1) / np.sqrt(len(vals))
    assert iv["ci_low"] < np.mean(vals) < iv["ci_high"]
    assert iv["half_width"] > 1.5 * naive
    assert np.isnan(corrected_interval([0.5], 5)["ci_low"])


def test_reference_differences_are_paired_on_the_folds() -> None:
    a = {"metrics": {"m": {"folds": [0.5, 0.6, 0.7, 0.8]}}}
    b = {"metrics": {"m": {"folds": [0.4, 0.5, 0.6, 0.7]}}}
    report = add_reference_differences({"n_folds": 2, "candidates": {"a": a, "b": b}}, "b")
    diff = report["candidates"]["a"]["vs_reference"]["m"]
    assert diff["mean"] == pytest.approx(0.1) and diff["half_width"] == pytest.approx(0.0, abs=1e-12)
    assert add_reference_differences({"n_folds": 2, "candidates": {"a": dict(a)}}, "absent")["reference"] == "absent"
