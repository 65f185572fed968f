"""evaluation.cv.folds: artist-grouped, complete, seeded, saved and reused folds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from eno_hf.evaluation.cv.folds import folds_file, inner_folds, load_or_make_folds, make_folds


def test_folds_are_grouped_complete_seeded_and_saved(cv_data, tmp_path: Path) -> None:
    d = cv_data
    folds = make_folds(d.ids, d.groups, d.labels["quadrant"], n_folds=5, n_repeats=3, seed=7)
    assert folds.shape == (3, len(d.ids)) and set(np.unique(folds)) == set(range(5))
    for r in range(3):
        for g in np.unique(d.groups):
            assert len(set(folds[r, d.groups == g].tolist())) == 1  # an artist never spans two folds
    assert not np.array_equal(folds[0], folds[1])
    np.testing.assert_array_equal(folds, make_folds(d.ids, d.groups, d.labels["quadrant"], 5, 3, seed=7))
    path = tmp_path / folds_file(5, 3, 7)
    assert path.name == "folds-k5-r3-s7.json"
    saved = load_or_make_folds(path, list(d.ids), list(d.groups), d.labels["quadrant"], 5, 3, 7)
    assert json.loads(path.read_text())["seed"] == 7
    path.write_text(path.read_text().replace('"seed": 7', '"seed": 7 '))  # same content: reused as is
    np.testing.assert_array_equal(load_or_make_folds(path, list(d.ids), list(d.groups), d.labels["quadrant"], 5, 3, 7),
                                  saved)
    with pytest.raises(ValueError, match="groups"):
        make_folds(d.ids[:8], d.groups[:8], d.labels["quadrant"][:8], n_folds=5)


def test_inner_folds_keep_artists_apart_and_cap_at_the_number_of_artists(cv_data) -> None:
    groups = cv_data.groups[:12]  # 3 artists
    pairs = inner_folds(groups, 9)
    assert len(pairs) == 3
    for tr, va in pairs:
        assert not set(groups[tr]) & set(groups[va])
