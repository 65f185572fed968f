"""Model card: front matter, metrics vs baselines, usage."""

from __future__ import annotations

import json

import numpy as np
import yaml

from eno_hf.config import Settings
from eno_hf.evaluation.metrics import evaluate_heads
from eno_hf.evaluation.model_card import write_model_card

HEADS = [{"name": "descriptors", "kind": "multilabel", "labels": ["gloomy", "happy", "somber"]},
         {"name": "quadrant", "kind": "singlelabel", "labels": ["Q1", "Q2", "Q3", "Q4"]}]


def _results(seed: int, quality: float):
    rng = np.random.default_rng(seed)
    y = (rng.random((40, 3)) < 0.4).astype(int)
    p = np.clip(quality * y + (1 - quality) * rng.random(y.shape), 0, 1)
    yq = rng.integers(0, 4, 40)
    pq = np.eye(4)[np.where(rng.random(40) < quality, yq, 0)]
    return evaluate_heads(HEADS, {"descriptors": p, "quadrant": pq}, {"descriptors": y, "quadrant": yq})


def test_model_card(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"heads": HEADS, "thresholds": {"descriptors": [0.3] * 3}}))
    settings = Settings()
    settings.registry.model_name = "mood-tagger"
    metrics, prior = _results(0, 0.6), _results(1, 0.0)
    path = write_model_card(tmp_path, settings.model_dump(mode="json"), metrics,
                            {"label_prior": prior}, {"name": "4q", "version": "v3"})
    text = path.read_text()
    assert path.name == "README.md" and text.startswith("---\n")
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["library_name"] == "transformers"
    assert front["pipeline_tag"] == "audio-classification"
    assert "music" in front["tags"] and "multi-label-classification" in front["tags"]
    assert front["datasets"] == ["4q"]
    assert "# mood-tagger" in text and "v3" in text
    row = next(ln for ln in text.splitlines() if ln.startswith("| descriptors | roc_auc_macro |"))
    assert f"{metrics['descriptors']['roc_auc_macro']:.3f}" in row
    assert f"{prior['descriptors']['roc_auc_macro']:.3f}" in row
    assert "| head | metric | model | label_prior |" in text
    assert "gloomy, happy, somber" in text
    for needle in ("## Intended use", "## Limitations", "AllMusic", "30-s previews", "Small data",
                   'pipeline("audio-classification"', "eno tag", "--model mood-tagger",
                   "tuned per tag"):
        assert needle in text, needle


def test_model_card_without_baselines_or_config(tmp_path):
    path = write_model_card(tmp_path / "m", Settings().model_dump(mode="json"), _results(0, 0.5),
                            None, {"name": "ds"}, heads=HEADS)
    text = path.read_text()
    assert "| head | metric | model |\n|---|---|---:|" in text
    assert "thresholds: 0.5" in text


def test_model_card_reports_cross_validated_figures_with_intervals(tmp_path):
    iv = lambda m, lo, hi: {"mean": m, "ci_low": lo, "ci_high": hi}  # noqa: E731
    report = {"n_folds": 5, "n_repeats": 3, "n_recordings": 360, "reference": "msd-musicnn-logreg",
              "dataset": "eno-data/datasets/4q/v3", "folds_file": "folds-k5-r3-s0.json",
              "candidates": {
                  "default": {"metrics": {"quadrant/f1_macro": iv(0.692, 0.612, 0.771)},
                              "vs_reference": {"quadrant/f1_macro": iv(0.007, -0.055, 0.069)}},
                  "msd-musicnn-logreg": {"metrics": {"quadrant/f1_macro": iv(0.685, 0.626, 0.744)}}}}
    settings = Settings().model_dump(mode="json")
    text = write_model_card(tmp_path / "a", settings, _results(0, 0.5), None, {"name": "4q", "version": "v3"},
                            heads=HEADS, cv_report=report).read_text()
    section = text.split("## Cross-validated quality")[1].split("## Evaluation")[0]
    assert "| default | 0.692 [0.612, 0.771] |" in section
    assert "| msd-musicnn-logreg | 0.685 [0.626, 0.744] |" in section
    assert "Difference to `msd-musicnn-logreg`" in section and "0.007 [-0.055, 0.069]" in section
    assert "folds-k5-r3-s0.json" in section
    none = write_model_card(tmp_path / "b", settings, _results(0, 0.5), None, {"name": "4q"}, heads=HEADS).read_text()
    assert "No cross-validation report" in none.split("## Cross-validated quality")[1].split("## Evaluation")[0]
