"""Repeated grouped cross-validation (eno_hf.evaluation.cv) on synthetic recording tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from eno_hf.evaluation.cv import (
    CANDIDATES, Candidate, CVData, combine_reports, corrected_interval, expected_calibration_error, fit_linear, fit_temperature,
    load_or_make_folds, make_folds, markdown_table, run_cv, write_cv_report,
)


def _data(n: int = 160, n_groups: int = 40, signal: float = 2.0, seed: int = 0) -> CVData:
    rng = np.random.default_rng(seed)
    groups = np.repeat([f"artist{i:02d}" for i in range(n_groups)], n // n_groups)
    quadrant = rng.integers(0, 4, n)
    tags = (rng.random((n, 6)) < 0.3).astype(np.int64)
    tags[:, 0] = (quadrant == 0).astype(np.int64)  # one tag follows the quadrant
    informative = np.concatenate([np.eye(4)[quadrant], tags], axis=1) * signal
    X = informative + rng.standard_normal((n, 10))
    noise = rng.standard_normal((n, 10))
    heads = [{"name": "quadrant", "kind": "singlelabel", "labels": ["q1", "q2", "q3", "q4"]},
             {"name": "descriptors", "kind": "multilabel", "labels": [f"t{i}" for i in range(6)]}]
    return CVData(np.asarray([f"r{i:03d}" for i in range(n)]), groups, heads,
                  {"quadrant": quadrant, "descriptors": tags}, {"good": X, "noise": noise})


def test_folds_are_grouped_complete_seeded_and_saved(tmp_path: Path) -> None:
    d = _data()
    folds = make_folds(d.ids, d.groups, d.labels["quadrant"], n_folds=5, n_repeats=3, seed=7)
    assert folds.shape == (3, len(d.ids)) and set(np.unique(folds)) == set(range(5))
    for r in range(3):
        for g in np.unique(d.groups):
            assert len(set(folds[r, d.groups == g].tolist())) == 1  # an artist never spans two folds
    assert not np.array_equal(folds[0], folds[1])
    np.testing.assert_array_equal(folds, make_folds(d.ids, d.groups, d.labels["quadrant"], 5, 3, seed=7))
    path = tmp_path / "folds.json"
    saved = load_or_make_folds(path, list(d.ids), list(d.groups), d.labels["quadrant"], 5, 3, 7)
    assert json.loads(path.read_text())["seed"] == 7
    path.write_text(path.read_text().replace('"seed": 7', '"seed": 7 '))  # same content: reused as is
    np.testing.assert_array_equal(load_or_make_folds(path, list(d.ids), list(d.groups), d.labels["quadrant"], 5, 3, 7),
                                  saved)
    with pytest.raises(ValueError, match="groups"):
        make_folds(d.ids[:8], d.groups[:8], d.labels["quadrant"][:8], n_folds=5)


def test_corrected_interval_is_wider_than_naive() -> None:
    vals = [0.70, 0.72, 0.68, 0.75, 0.71, 0.69, 0.73, 0.70, 0.74, 0.72]
    iv = corrected_interval(vals, n_folds=5)
    naive = 2.262 * np.std(vals, ddof=1) / np.sqrt(len(vals))
    assert iv["ci_low"] < np.mean(vals) < iv["ci_high"]
    assert iv["half_width"] > 1.5 * naive
    assert np.isnan(corrected_interval([0.5], 5)["ci_low"])


def test_ece_and_temperature() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 2000)
    logits = rng.standard_normal((2000, 4))
    logits[np.arange(2000), y] += 1.0
    over = 8.0 * logits  # overconfident
    p_over = np.exp(over - over.max(1, keepdims=True))
    p_over /= p_over.sum(1, keepdims=True)
    t = fit_temperature(over, y)
    assert 5.0 < t < 12.0
    p_cal = np.exp(over / t - (over / t).max(1, keepdims=True))
    p_cal /= p_cal.sum(1, keepdims=True)
    assert expected_calibration_error(y, p_cal) < 0.5 * expected_calibration_error(y, p_over)
    onehot = np.eye(4)[y]
    assert expected_calibration_error(y, onehot) == pytest.approx(0.0)


def test_fit_linear_separates() -> None:
    d = _data(signal=3.0)
    X = (d.blocks["good"] - d.blocks["good"].mean(0)) / d.blocks["good"].std(0)
    W, b = fit_linear(X, d.labels["quadrant"], "singlelabel", 4, l2=1e-3)
    assert ((X @ W + b).argmax(1) == d.labels["quadrant"]).mean() > 0.9


def test_fast_macro_roc_auc_equals_metrics_module() -> None:
    from eno_hf.evaluation.cv import macro_average_precision, macro_roc_auc
    from eno_hf.evaluation.metrics import multilabel_metrics

    rng = np.random.default_rng(5)
    y = (rng.random((60, 7)) < 0.3).astype(np.int64)
    y[:, 6] = 0  # single-class tag: left out of both
    scores = np.round(rng.random((60, 7)) + 0.5 * y, 1)  # ties
    ref = multilabel_metrics(y, scores)
    assert macro_roc_auc(y, scores) == pytest.approx(ref["roc_auc_macro"], abs=1e-12)
    assert macro_average_precision(y, scores) == pytest.approx(ref["pr_auc_macro"], abs=1e-12)


def test_ridge_path_matches_primal_solution() -> None:
    from eno_hf.evaluation.cv import ridge_path

    rng = np.random.default_rng(3)
    X, Y, Z = rng.standard_normal((30, 8)), rng.standard_normal((30, 3)), rng.standard_normal((5, 8))
    for alpha, got in zip((0.1, 2.0), ridge_path(X, Y, Z, (0.1, 2.0))):
        xm, ym = X.mean(0), Y.mean(0)
        W = np.linalg.solve((X - xm).T @ (X - xm) + alpha * 8 * np.eye(8), (X - xm).T @ (Y - ym))
        np.testing.assert_allclose(got, (Z - xm) @ W + ym, atol=1e-8)


def test_run_cv_ranks_informative_features_above_noise_and_prior(tmp_path: Path) -> None:
    d = _data(n=96, n_groups=24)
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


def test_registry_has_the_three_baselines() -> None:
    for name in ("label-prior", "fingerprint-mfcc-probe", "msd-musicnn-probe"):
        assert name in CANDIDATES
    assert CANDIDATES["msd-musicnn-probe"].features == ["msd-musicnn"]


def test_cli_rejects_unknown_candidate() -> None:
    from typer.testing import CliRunner

    from eno_hf.cli import app

    res = CliRunner().invoke(app, ["cv", "--candidates", "no-such-model"])
    assert res.exit_code == 2


def test_segment_probe_trains_on_windows_and_averages_them_per_recording() -> None:
    from eno_hf.evaluation.cv import _clip_mean, _window_rows

    d = _data(n=96, n_groups=24)
    rng = np.random.default_rng(1)
    counts = rng.integers(3, 7, len(d.ids))  # 3-6 windows per recording, as 3-s windows of clips
    owner = np.repeat(np.arange(len(d.ids)), counts)
    signal = d.blocks["good"][:, :10] - rng.standard_normal((len(d.ids), 10))  # the informative part only
    d.segments = {"good:windows": (signal[owner] + 1.5 * rng.standard_normal((len(owner), 10)), owner),
                  "noise:windows": (rng.standard_normal((len(owner), 10)), owner)}
    rows, pos = _window_rows(owner, np.asarray([5, 2]))
    assert sorted(set(owner[rows])) == [2, 5] and set(pos[owner[rows] == 5]) == {0}
    np.testing.assert_allclose(_clip_mean(np.arange(6.0)[:, None], np.asarray([0, 0, 1, 1, 1, 0]), 2), [[2.0], [3.0]])
    folds = make_folds(d.ids, d.groups, d.labels["quadrant"], n_folds=3, n_repeats=1, seed=0)
    cands = [Candidate("noise-seg", "linear-segments", ["noise:windows"]),
             Candidate("good-seg", "linear-segments", ["good:windows"])]
    rep = run_cv(d, cands, folds, n_inner=2, reference="noise-seg", l2_grid=(1e-2,))
    m = {n: c["metrics"] for n, c in rep["candidates"].items()}
    assert m["good-seg"]["quadrant/f1_macro"]["mean"] > m["noise-seg"]["quadrant/f1_macro"]["mean"] + 0.3
    assert m["good-seg"]["descriptors/roc_auc_macro"]["mean"] > 0.75
    with pytest.raises(KeyError, match="window-level"):
        run_cv(d, [Candidate("bad", "linear-segments", ["good"])], folds, n_inner=2, l2_grid=(1e-2,))


def test_augmented_copies_are_training_rows_only_and_help_a_data_starved_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    import eno_hf.evaluation.cv as cv

    rng = np.random.default_rng(3)
    d = _data(n=64, n_groups=16, signal=0.5)
    k = 6
    owner = np.repeat(np.arange(len(d.ids)), k)
    clean = np.concatenate([np.eye(4)[d.labels["quadrant"]], d.labels["descriptors"]], axis=1) * 0.5  # as _data
    d.augmented = {"good-aug6": (clean[owner] + rng.standard_normal((len(owner), clean.shape[1])), owner)}
    assert cv.augmented_block("good", 6) == "good-aug6" and cv.augmented_block("x:pool", 4) == "x-aug4:pool"
    folds = make_folds(d.ids, d.groups, d.labels["quadrant"], n_folds=4, n_repeats=2, seed=0)
    sizes: list[int] = []
    real_fit = cv.fit_linear

    def spy(X: np.ndarray, y: np.ndarray, *a: object, **kw: object) -> tuple[np.ndarray, np.ndarray]:
        sizes.append(len(X))
        return real_fit(X, y, *a, **kw)

    monkeypatch.setattr(cv, "fit_linear", spy)
    plain, aug = Candidate("plain", "linear", ["good"]), Candidate("aug", "linear", ["good"], augment=6)
    train = np.flatnonzero(folds[0] != 0)
    cv.fit_predict(aug, d, train, np.flatnonzero(folds[0] == 0), n_inner=2, l2_grid=(1e-2,))
    # per head: 2 inner fits on ~half the training part, then the refit on all of it: always 1 + k rows per recording
    assert sizes[-1] == (1 + k) * len(train) and all(s % (1 + k) == 0 for s in sizes)
    rep = run_cv(d, [plain, aug], folds, n_inner=2, reference="plain", l2_grid=(1e-2, 1e-1))
    diff = rep["candidates"]["aug"]["vs_reference"]["quadrant/f1_macro"]
    assert diff["mean"] > 0.04  # measured +0.098; 6 extra noisy views of each training recording: more data, better probe
    with pytest.raises(KeyError, match="augmented blocks"):
        run_cv(d, [Candidate("bad", "linear", ["noise"], augment=6)], folds, n_inner=2, l2_grid=(1e-2,))
