"""Plots (PNG files), report folder and rich summary."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from matplotlib.image import imread
from rich.console import Console

from eno_hf.evaluation import plots as P
from eno_hf.metrics import evaluate_heads
from eno_hf.evaluation.report import print_summary, to_jsonable, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HEADS = [
    {"name": "moods", "kind": "multilabel", "labels": [f"mood_{i}" for i in range(10)]},
    {"name": "quadrant", "kind": "singlelabel", "labels": ["Q1", "Q2", "Q3", "Q4"]},
]


@pytest.fixture(scope="module")
def arrays():
    rng = np.random.default_rng(0)
    y = (rng.random((60, 10)) < 0.3).astype(int)
    y[:, 9] = 0  # a tag without positives
    probs = np.clip(0.35 * y + 0.65 * rng.random(y.shape), 0, 1)
    y_q = rng.integers(0, 4, 60)
    p_q = np.eye(4)[np.where(rng.random(60) < 0.6, y_q, rng.integers(0, 4, 60))] * 0.7 + 0.075
    return y, probs, y_q, p_q


@pytest.fixture(scope="module")
def results(arrays):
    y, probs, y_q, p_q = arrays
    return evaluate_heads(HEADS, {"moods": probs, "quadrant": p_q}, {"moods": y, "quadrant": y_q})


def _is_png(path, min_w=300, min_h=150):
    assert path.is_file() and path.read_bytes()[:8] == PNG_MAGIC
    img = imread(path)
    assert img.shape[0] >= min_h and img.shape[1] >= min_w
    assert img[..., :3].std() > 0.01  # not a blank canvas


def test_plots_write_pngs(tmp_path, arrays, results):
    y, probs, _, _ = arrays
    _is_png(P.plot_per_tag_auc(results["moods"]["per_tag"], tmp_path / "a" / "auc.png"))
    _is_png(P.plot_pr_curves(y, probs, HEADS[0]["labels"], tmp_path / "pr.png", top_k=4))
    _is_png(P.plot_confusion_matrix(results["quadrant"]["confusion_matrix"], HEADS[1]["labels"],
                                    tmp_path / "cm.png"))
    history = [{"loss": 1.0 / (i + 1), "epoch": i / 2, "step": i} for i in range(8)]
    history += [{"eval_loss": 0.9 - 0.1 * i, "eval_score": 0.5 + 0.05 * i, "epoch": i,
                 "eval_runtime": 1.0} for i in range(4)]
    _is_png(P.plot_training_curves(history, tmp_path / "curves.png"))
    # degenerate inputs still give a figure rather than an error
    _is_png(P.plot_per_tag_auc([{"tag": "x", "roc_auc": float("nan"), "support": 0}],
                               tmp_path / "empty.png"))
    _is_png(P.plot_training_curves([], tmp_path / "no_history.png"))


def test_write_report(tmp_path, arrays, results):
    y, probs, _, _ = arrays
    base = {"label_prior": evaluate_heads(
        HEADS, {"moods": np.full_like(probs, 0.3), "quadrant": np.full((60, 4), 0.25)},
        {"moods": y, "quadrant": arrays[2]})}
    paths = write_report(tmp_path, results, HEADS, arrays={"moods": (y, probs)},
                         history=[{"loss": 1.0, "step": 1}, {"loss": 0.5, "step": 2}],
                         baselines=base)
    metrics = json.loads(paths["metrics"].read_text())  # strict JSON (NaN written as null)
    assert metrics == to_jsonable(results)
    assert metrics["moods"]["per_tag"][9]["roc_auc"] is None
    assert json.loads(paths["baselines"].read_text())["label_prior"]["moods"]["roc_auc_macro"] == 0.5
    with paths["per_tag_moods"].open() as f:
        rows = list(csv.DictReader(f))
    assert [r["tag"] for r in rows] == HEADS[0]["labels"]
    assert rows[9]["roc_auc"] == "" and float(rows[0]["threshold"]) == 0.5
    with paths["per_tag_quadrant"].open() as f:
        assert [r["label"] for r in csv.DictReader(f)] == ["Q1", "Q2", "Q3", "Q4"]
    for key in ("plot_roc_auc_moods", "plot_pr_moods", "plot_confusion_quadrant",
                "plot_training_curves"):
        _is_png(paths[key])
    no_plots = write_report(tmp_path / "np", results, HEADS, plots=False)
    assert not any(k.startswith("plot_") for k in no_plots)
    assert not list((tmp_path / "np").glob("*.png"))


def test_print_summary_side_by_side(results):
    base = {"label_prior": {"moods": {"kind": "multilabel", "roc_auc_macro": 0.5}, "score": 0.3},
            "feature_probe": {"quadrant": {"kind": "singlelabel", "f1_macro": 0.4321}, "score": 0.4}}
    console = Console(file=io.StringIO(), width=140, record=True)
    print_summary(results, base, console=console)
    text = console.export_text()
    assert "label_prior" in text and "feature_probe" in text and "model" in text
    assert "roc_auc_macro" in text and "balanced_accuracy" in text
    assert f"{results['moods']['roc_auc_macro']:.3f}" in text
    assert "0.432" in text and "0.500" in text
    line = next(ln for ln in text.splitlines() if "score" in ln and "mean" in ln)
    assert f"{results['score']:.3f}" in line and "0.300" in line and "0.400" in line
