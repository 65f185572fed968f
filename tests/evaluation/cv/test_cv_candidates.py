"""evaluation.cv.candidates: the candidates of configs/cv/*.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

import eno_hf.evaluation.cv as cv
from eno_hf.evaluation.cv.candidates import BASELINES, candidate_names, load_candidate, load_candidates

HEADLINE = ("label-prior", "fingerprint-mfcc-probe", "msd-musicnn-logreg", "default", "default-refit",
            "ensemble+msd-mlp-5seeds", "default-val3")


def test_the_headline_candidates_and_baselines_are_declared() -> None:
    names = candidate_names()
    assert set(HEADLINE) <= set(names) and set(BASELINES) <= set(names)
    assert cv.CANDIDATES["default"].model == "default"
    assert cv.CANDIDATES["default-refit"].refit and cv.CANDIDATES["default-val3"].val_inner == 3
    assert cv.CANDIDATES["msd-musicnn-logreg"].model == "linear"
    assert cv.CANDIDATES["msd-musicnn-logreg"].features == ["msd-musicnn"]
    assert cv.CANDIDATES["msd-musicnn-probe"].features == ["msd-musicnn"]
    assert cv.CANDIDATES["ensemble+msd-mlp-5seeds"].seeds == 5
    for c in load_candidates():
        assert c.description, c.name


def test_unknown_names_and_fields_are_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="no-such"):
        load_candidates(["label-prior", "no-such"])
    (tmp_path / "odd.yaml").write_text("model: ridge\nfeatures: [x]\naugment: 4\n")
    with pytest.raises(ValueError, match="augment"):
        load_candidate("odd", tmp_path)
    (tmp_path / "ok.yaml").write_text("model: mlp\nfeatures: [x]\nseeds: 2\n")
    assert load_candidate("ok", tmp_path).seeds == 2 and candidate_names(tmp_path) == ["odd", "ok"]
