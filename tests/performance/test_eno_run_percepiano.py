"""``eno run --config configs/percepiano.yaml`` end to end on the shortest real performances:
render → embed → tiers (ridge ratings head) + baselines in both grouped protocols → register → tag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eno_hf.performance.percepiano import DIMENSIONS

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_eno_run_percepiano_small(percepiano_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from eno_hf.cli import app

    sets = [f"paths.data_root={tmp_path / 'data'}", "performance.limit=40", "performance.epochs=4",
            "performance.degrade_segments=2", "performance.augment_segments=4", "performance.n_folds=3",
            "performance.n_boot=50"]
    res = CliRunner().invoke(app, ["run", "--config", str(PROJECT_ROOT / "configs/percepiano.yaml"), "--json",
                                   *[a for s in sets for a in ("--set", s)]])
    assert res.exit_code == 0, res.output[-4000:]
    out = json.loads([x for x in res.stdout.splitlines() if x.startswith("{")][-1])
    report = out["metrics"]
    assert report["n"] == 40 and set(report["protocols"]) == {"performer", "piece"}
    for name, prot in report["protocols"].items():
        for key in ("model", "model_audio_only", "baseline_ridge_midi", "baseline_mean"):
            r2 = prot[key]["mean_r2"]
            assert r2 == r2 and r2 < 1.0, (key, r2)  # finite, not a perfect (leaked) fit
        choices = prot["model"]["ridge_choices"]
        assert len(choices) == 3 and all({"ridge", "ridge_midi"} <= set(c) for c in choices)  # chosen in every fold
        assert prot["model"]["interval"]["low"] <= prot["model"]["mean_r2"] + 1e-9
        assert prot["model"]["mean_r2"] != prot["model_audio_only"]["mean_r2"]  # the MIDI statistics are used
        assert {"t2_baseline", "t3_baseline", "t4"} <= set(prot)  # evaluated whether or not the tier trains
        # nested selection: embedder and tiers chosen in each outer fold from its training side
        sel = prot["selection"]
        assert len(sel["folds"]) == 3 and sum(sel["counts"]["embedder"].values()) == 3
        assert set(sel["counts"]["embedder"]) <= {"sota_tagger-mtat-musicnn-prefix+embedding",
                                                  "sota_tagger-mtat-fcn-prefix+embedding"}
        for fold in sel["folds"]:
            assert fold["selection"]["n"] < 40 and fold["selection"]["chosen"] == fold["embedder"]
            assert fold["tier_selection"]["n"] < 40
        for t in ("t2", "t3"):
            # the head's metric exists iff a fold trained the tier and its held-out part could score it
            assert (t in prot) == (sel["evaluated"][t] > 0), t
            assert all(f["tiers"][t] for f in sel["folds"] if f["evaluated"][t]), t
            assert (f"{t}_not_scored" in prot) == (sel["counts"][t] > 0 and t not in prot), t
    # the registered model's choice: on all 40 (the selection rows + T2/T4 sources are all 40 here)
    assert report["selection"]["n"] == 40 and report["embedder"] == report["selection"]["chosen"]
    sel = report["tier_selection"]
    assert sel["n"] == 40 and set(sel["runs"]) == {"all", "-t2", "-t3", "-t4"}
    for t, d in sel["decisions"].items():
        assert report["tiers"][t] == d["kept"] == (d["with"] > d["without"] and d["r2_with"] >= d["r2_without"] - 1e-9)
    # the ratings maps, and the closed-form severity ranking when T2 is kept (quality_fit: ridge)
    assert set(report["ridge_selection"]) == {"ridge", "ridge_midi"} | ({"quality"} if report["tiers"]["t2"] else set())
    registered = Path(out["registered"])
    assert (registered / "config.json").is_file()
    card = (registered / "README.md").read_text()
    assert card.count("this model (audio input: embeddings only)") == 2
    tags = out["tags"]
    assert len(tags) == 1 and list(tags[0]["heads"]["ratings"]) == list(DIMENSIONS)
    assert tags[0]["inputs"] == "embeddings+midi_statistics"  # a .mid file feeds its MIDI statistics too
