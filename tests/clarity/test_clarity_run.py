"""One small real end-to-end run (drum samples + rendered MIDI): outputs, schema, parity, bad files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from eno_hf.features.fingerprint import FINGERPRINT_NAMES

pytestmark = pytest.mark.slow


def test_csv_schema_and_metadata(clarity_run):
    s, res = clarity_run
    frame = pd.read_csv(res["features_csv"])
    assert list(frame.columns[:4]) == ["file", "subset", "instrument", "flaw"]
    assert list(frame.columns[4:68]) == list(FINGERPRINT_NAMES)
    assert res["feature_columns"] == list(FINGERPRINT_NAMES)
    assert set(frame.subset) == {"gold", "flawed"}
    assert set(frame.instrument) == {"drums", "bass", "guitar", "keys", "vocals"}
    assert (frame[frame.subset == "gold"].flaw == "none").all()
    pq = pd.read_parquet(res["features_parquet"])
    assert list(pq.columns) == list(frame.columns) and len(pq) == len(frame) == res["rows"]
    assert not Path(res["features_csv"]).with_suffix(".pkl").exists()  # pickle only when asked
    meta = json.loads(Path(res["feature_metadata"]).read_text())
    assert [c["name"] for c in meta["columns"]] == list(FINGERPRINT_NAMES)
    assert all(c["unit"] and c["definition"] and c["source"] for c in meta["columns"])


def test_no_nan_or_inf_on_real_audio(clarity_run):
    s, res = clarity_run
    frame = pd.read_parquet(res["features_parquet"])
    values = frame[list(FINGERPRINT_NAMES)].to_numpy(dtype=float)
    assert np.isfinite(values).all()
    assert res["nonfinite_total"] == 0
    analysis = json.loads(Path(res["analysis"]).read_text())
    assert all(v == {"nan": 0, "inf": 0} for v in analysis["nonfinite"].values())
    assert all(Path(p).stat().st_size > 1000 for p in res["plots"].values())
    assert abs(analysis["effect_sizes"][0]["cohens_d"]) > 0


def test_onnx_matches_sklearn(clarity_run):
    """The registered ONNX pair against the scikit-learn pair it was converted from, computed here
    (not the pipeline's own parity figures) on the hold-out fingerprints.

    The scikit-learn pair is stored by the train step as joblib pickles under the run's own work
    dir (``paths(s).sklearn_dir``, inside this test's temporary folder): loading them is loading a
    file this run wrote, as the pipeline's export step does; never a downloaded one.

    Tolerances: onnxruntime's TreeEnsemble operators sum the leaf values in float32, scikit-learn
    in float64, on the same float32 inputs (so every split goes the same way): the differences are
    float32 rounding of a 40-tree average, about 1e-7 relative (measured on the tiny run: 5e-8 on
    the probabilities, 1.3e-6 on corrections up to 10.9). Bars: 1e-5 absolute on class probabilities
    (in [0, 1]), 1e-5 relative to the largest correction magnitude on the corrections; and the same
    label everywhere.
    """
    import joblib

    from eno_hf.clarity.export import onnx_session
    from eno_hf.clarity.job import paths

    s, res = clarity_run
    cfg = json.loads((Path(res["model"]) / "config.json").read_text())
    frame = pd.read_parquet(res["features_parquet"])
    x = frame[cfg["feature_columns"]].to_numpy(np.float32)[cfg["test_index"]]
    assert len(x) > 0
    sk_dir = paths(s).sklearn_dir
    assert sk_dir.resolve().is_relative_to(Path(res["workdir"]).resolve())  # this run's own files
    clf, reg = joblib.load(sk_dir / "classifier.joblib"), joblib.load(sk_dir / "regressor.joblib")
    labels, proba = onnx_session(res["onnx"]["flaw_classifier"]).run(None, {"fingerprint": x})
    corr = onnx_session(res["onnx"]["correction_regressor"]).run(None, {"fingerprint": x})[0]
    assert proba.shape == (len(x), len(cfg["classes"])) and corr.shape == (len(x), len(cfg["correction_outputs"]))
    assert list(clf.classes_.astype(str)) == list(cfg["classes"])  # the probability columns line up
    ref_proba = clf.predict_proba(x)
    ref_corr = np.asarray(reg.predict(x)).reshape(corr.shape)
    assert np.asarray(labels).astype(str).tolist() == clf.predict(x).astype(str).tolist()
    diff_proba = float(np.max(np.abs(proba - ref_proba)))
    diff_corr = float(np.max(np.abs(corr - ref_corr)))
    assert diff_proba < 1e-5, diff_proba
    assert diff_corr < 1e-5 * max(1.0, float(np.max(np.abs(ref_corr)))), (diff_corr, float(np.max(np.abs(ref_corr))))
    # the pipeline's reported parity is the same comparison on the same rows
    par = res["parity"]
    assert par["n"] == len(x) and par["label_agreement"] == 1.0
    assert par["max_abs_diff_probabilities"] == pytest.approx(diff_proba, abs=1e-7)
    assert par["max_abs_diff_correction"] == pytest.approx(diff_corr, abs=1e-6)


def test_bad_files_are_reported_and_the_run_goes_on(clarity_run):
    s, res = clarity_run
    rejected = {r["file"]: r for r in res["rejected"]}
    assert rejected["gold/drums/broken_gold_001.wav"]["reason"] in ("empty", "undecodable")
    assert rejected["gold/drums/Kick Final (2).wav"]["reason"] == "bad_name"
    assert "silent" in rejected["gold/keys/silence_gold_001.wav"]["reason"]
    log = json.loads(Path(res["normalization_log"]).read_text())
    assert {r["file"]: r["status"] for r in log["files"]}["gold/keys/silence_gold_001.wav"] == "skipped"
    frame = pd.read_csv(res["features_csv"])
    assert len(frame) + sum(r["stage"] == "extract" for r in res["rejected"]) == res["files"]
    assert res["verify"]["failures"] == 0 and res["verify"]["passed"] == res["verify"]["checked"] > 0


def test_grouped_split_and_metrics_with_intervals(clarity_run):
    s, res = clarity_run
    metrics = json.loads(Path(res["metrics_file"]).read_text())
    assert set(metrics["families"]) == {"random_forest", "gradient_boosting", "linear"}
    for fam, m in metrics["families"].items():
        lo, hi = m["cv"]["ci95"]["flaw_accuracy"]
        assert 0 <= lo <= hi <= 1
        assert set(m["test"]["per_output"]) == {c.removeprefix("target_") for c in res["target_columns"]}
    hub = json.loads((Path(res["model"]) / "registry.json").read_text())
    assert hub["name"] == "eno-clarity" and (Path(res["model"]) / "README.md").is_file()
    assert not [f for f in Path(res["model"]).iterdir() if f.suffix in (".joblib", ".pkl")]  # no pickles
    frame = pd.read_csv(res["features_csv"])
    hats = frame[frame.file.str.contains("/hihat_|/cymbal_")]
    assert not set(hats.flaw) & {"muddy", "boomy", "thin"}


def test_cli_run_json_reuses_every_step(clarity_run):
    from typer.testing import CliRunner

    from eno_hf.cli import app

    s, res = clarity_run
    root = Path(res["workdir"]).parent
    args = ["clarity", "run", "--json", "--config", "configs/clarity.yaml"]
    for kv in [f"paths.data_root={root}", "clarity.gold.drums_per_sound=2", "clarity.gold.stems_per_instrument=2",
               "clarity.gold.max_duration_s=3.0", "clarity.models.n_estimators=40", "clarity.models.cv_folds=3",
               "clarity.models.bootstrap=50", "clarity.models.clearml=false"]:
        args += ["--set", kv]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    last = json.loads(out.stdout.strip().splitlines()[-1])
    for key in ("features_csv", "feature_columns", "feature_metadata", "normalization_log", "model", "onnx",
                "metrics"):
        assert key in last
    assert last["features_csv"] == res["features_csv"]
    assert all(v["cache_hit"] for k, v in last["steps"].items() if k != "scan")
