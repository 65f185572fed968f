"""``eno_hf.performance.selection``: the embedder and the tiers, chosen from training rows only.

- ``select_tiers``: T2/T3/T4 are kept only where performer-grouped CV says they help. The rule is
  tested on fixed CV results (each tier kept or dropped for the right reason); the real path runs
  on the MIDI statistics of real Beethoven performances as one-frame embeddings.
- ``select_embedder``: the embedder whose frames carry the ratings wins, judged on the given rows.
- ``selection.cross_validate`` chooses inside every outer fold from its training side only.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from eno_hf.embeddings.frames import EmbedderSpec
from eno_hf.performance import selection
from eno_hf.performance.config import PerformanceConfig
from eno_hf.performance.data import EmbeddingTable


def _fake_cv(results: dict[tuple[bool, bool, bool], dict]):
    def cv(cfg, data, rows, stats, protocol, tiers=None):
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
    monkeypatch.setattr(selection, "cross_validate", _fake_cv(results))
    cfg = PerformanceConfig(selection_limit=30)
    chosen, rep = selection.select_tiers(cfg, rows, table, np.zeros((len(rows), 3)), EmbedderSpec(), t2, t4)
    assert (chosen.t2, chosen.t3, chosen.t4) == (True, False, False)
    assert rep["decisions"]["t2"] == {"with": 0.40, "without": 0.05, "r2_with": 0.30, "r2_without": 0.30, "kept": True}
    assert rep["decisions"]["t3"]["without"] == 0.60 and not rep["decisions"]["t3"]["kept"]
    assert rep["decisions"]["t4"]["with"] > rep["decisions"]["t4"]["without"] and not rep["decisions"]["t4"]["kept"]
    assert chosen.weights == cfg.tiers.weights
    # no T2/T4 data: those tiers are off without a CV run for them
    chosen, rep = selection.select_tiers(cfg, rows, table, np.zeros((len(rows), 3)), EmbedderSpec())
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
    chosen, rep = selection.select_tiers(cfg, rows, table, stats, spec)
    assert rep["n"] == len(rows) and set(rep["runs"]) == {"all", "-t3"}
    d = rep["decisions"]["t3"]
    assert math.isfinite(d["with"]) and math.isfinite(d["without"]) and d["with"] != d["without"]
    assert d["r2_with"] == pytest.approx(d["r2_without"], abs=1e-12)
    assert chosen.t3 == d["kept"] == (d["with"] > d["without"])
    assert not chosen.t2 and not chosen.t4
def test_selection_rows_spread_over_every_piece(percepiano_rows) -> None:
    from collections import Counter

    from eno_hf.performance.selection import selection_rows

    rows = [r for r in percepiano_rows if r.rated]
    sub = selection_rows(rows, 240)
    assert len(sub) == 240 and len({r.segment_id for r in sub}) == 240
    per_piece = Counter(r.piece for r in sub)
    assert set(per_piece) == {r.piece for r in rows}                 # every piece is represented
    assert max(per_piece.values()) < 120                               # no piece dominates (the 120 shortest: 107 of one)
    assert selection_rows(rows, 10_000) == sorted(rows, key=lambda r: r.segment_id)




def _one_frame(x: np.ndarray, rows) -> EmbeddingTable:
    return EmbeddingTable([torch.tensor(v[None, :], dtype=torch.float32) for v in x],
                          [{"segment_id": r.segment_id} for r in rows])


def _beethoven_inputs(beethoven_midi_statistics, leak_rows=()):
    """Three one-frame "embedders" of the real Beethoven performances: ``informative`` (their MIDI
    statistics), ``noise`` (seeded Gaussian), and ``leak`` (the ratings themselves, on
    ``leak_rows`` only; noise elsewhere)."""
    rows, stats = beethoven_midi_statistics
    rng = np.random.default_rng(0)
    y = np.stack([r.labels for r in rows])
    leak = rng.normal(size=(len(rows), y.shape[1]))
    leak[list(leak_rows)] = y[list(leak_rows)] * 100.0
    x = {"informative": np.sign(stats) * np.log1p(np.abs(stats)), "noise": rng.normal(size=stats.shape), "leak": leak}
    return {k: selection.EmbedderInputs.fixed(EmbedderSpec(name=k, features="embedding"), _one_frame(v, rows))
            for k, v in x.items()}


def test_select_embedder_judges_only_the_given_rows(beethoven_midi_statistics) -> None:
    """On the first 60 rows the informative frames beat noise, and ``leak`` (perfect on the other
    126 rows, noise on these) loses; given every row, ``leak`` wins: the rows outside ``idx`` are
    never looked at."""
    rows, _ = beethoven_midi_statistics
    idx = np.arange(60)
    inputs = _beethoven_inputs(beethoven_midi_statistics, leak_rows=range(60, len(rows)))
    cfg = PerformanceConfig(n_folds=3)
    chosen, rep = selection.select_embedder(cfg, inputs, rows, idx)
    assert chosen == rep["chosen"] == "informative" and rep["n"] == 60
    assert rep["inner_r2"]["informative"] > rep["inner_r2"]["noise"] + 0.05
    assert rep["inner_r2"]["leak"] < rep["inner_r2"]["informative"]
    chosen_all, rep_all = selection.select_embedder(cfg, inputs, rows, np.arange(len(rows)))
    assert chosen_all == "leak" and rep_all["inner_r2"]["leak"] > rep["inner_r2"]["leak"]
    one = {"informative": inputs["informative"]}
    assert selection.select_embedder(cfg, one, rows, idx) == ("informative", {})


def test_cross_validate_chooses_inside_each_outer_fold(monkeypatch, beethoven_midi_statistics, caplog) -> None:
    """Nested selection: ``select_procedure`` runs once per outer fold on exactly its training rows,
    the fold uses what it chose, and the report records each choice. ``leak`` is perfect on the
    first fold's *test* performers only: that fold, which never sees them, picks ``informative``;
    the other two, whose training side holds them, pick ``leak``."""
    from eno_hf.performance.samplers import grouped_folds

    rows, stats = beethoven_midi_statistics
    folds = grouped_folds([r.performer for r in rows], 3, 0)
    inputs = _beethoven_inputs(beethoven_midi_statistics, leak_rows=folds[0][1])
    calls = []
    real = selection.select_procedure

    def spy(cfg, inputs, rows, stats, idx, tiers=None):
        calls.append(np.asarray(idx))
        return real(cfg, inputs, rows, stats, idx, tiers=tiers)

    monkeypatch.setattr(selection, "select_procedure", spy)
    cfg = PerformanceConfig(n_folds=3, n_boot=20, tiers={"t2": False, "t3": False, "t4": False})
    with caplog.at_level("INFO", logger="eno_hf.performance.selection"):
        res = selection.cross_validate(cfg, inputs, rows, stats, "performer")
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("cross-validation performer")]
    assert [m.split(",")[0] for m in progress] == [f"cross-validation performer: fold {f}/3 done" for f in (1, 2, 3)]
    assert progress[-1].endswith("~0 s left")  # progress on minutes-long folds, one line per fold
    assert [sorted(c) for c in calls] == [sorted(tr) for tr, _ in folds]
    sel = res["selection"]
    key = {k: v.spec.key for k, v in inputs.items()}
    assert [f["embedder"] for f in sel["folds"]] == [key["informative"], key["leak"], key["leak"]]
    assert sel["counts"]["embedder"] == {key["informative"]: 1, key["leak"]: 2}
    assert all(f["selection"]["n"] == len(tr) for f, (tr, _) in zip(sel["folds"], folds))
    assert sel["counts"]["t3"] == 0 and "t3" not in res and "t3_baseline" in res
    assert sel["evaluated"] == {"t2": 0, "t3": 0} and not any(f"{t}_not_scored" in res for t in ("t2", "t3"))
    # without the leak every fold picks the informative frames, and the figures are those of that
    # embedder fixed: each fold used what it chose
    clean = selection.cross_validate(cfg, {k: inputs[k] for k in ("informative", "noise")}, rows, stats, "performer")
    assert clean["selection"]["counts"]["embedder"] == {key["informative"]: 3}
    fixed = selection.cross_validate(cfg, inputs["informative"], rows, stats, "performer", tiers=cfg.tiers)
    assert "selection" not in fixed
    assert fixed["model"]["mean_r2"] == pytest.approx(clean["model"]["mean_r2"], abs=1e-12)
    assert res["model_audio_only"]["mean_r2"] < clean["model_audio_only"]["mean_r2"]  # leak: noise on its test rows


def test_cross_validate_on_the_datasets_performer_protocol(monkeypatch, beethoven_midi_statistics) -> None:
    """``performer4fold`` on the Beethoven performances: 4 folds, each trains on neither its held-out
    performers nor the set-aside ones (performers 2 and 3); the pooled figures cover the held-out
    performances only, and each fold's model is also scored on the set-aside test set."""
    from eno_hf.performance.protocols import protocol_folds

    rows, stats = beethoven_midi_statistics
    pf = protocol_folds(rows, "performer4fold")
    aside = {rows[i].performer for i in pf.set_aside}
    assert aside == {"2", "3"}
    calls = []
    real = selection.select_procedure

    def spy(cfg, inputs, rows_, stats_, idx, tiers=None):
        calls.append({rows_[i].performer for i in idx})
        return real(cfg, inputs, rows_, stats_, idx, tiers=tiers)

    monkeypatch.setattr(selection, "select_procedure", spy)
    cfg = PerformanceConfig(n_boot=20, tiers={"t2": False, "t3": False, "t4": False})
    inputs = _beethoven_inputs(beethoven_midi_statistics)
    res = selection.cross_validate(cfg, {k: inputs[k] for k in ("informative", "noise")}, rows, stats, "performer4fold")
    assert res["folds"] == 4 and len(calls) == 4
    for f, trained in enumerate(calls):
        held = {rows[i].performer for i in np.flatnonzero(pf.fold_of == f)}
        assert held and not trained & (held | aside)
    assert res["n_evaluated"] == res["model"]["n"] == len(pf.evaluated) == 8 * 14  # performers 4-24: 8 x 14 passages
    assert res["set_aside"] == len(pf.set_aside) and len(res["set_aside_test"]["mean_r2_per_fold"]) == 4
    assert np.isfinite([res["set_aside_test"]["mean_r2"], res["set_aside_test"]["ridge_midi_mean_r2"]]).all()
