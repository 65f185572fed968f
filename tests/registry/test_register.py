"""registry.register.register_model: the one register function (hub + card + ClearML), fault hook."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eno_hf.config import load_config
from eno_hf.registry.register import register_model
from eno_hf.utils import faults


def _model(tmp_path: Path) -> Path:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "metrics.json").write_text(json.dumps({"score": 0.8}))
    return model


def test_register_reads_metrics_json_and_versions(tmp_path: Path) -> None:
    s = load_config("configs/small.yaml", [f"paths.hub_dir={tmp_path / 'hub'}", "registry.clearml=false"])
    model = _model(tmp_path)
    reg = register_model(s, model, name="tiny")
    assert reg.version_dir == tmp_path / "hub" / "tiny" / "v1" and reg.clearml_session is None
    info = json.loads((reg.version_dir / "registry.json").read_text())
    assert info["metadata"]["metrics"]["score"] == 0.8
    assert register_model(s, model, name="tiny").version_dir.name == "v2"


def test_register_with_clearml_offline_records_a_session(tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("clearml")
    monkeypatch.setenv("CLEARML_CACHE_DIR", str(tmp_path / "clearml"))
    s = load_config("configs/small.yaml", [f"paths.hub_dir={tmp_path / 'hub'}", "registry.clearml=true",
                                           "registry.clearml_offline=true"])
    reg = register_model(s, _model(tmp_path))
    session = Path(reg.clearml_session)
    assert session.is_dir() and str(session).startswith(str(tmp_path / "clearml"))
    assert '"metric": "score"' in (session / "metrics.jsonl").read_text()


def test_injected_fault_fails_first_calls_only(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(faults.ENV, "register:2")
    monkeypatch.setattr(faults, "_calls", {})
    s = load_config("configs/small.yaml", [f"paths.hub_dir={tmp_path / 'hub'}", "registry.clearml=false"])
    model = _model(tmp_path)
    for n in (1, 2):
        with pytest.raises(faults.TransientIOError, match=f"{n} of 2"):
            register_model(s, model)
    assert not (tmp_path / "hub").exists()  # failed before anything was copied
    assert register_model(s, model).version_dir.name == "v1"


def test_eno_register_cli_uses_clearml(tmp_path: Path, monkeypatch) -> None:
    """`eno register` goes through register_model: hub copy AND the ClearML session its help promises."""
    pytest.importorskip("clearml")
    from typer.testing import CliRunner

    from eno_hf.cli import app

    monkeypatch.setenv("CLEARML_CACHE_DIR", str(tmp_path / "clearml"))
    res = CliRunner().invoke(app, ["register", "--model", str(_model(tmp_path)), "--name", "cli-model",
                                   "--set", f"paths.hub_dir={tmp_path / 'hub'}", "--set", "registry.clearml=true"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "hub" / "cli-model" / "v1" / "registry.json").is_file()
    assert "ClearML session" in res.output and list((tmp_path / "clearml").rglob("metrics.jsonl"))


def test_undefined_metrics_are_stored_as_null(tmp_path: Path) -> None:
    """Regression: an undefined metric (None in metrics.json, e.g. ROC-AUC without positives on a
    tiny test split) made the register stage fail in float(None)."""
    s = load_config("configs/small.yaml", [f"paths.hub_dir={tmp_path / 'hub'}", "registry.clearml=false"])
    metrics = {"genres": {"kind": "multilabel", "roc_auc_macro": None, "pr_auc_macro": 0.5}, "score": 0.4}
    reg = register_model(s, _model(tmp_path), metrics=metrics)
    stored = json.loads((reg.version_dir / "registry.json").read_text())["metadata"]["metrics"]
    assert stored["genres/roc_auc_macro"] is None and stored["genres/pr_auc_macro"] == 0.5 and stored["score"] == 0.4


def test_metadata_is_stored_as_given(tmp_path: Path) -> None:
    """Jobs whose metrics are not per-head tables (the performance job's per-protocol summary,
    clarity's model families) keep them in ``registry.json`` through ``metadata``."""
    s = load_config("configs/small.yaml", [f"paths.hub_dir={tmp_path / 'hub'}", "registry.clearml=false"])
    summary = {"performer": {"mean_r2": 0.41, "ridge_midi_mean_r2": float("nan")}}
    reg = register_model(s, _model(tmp_path), name="perf", metrics=summary,
                         metadata={"metrics": summary, "embedder": "mert-v1-95m"})
    stored = json.loads((reg.version_dir / "registry.json").read_text())["metadata"]
    assert stored["metrics"] == {"performer": {"mean_r2": 0.41, "ridge_midi_mean_r2": None}}
    assert stored["embedder"] == "mert-v1-95m"


def test_register_puts_the_dataset_versions_cv_report_in_the_card(tmp_path: Path) -> None:
    from eno_hf.evaluation.cv import report_dir

    s = load_config("configs/small.yaml", [f"paths.data_root={tmp_path / 'data'}", "registry.clearml=false"])
    iv = {"mean": 0.7, "ci_low": 0.6, "ci_high": 0.8}
    cv = report_dir(s.paths.data_root, "4q", "v9")
    cv.mkdir(parents=True)
    (cv / "cv_report.json").write_text(json.dumps(
        {"n_folds": 5, "n_repeats": 3, "n_recordings": 360, "reference": None, "folds_file": "folds-k5-r3-s0.json",
         "candidates": {"default": {"metrics": {"quadrant/f1_macro": iv}}}}))
    reg = register_model(s, _model(tmp_path), name="tiny", dataset_info={"name": "4q", "version": "v9"})
    assert "| default | 0.700 [0.600, 0.800] |" in (reg.version_dir / "README.md").read_text()
    (tmp_path / "o").mkdir()
    other = register_model(s, _model(tmp_path / "o"), name="tiny", dataset_info={"name": "4q", "version": "v10"})
    assert "No cross-validation report" in (other.version_dir / "README.md").read_text()


def test_eno_register_after_eno_cv_rewrites_the_card_with_the_cv_figures(tmp_path: Path) -> None:
    """The card of `eno run` says "run `eno cv`, then `eno register --model <run>/model`": the CLI
    finds the run's test metrics and baselines and the dataset an earlier registration recorded,
    so the new version's card holds the cross-validated table (and `--dataset` names it directly)."""
    from typer.testing import CliRunner

    from eno_hf.cli import app
    from eno_hf.evaluation.cv import report_dir
    from eno_hf.registry.register import recorded_run_outputs

    sets = [f"paths.data_root={tmp_path / 'data'}", "registry.clearml=false"]
    s = load_config("configs/small.yaml", sets)
    run = tmp_path / "data" / "runs" / "r1"
    model = run / "model"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    (run / "eval").mkdir()
    (run / "eval" / "metrics.json").write_text(json.dumps({"score": 0.8}))
    (run / "baselines.json").write_text(json.dumps({}))
    dataset = tmp_path / "data" / "datasets" / "4q" / "v9"
    assert recorded_run_outputs(model, s.paths.hub())["dataset_info"] is None  # nothing registered yet
    first = register_model(s, model, metrics={"score": 0.8}, dataset_info={"name": "4q", "version": "v9",
                                                                           "path": str(dataset)})
    assert "No cross-validation report" in (first.version_dir / "README.md").read_text()
    found = recorded_run_outputs(model, s.paths.hub())
    assert found["metrics"] == {"score": 0.8} and found["baselines"] == {}
    assert found["dataset_info"] == {"name": "4q", "version": "v9", "path": str(dataset)}
    cv = report_dir(s.paths.data_root, "4q", "v9")
    cv.mkdir(parents=True)
    (cv / "cv_report.json").write_text(json.dumps(
        {"n_folds": 5, "n_repeats": 3, "n_recordings": 360, "reference": None, "folds_file": "folds-k5-r3-s0.json",
         "candidates": {"default": {"metrics": {"quadrant/f1_macro": {"mean": 0.7, "ci_low": 0.6, "ci_high": 0.8}}}}}))
    args = ["register", "--model", str(model), *[a for x in sets for a in ("--set", x)]]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    card = (tmp_path / "data" / "hub" / "eno-tagger" / "v2" / "README.md").read_text()
    assert "| default | 0.700 [0.600, 0.800] |" in card
    # --dataset: a version without a report gives the plain card, not the other version's table
    bad = CliRunner().invoke(app, [*args, "--dataset", str(dataset.parent / "v10")])
    assert bad.exit_code == 2 and "no saved dataset there" in bad.output  # a typo is an error, not a card
    (dataset.parent / "v10").mkdir(parents=True)
    res = CliRunner().invoke(app, [*args, "--dataset", str(dataset.parent / "v10")])
    assert res.exit_code == 0, res.output
    assert "No cross-validation report" in (tmp_path / "data" / "hub" / "eno-tagger" / "v3" / "README.md").read_text()
    # a model outside a run: copied as it is, and the CLI says so
    res = CliRunner().invoke(app, ["register", "--model", str(_model(tmp_path)), "--name", "bare",
                                   *[a for x in sets for a in ("--set", x)]])
    assert res.exit_code == 0 and "copied as it is" in res.output


def test_registered_card_is_a_huggingface_model_card_with_the_metrics(tmp_path: Path) -> None:
    """The hub version's README.md loads with huggingface_hub; model-index = the run's metrics.json."""
    from huggingface_hub import ModelCard

    from eno_hf.metrics import flatten_metrics

    s = load_config("configs/small.yaml", [f"paths.hub_dir={tmp_path / 'hub'}", f"paths.data_root={tmp_path / 'data'}",
                                           "registry.clearml=false"])
    metrics = {"quadrant": {"kind": "singlelabel", "accuracy": 0.5, "f1_macro": 0.45, "balanced_accuracy": 0.5,
                            "roc_auc_macro": None, "n_samples": 8}, "score": 0.45}
    model = _model(tmp_path)
    (model / "metrics.json").write_text(json.dumps(metrics))
    reg = register_model(s, model, dataset_info={"name": "4q", "version": "abc123", "path": str(tmp_path / "ds")})
    card = ModelCard.load(reg.version_dir / "README.md")
    stored = json.loads((model / "metrics.json").read_text())
    got = {r.metric_name: r.metric_value for r in card.data.eval_results}
    assert got == {k: v for k, v in flatten_metrics({**stored, "quadrant": {
        **stored["quadrant"], "roc_auc_macro": float("nan")}}).items() if v == v}
    assert got["quadrant/f1_macro"] == 0.45 and "quadrant/roc_auc_macro" not in got  # undefined: left out
    assert card.data.license == "apache-2.0" and card.data.datasets == ["4q"]
    assert card.data.base_model == [f"sota-music-tagging/{t}" for t in s.model.taggers]  # small.yaml: the ensemble
    assert {r.dataset_revision for r in card.data.eval_results} == {"abc123"}


def test_imported_tagger_has_a_card(tmp_path: Path, sota_models_dir: Path) -> None:
    """`eno import-weights` writes a card naming the source paper and the weights' licence."""
    from huggingface_hub import ModelCard

    from eno_hf.models.import_weights import import_tagger

    out = import_tagger("mtat-musicnn", tmp_path / "m")
    card = ModelCard.load(out / "README.md")
    assert card.data.license == "mit" and card.data.base_model == "sota-music-tagging/mtat-musicnn"
    assert "Evaluation of CNN-based automatic music tagging models" in card.text and "SMC" in card.text
    assert "MagnaTagATune" in card.text and "guitar" in card.text  # trained on, and its tags
