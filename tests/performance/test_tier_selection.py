"""``pipeline.select_tiers``: T2/T3/T4 are kept only where performer-grouped CV says they help.

The rule is tested on fixed CV results (each tier kept or dropped for the right reason); the real
path runs on the MIDI statistics of real Beethoven performances as one-frame embeddings.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from eno_hf.embeddings.frames import EmbedderSpec
from eno_hf.performance import pipeline
from eno_hf.performance.config import PerformanceConfig
from eno_hf.performance.data import EmbeddingTable


def _fake_cv(results: dict[tuple[bool, bool, bool], dict]):
    def cv(cfg, table, rows, stats, protocol, spec, t2_data=None, t4_data=None, tiers=None):
        return results[(tiers.t2, tiers.t3, tiers.t4)]
    return cv


def _res(r2: float, t2: float, t2b: float, t3: float, t3b: float, t4: float) -> dict:
    return {"model": {"mean_r2": r2}, "t2": {"spearman": t2}, "t2_baseline": {"spearman": t2b},
            "t3": {"mrr": t3}, "t3_baseline": {"mrr": t3b}, "t4": {"output_pearson": t4}}


def test_each_tier_is_kept_only_when_its_held_out_metric_rises(monkeypatch, percepiano_rows) -> None:
    rows = [r for r in percepiano_rows if r.rated][:30]
    table = EmbeddingTable([torch.zeros(1, 4) for _ in rows], [{"segment_id": r.segment_id} for r in rows])
    src = [r.segment_id for r in rows[:3]]
    t2 = {"table": table.subset([0, 1, 2]), "order": np.zeros(3), "groups": ["a", "a", "a"], "source": src}
    t4 = {"clean": table.subset([0, 1, 2]), "augmented": table.subset([0, 1, 2]), "source": src}
    results = {
        (True, True, True): _res(0.30, t2=0.40, t2b=0.05, t3=0.50, t3b=0.60, t4=0.90),
        (False, True, True): _res(0.30, t2=0.0, t2b=0.05, t3=0.50, t3b=0.60, t4=0.90),   # t2 0.40 vs 0.05: kept
        (True, False, True): _res(0.30, t2=0.40, t2b=0.05, t3=0.0, t3b=0.60, t4=0.90),   # t3 0.50 vs 0.60: dropped
        (True, True, False): _res(0.31, t2=0.40, t2b=0.05, t3=0.50, t3b=0.60, t4=0.80),  # t4 robust, but R² lower with it
        (False, True, False): _res(0.30, t2=0.0, t2b=0.05, t3=0.70, t3b=0.60, t4=0.80),
        (False, False, False): _res(0.30, t2=0.0, t2b=0.05, t3=0.0, t3b=0.60, t4=0.80),
    }
    monkeypatch.setattr(pipeline, "cross_validate", _fake_cv(results))
    cfg = PerformanceConfig(selection_limit=30)
    chosen, rep = pipeline.select_tiers(cfg, rows, table, np.zeros((len(rows), 3)), EmbedderSpec(), t2, t4)
    assert (chosen.t2, chosen.t3, chosen.t4) == (True, False, False)
    assert rep["decisions"]["t2"] == {"with": 0.40, "without": 0.05, "r2_with": 0.30, "r2_without": 0.30, "kept": True}
    assert rep["decisions"]["t3"]["without"] == 0.60 and not rep["decisions"]["t3"]["kept"]
    assert rep["decisions"]["t4"]["with"] > rep["decisions"]["t4"]["without"] and not rep["decisions"]["t4"]["kept"]
    assert chosen.weights == cfg.tiers.weights
    # no T2/T4 data: those tiers are off without a CV run for them
    chosen, rep = pipeline.select_tiers(cfg, rows, table, np.zeros((len(rows), 3)), EmbedderSpec())
    assert (chosen.t2, chosen.t3, chosen.t4) == (False, True, False) and set(rep["decisions"]) == {"t3"}


def test_select_tiers_on_real_performances(beethoven_midi_statistics) -> None:
    """T3 alone on MIDI-statistics "embeddings" of the Beethoven performances: both runs are real CV,
    the ridge ratings head does not depend on the trunk (same R² with and without T3), and the
    decision follows the recorded held-out MRRs."""
    rows, stats = beethoven_midi_statistics
    x = np.sign(stats) * np.log1p(np.abs(stats))
    table = EmbeddingTable([torch.tensor(v[None, :], dtype=torch.float32) for v in x],
                           [{"segment_id": r.segment_id} for r in rows])
    cfg = PerformanceConfig(selection_limit=len(rows), epochs=6, n_folds=3, hidden_dim=32, projection_dim=16,
                            tiers={"t2": False, "t3": True, "t4": False})
    spec = EmbedderSpec(features="embedding")
    chosen, rep = pipeline.select_tiers(cfg, rows, table, stats, spec)
    assert rep["n"] == len(rows) and set(rep["runs"]) == {"all", "-t3"}
    d = rep["decisions"]["t3"]
    assert math.isfinite(d["with"]) and math.isfinite(d["without"]) and d["with"] != d["without"]
    assert d["r2_with"] == pytest.approx(d["r2_without"], abs=1e-12)
    assert chosen.t3 == d["kept"] == (d["with"] > d["without"])
    assert not chosen.t2 and not chosen.t4
