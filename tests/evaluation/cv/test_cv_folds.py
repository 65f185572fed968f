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


def test_artist_protocol_is_sklearn_stratified_group_kfold_seeded_per_repeat(cv_data) -> None:
    from sklearn.model_selection import StratifiedGroupKFold

    d = cv_data
    folds = make_folds(d.ids, d.groups, d.labels["quadrant"], n_folds=4, n_repeats=2, seed=3, protocol="artist")
    for r in range(2):
        cv = StratifiedGroupKFold(n_splits=4, shuffle=True, random_state=3 + r)
        for f, (_, test) in enumerate(cv.split(np.zeros(len(d.ids)), d.labels["quadrant"], d.groups)):
            assert (folds[r, test] == f).all()


def test_random_protocol_is_stratified_ungrouped_and_covers_every_clip_once_per_repeat(cv_data) -> None:
    d = cv_data
    y = d.labels["quadrant"]
    folds = make_folds(d.ids, d.groups, y, n_folds=10, n_repeats=20, seed=0, protocol="random")
    assert folds.shape == (20, len(d.ids))
    assert ((folds >= 0) & (folds < 10)).all()  # every clip in exactly one test fold per repeat
    for r in range(20):
        for f in range(10):
            test = folds[r] == f
            for c in range(4):  # stratified: each fold holds floor or ceil of a tenth of every class
                n_c = int((y == c).sum())
                assert int((y[test] == c).sum()) in (n_c // 10, -(-n_c // 10))
    split = [g for g in np.unique(d.groups) if len(set(folds[0, d.groups == g].tolist())) > 1]
    assert split  # no grouping: some artist's clips land in several folds
    assert len({folds[r].tobytes() for r in range(20)}) == 20  # each repeat its own shuffle
    with pytest.raises(ValueError, match="protocol"):
        make_folds(d.ids, d.groups, y, protocol="by-album")


def test_fold_files_of_protocols_do_not_collide(cv_data, tmp_path: Path) -> None:
    d = cv_data
    assert folds_file(5, 3, 0) == "folds-k5-r3-s0.json"  # the artist name is unchanged
    assert folds_file(10, 20, 0, "random") == "folds-random-k10-r20-s0.json"
    path = tmp_path / "f.json"
    artist = load_or_make_folds(path, list(d.ids), list(d.groups), d.labels["quadrant"], 5, 1, 0)
    random = load_or_make_folds(path, list(d.ids), list(d.groups), d.labels["quadrant"], 5, 1, 0, "random")
    assert json.loads(path.read_text())["protocol"] == "random"  # a file of another protocol is not reused
    assert not np.array_equal(artist, random)


def test_eno_cv_runs_the_random_protocol_from_the_cli(cv_data, tmp_path: Path, monkeypatch) -> None:
    import datasets
    from typer.testing import CliRunner

    import eno_hf.evaluation.cv.run as run
    from eno_hf.cli import app

    monkeypatch.setattr(datasets, "load_from_disk", lambda path: None)
    monkeypatch.setattr(run, "load_cv_data", lambda *a, **k: cv_data)
    (tmp_path / "ds").mkdir()
    res = CliRunner().invoke(app, ["cv", "--candidates", "label-prior", "--protocol", "random", "--folds", "4",
                                   "--repeats", "2", "--dataset", str(tmp_path / "ds"), "--out", str(tmp_path / "out"),
                                   "--set", f"paths.data_root={tmp_path}", "--json"])
    assert res.exit_code == 0, res.output
    # its own report files: the artist-grouped cv_report.json (what the model card reads) is not replaced
    assert not (tmp_path / "out" / "cv_report.json").exists()
    report = json.loads((tmp_path / "out" / "cv_report-random.json").read_text())
    assert "stratified random (no grouping)" in (tmp_path / "out" / "cv_report-random.md").read_text()
    assert report["protocol"] == "random" and report["folds_file"] == "folds-random-k4-r2-s0.json"
    assert report["n_folds"] == 4 and report["n_repeats"] == 2
    assert len(report["candidates"]["label-prior"]["metrics"]["quadrant/f1_macro"]["folds"]) == 8
    bad = CliRunner().invoke(app, ["cv", "--protocol", "by-album"])
    assert bad.exit_code == 2 and "by-album" in bad.output
