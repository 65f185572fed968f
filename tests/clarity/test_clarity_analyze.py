"""The analyze report: per-feature distributions by subset x instrument, NaN/Inf counts, effect sizes, plots."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from eno_hf.clarity.analyze import analyze_features, cohens_d
from eno_hf.features.fingerprint import FINGERPRINT_NAMES


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for subset, flaw, shift in (("gold", "none", 0.0), ("flawed", "harsh", 2.0)):
        for inst in ("drums", "keys"):
            for _ in range(6):
                v = rng.standard_normal(len(FINGERPRINT_NAMES))
                v[0] += shift
                rows.append({"file": "x", "subset": subset, "instrument": inst, "flaw": flaw,
                             **dict(zip(FINGERPRINT_NAMES, v))})
    return pd.DataFrame(rows)


def test_report_has_every_feature_distribution_and_the_plots(tmp_path):
    frame = _frame()
    frame.loc[0, FINGERPRINT_NAMES[1]] = np.nan
    rep = analyze_features(frame, tmp_path)
    assert set(rep["distributions"]) == set(FINGERPRINT_NAMES)
    cell = rep["distributions"][FINGERPRINT_NAMES[0]]
    assert set(cell) == {"gold/drums", "gold/keys", "flawed/drums", "flawed/keys"}
    g = frame[(frame.subset == "gold") & (frame.instrument == "drums")][FINGERPRINT_NAMES[0]]
    assert cell["gold/drums"]["mean"] == pytest.approx(g.mean()) and cell["gold/drums"]["n"] == 6
    assert cell["gold/drums"]["p5"] <= cell["gold/drums"]["p50"] <= cell["gold/drums"]["p95"]
    assert rep["distributions"][FINGERPRINT_NAMES[1]]["gold/drums"]["n"] == 5   # the NaN is left out ...
    assert rep["nonfinite"][FINGERPRINT_NAMES[1]] == {"nan": 1, "inf": 0}        # ... and counted
    assert rep["nonfinite_total"] == 1
    assert rep["effect_sizes"][0]["feature"] == FINGERPRINT_NAMES[0]            # the shifted one ranks first
    assert rep["effect_sizes"][0]["cohens_d"] == pytest.approx(
        cohens_d(frame[frame.subset == "gold"][FINGERPRINT_NAMES[0]],
                 frame[frame.subset == "flawed"][FINGERPRINT_NAMES[0]]), abs=1e-4)
    for key in ("distributions", "effect_sizes"):
        assert (tmp_path / rep["plots"][key].rsplit("/", 1)[-1]).stat().st_size > 1000
    assert json.loads((tmp_path / "analysis.json").read_text())["files"] == len(frame)
