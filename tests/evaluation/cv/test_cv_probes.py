"""evaluation.cv.probes: the ridge path, the logistic probe, the MLP, the prior."""

from __future__ import annotations

import numpy as np
import pytest

from eno_hf.evaluation.cv import Candidate, fit_predict, make_folds
from eno_hf.evaluation.cv.probes import fit_linear, fit_mlp, ridge_path, standardize


def test_fit_linear_separates(make_cv_data) -> None:
    d = make_cv_data(signal=3.0)
    X = standardize(d.blocks["good"])[0]
    W, b = fit_linear(X, d.labels["quadrant"], "singlelabel", 4, l2=1e-3)
    assert ((X @ W + b).argmax(1) == d.labels["quadrant"]).mean() > 0.9
    Wb, bb = fit_linear(X, d.labels["quadrant"], "singlelabel", 4, l2=1e-3, balanced=True)
    assert not np.allclose(W, Wb)  # class weights change the fit (the classes are not balanced)


def test_ridge_path_matches_primal_solution() -> None:
    rng = np.random.default_rng(3)
    X, Y, Z = rng.standard_normal((30, 8)), rng.standard_normal((30, 3)), rng.standard_normal((5, 8))
    for alpha, got in zip((0.1, 2.0), ridge_path(X, Y, Z, (0.1, 2.0))):
        xm, ym = X.mean(0), Y.mean(0)
        W = np.linalg.solve((X - xm).T @ (X - xm) + alpha * 8 * np.eye(8), (X - xm).T @ (Y - ym))
        np.testing.assert_allclose(got, (Z - xm) @ W + ym, atol=1e-8)


def test_mlp_trains_around_unlabelled_rows(make_cv_data) -> None:
    """Rows whose tags are missing (-1) train the quadrant head only: the fit stays finite, is
    seeded, and labelling those rows changes the tag head."""
    d = make_cv_data(n=64, n_groups=16)
    X = standardize(d.blocks["good"])[0]
    tags = d.labels["descriptors"].copy()
    tags[:20] = -1
    labels = {"quadrant": d.labels["quadrant"], "descriptors": tags}
    a = fit_mlp(X, labels, d.heads, epochs=3, seed=1)(X)
    assert all(np.isfinite(v).all() for v in a.values())
    np.testing.assert_array_equal(a["descriptors"], fit_mlp(X, labels, d.heads, epochs=3, seed=1)(X)["descriptors"])
    c = fit_mlp(X, {**labels, "descriptors": d.labels["descriptors"]}, d.heads, epochs=3, seed=1)(X)
    assert not np.allclose(a["descriptors"], c["descriptors"])


def test_mlp_learns_through_the_one_trainer(make_cv_data, monkeypatch) -> None:
    """The probe's MLP is an eno model trained by ``training.train.fit`` (the trainer of ``eno train``
    and of the default's CV), and it learns: well-separated quadrants are fitted."""
    import eno_hf.training.train as train_module

    calls = []
    real_fit = train_module.fit

    def spy(settings, model, *args, **kwargs):
        calls.append((type(model).__name__, settings.train.epochs, settings.model.encoder))
        return real_fit(settings, model, *args, **kwargs)

    monkeypatch.setattr(train_module, "fit", spy)
    d = make_cv_data(signal=3.0)
    X = standardize(d.blocks["good"])[0]
    labels = {h.name: d.labels[h.name] for h in d.heads}
    logits = fit_mlp(X, labels, d.heads, epochs=20, seed=0)(X)
    assert calls == [("EnoForAudioTagging", 20, "embeddings")]
    assert (logits["quadrant"].argmax(1) == d.labels["quadrant"]).mean() > 0.9


def test_balanced_is_for_linear_probes_only() -> None:
    assert Candidate("ok", "linear", ["x"], balanced=True).balanced
    with pytest.raises(ValueError, match="linear probes only"):
        Candidate("bad", "mlp", ["x"], balanced=True)


def test_prior_predicts_the_training_frequencies(cv_data) -> None:
    d = cv_data
    train, test = np.arange(100), np.arange(100, 160)
    probs, _ = fit_predict(Candidate("prior", "prior"), d, train, test)
    np.testing.assert_allclose(probs["quadrant"][0], np.bincount(d.labels["quadrant"][train], minlength=4) / 100)
    np.testing.assert_allclose(probs["descriptors"][3], d.labels["descriptors"][train].mean(0))
    assert probs["quadrant"].shape == (60, 4)


def test_probe_needs_features() -> None:
    with pytest.raises(ValueError, match="needs features"):
        Candidate("bad", "linear")
    with pytest.raises(ValueError, match="model must be one of"):
        Candidate("bad", "linear-segments", ["x"])


def test_linear_probe_chooses_l2_on_inner_folds_and_calibrates(cv_data) -> None:
    d = cv_data
    folds = make_folds(d.ids, d.groups, d.labels["quadrant"], n_folds=3, n_repeats=1, seed=0)
    train, test = np.flatnonzero(folds[0] != 0), np.flatnonzero(folds[0] == 0)
    probs, info = fit_predict(Candidate("good", "linear", ["good"]), d, train, test, n_inner=2, l2_grid=(1e-2, 1e-1))
    assert info["quadrant_l2"] in (1e-2, 1e-1) and info["quadrant_temperature"] > 0
    np.testing.assert_allclose(probs["quadrant"].sum(1), 1.0)
    assert not np.allclose(probs["quadrant"], probs["quadrant:raw"])
