"""evaluation.cv.run + report: candidates ranked on the same folds, the report written and merged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eno_hf.evaluation.cv import Candidate, combine_reports, make_folds, markdown_table, run_cv, write_cv_report


def test_run_cv_ranks_informative_features_above_noise_and_prior(make_cv_data, tmp_path: Path) -> None:
    d = make_cv_data(n=96, n_groups=24)
    folds = make_folds(d.ids, d.groups, d.labels["quadrant"], n_folds=3, n_repeats=1, seed=0)
    cands = [Candidate("prior", "prior"), Candidate("noise", "linear", ["noise"]),
             Candidate("good", "linear", ["good"]), Candidate("good-mlp", "mlp", ["good"]),
             Candidate("good-ridge", "ridge", ["good"])]
    rep = run_cv(d, cands, folds, n_inner=2, reference="noise", l2_grid=(1e-2,), epoch_grid=(15,))
    m = {n: c["metrics"] for n, c in rep["candidates"].items()}
    assert m["prior"]["descriptors/roc_auc_macro"]["mean"] == pytest.approx(0.5)
    assert m["good"]["quadrant/f1_macro"]["mean"] > m["noise"]["quadrant/f1_macro"]["mean"] + 0.3
    assert m["good"]["descriptors/roc_auc_macro"]["mean"] > 0.8
    assert m["good-mlp"]["quadrant/accuracy"]["mean"] > 0.6
    assert m["good-ridge"]["quadrant/f1_macro"]["mean"] > m["noise"]["quadrant/f1_macro"]["mean"] + 0.3
    assert m["good-ridge"]["descriptors/roc_auc_macro"]["mean"] > 0.8
    assert rep["candidates"]["good"]["vs_reference"]["quadrant/f1_macro"]["ci_low"] > 0
    assert len(m["good"]["quadrant/f1_macro"]["folds"]) == 3
    js, md = write_cv_report(rep, tmp_path)
    text = md.read_text()
    assert "| good |" in text and "[" in text and "Difference to `noise`" in text
    assert "| candidate | quadrant macro-F1 | quadrant accuracy |" in text  # columns named after the heads
    assert "descriptors macro ROC-AUC" in text
    assert json.loads(js.read_text())["n_folds"] == 3
    assert markdown_table(rep) == text
    # candidates run in separate processes on the same folds combine into the same report
    parts = []
    for i, names in enumerate([["noise"], ["prior", "good", "good-mlp", "good-ridge"]]):
        part = {**rep, "candidates": {n: rep["candidates"][n] for n in names}}
        parts.append(write_cv_report(part, tmp_path / f"p{i}")[0])
    both = combine_reports(parts, reference="noise")
    for k, iv in rep["candidates"]["good"]["vs_reference"].items():
        assert both["candidates"]["good"]["vs_reference"][k]["mean"] == pytest.approx(iv["mean"])
    other = write_cv_report({**rep, "folds_file": "folds-k5-r3-s1.json"}, tmp_path / "other")[0]
    with pytest.raises(ValueError, match="different folds"):
        combine_reports([parts[0], other])


def test_cli_rejects_unknown_candidate() -> None:
    from typer.testing import CliRunner

    from eno_hf.cli import app

    res = CliRunner().invoke(app, ["cv", "--candidates", "no-such-model"])
    assert res.exit_code == 2
    assert "no-such-model" in res.output
