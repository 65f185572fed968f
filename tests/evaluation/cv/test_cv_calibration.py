"""evaluation.cv.calibration: temperature scaling lowers the ECE of over-confident logits."""

from __future__ import annotations

import numpy as np
import pytest

from eno_hf.evaluation.cv.calibration import expected_calibration_error, fit_temperature, probabilities


def test_ece_and_temperature() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 2000)
    logits = rng.standard_normal((2000, 4))
    logits[np.arange(2000), y] += 1.0
    over = 8.0 * logits  # overconfident
    t = fit_temperature(over, y)
    assert 5.0 < t < 12.0
    assert (expected_calibration_error(y, probabilities("singlelabel", over, t))
            < 0.5 * expected_calibration_error(y, probabilities("singlelabel", over)))
    assert expected_calibration_error(y, np.eye(4)[y]) == pytest.approx(0.0)
    y_missing = y.copy()
    y_missing[:1000] = -1  # missing labels are left out
    assert expected_calibration_error(y_missing, np.eye(4)[y]) == pytest.approx(0.0)
    assert fit_temperature(over, np.full(2000, -1)) == 1.0


def test_probabilities_by_kind() -> None:
    z = np.asarray([[0.0, np.log(3.0)]])
    np.testing.assert_allclose(probabilities("singlelabel", z), [[0.25, 0.75]])
    np.testing.assert_allclose(probabilities("multilabel", z), [[0.5, 0.75]])
