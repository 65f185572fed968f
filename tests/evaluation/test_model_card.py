"""Model card: front matter, metrics vs baselines, usage."""

from __future__ import annotations

import json

import numpy as np
import yaml

from eno_hf.config import Settings
from eno_hf.evaluation.model_card import write_model_card
from eno_hf.metrics import evaluate_heads

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
    assert front["license"] == "apache-2.0"
    # Settings() default encoder: one sota tagger (mtat-musicnn, Won et al. 2020)
    assert front["base_model"] == "sota-music-tagging/mtat-musicnn"
    assert "Evaluation of CNN-based automatic music tagging models" in text
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


def _metrics_json(tmp_path, metrics):
    """metrics.json as eno writes it (strict JSON: NaN -> null)."""
    from eno_hf.utils.io import atomic_write_json

    atomic_write_json(tmp_path / "metrics.json", metrics)
    return json.loads((tmp_path / "metrics.json").read_text())


def test_model_card_loads_with_huggingface_hub_and_holds_the_metrics(tmp_path):
    from huggingface_hub import ModelCard

    from eno_hf.metrics import flatten_metrics

    settings = Settings()
    settings.model.encoder = "tagger_ensemble"
    settings.model.taggers = ["jamendo-fcn", "msd-musicnn"]
    metrics = _results(0, 0.6)
    metrics["descriptors"]["f1_micro"] = float("nan")  # undefined metric: left out of model-index
    stored = _metrics_json(tmp_path, metrics)
    path = write_model_card(tmp_path / "m", settings.model_dump(mode="json"), stored, None,
                            {"name": "4q", "version": "v3", "path": "/data/datasets/4q/v3"}, heads=HEADS)
    card = ModelCard.load(path)
    data = card.data
    assert data.license == "apache-2.0" and data.datasets == ["4q"]
    assert data.base_model == ["sota-music-tagging/jamendo-fcn", "musicnn/msd-musicnn"]
    got = {r.metric_name: r.metric_value for r in data.eval_results}
    want = {k: v for k, v in flatten_metrics(metrics).items() if v == v}
    assert got == want and "descriptors/f1_micro" not in got
    assert got["descriptors/roc_auc_macro"] == stored["descriptors"]["roc_auc_macro"]
    assert got["quadrant/f1_macro"] == stored["quadrant"]["f1_macro"] and got["score"] == stored["score"]
    assert {(r.task_type, r.dataset_type, r.dataset_revision, r.dataset_split) for r in data.eval_results} == {
        ("audio-classification", "4q", "v3", "test")}
    assert "/data/datasets/4q/v3/README.md" in card.text  # link to the dataset card
    assert "Pons" in card.text and "ISC" in card.text  # msd-musicnn's source and licence
    assert "## Cross-validated quality" in card.text and "## Limitations" in card.text


def test_imported_tagger_card(tmp_path):
    from huggingface_hub import ModelCard

    from eno_hf.evaluation.model_card import write_imported_card

    tags = [f"t{i}" for i in range(50)]
    card = ModelCard.load(write_imported_card(tmp_path / "a", "msd-fcn", tags, arch="fcn",
                                              sample_rate=16000, window_s=29.0))
    assert card.data.license == "mit" and card.data.base_model == "sota-music-tagging/msd-fcn"
    assert "Evaluation of CNN-based automatic music tagging models" in card.text and "SMC" in card.text
    assert "Million Song Dataset" in card.text and "FCN" in card.text and "t39, … (50 in all)" in card.text
    card = ModelCard.load(write_imported_card(tmp_path / "b", "/x/msd-vgg.safetensors", tags, arch="pons_vgg"))
    assert card.data.license == "isc" and card.data.base_model == "musicnn/msd-vgg"
    assert "musicnn: pre-trained convolutional neural networks" in card.text


def test_dataset_card_is_a_huggingface_dataset_card(tmp_path):
    from datasets import ClassLabel, Features, Value
    from huggingface_hub import DatasetCard

    from eno_hf.data.card import write_card

    settings = Settings()
    settings.dataset.name = "4q"
    report = {"accounting": {"statement": "12 inputs: 11 written, 1 rejected"},
              "splits": {"train": {"n_recordings": 8, "n_segments": 16, "n_groups": 4},
                         "test": {"n_recordings": 3, "n_segments": 6, "n_groups": 2}},
              "rejected_by_reason": {"too_short": 1},
              "labels": {"train": {"quadrant": {"frequencies": {"Q1": 4, "Q2": 4}}},
                         "test": {"quadrant": {"frequencies": {"Q1": 2, "Q2": 1}}}}}
    features = Features({"segment_id": Value("string"), "quadrant": ClassLabel(names=["Q1", "Q2"])})
    path = write_card(tmp_path / "README.md", settings=settings, version="v1", report=report, features=features)
    card = DatasetCard.load(path)
    assert card.data.pretty_name == "eno 4q v1"
    assert card.data.task_categories == ["audio-classification"] and card.data.size_categories == ["n<1K"]
    assert card.data.to_dict()["dataset_info"]["splits"] == [{"name": "train", "num_examples": 16},
                                                             {"name": "test", "num_examples": 6}]
    assert "12 inputs: 11 written, 1 rejected" in card.text and "too_short: 1" in card.text
    assert "| Q1 | 4 | 2 |" in card.text
