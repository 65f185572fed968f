"""A collection of 2,000 albums (~20,000 tracks) through ingest -> labels -> split: the metadata path
at a size where a quadratic step or a lost row shows, with the scale benchmark's generator
(``benchmarks/synthetic_collection.py``): a RYM-style JSON dump whose tracks point at a few real
4Q clips, 1 % of its albums broken in assorted ways."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from eno_hf.cli import app
from eno_hf.config import load_config
from eno_hf.data.labels import clean_labels, label_matrix
from eno_hf.data.sources import load_recordings
from eno_hf.data.splits import assign_splits
from eno_hf.errors import MetadataError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from synthetic_collection import JSON_BREAKS, make_dump, make_pool  # noqa: E402

N_ALBUMS = 2000


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory, fourq_dir: Path):
    """(DumpInfo, Settings, SourceResult) of the 2,000-album dump with 1 % broken albums."""
    root = tmp_path_factory.mktemp("scale")
    pool = make_pool(root / "audio", 4, source_dir=fourq_dir)
    info = make_dump(root / "dump.json", N_ALBUMS, seed=7, pool=pool, audio_root=root / "audio",
                     broken_fraction=0.01)
    settings = load_config("base", info.source_overrides())
    return info, settings, load_recordings(settings.dataset.source)


def _split(settings, recordings, seed: int) -> tuple[list[str], list[str]]:
    labels = clean_labels(recordings, settings.dataset.labels)
    recs = sorted(labels.recordings, key=lambda r: r.recording_id)  # as the build orders them
    groups = [r.group for r in recs]
    y = label_matrix(recs, labels.vocab)
    cfg = settings.dataset.split.model_copy(update={"seed": seed})
    return groups, assign_splits(groups, y, cfg, dataset="scale")


def test_broken_albums_lose_only_their_rows(collection) -> None:
    info, _, res = collection
    assert info.n_tracks > 18_000 and len(info.expected_rejections) >= len(JSON_BREAKS)
    assert {e["kind"] for e in info.expected_rejections} == set(JSON_BREAKS)  # every kind present
    assert len(res.recordings) == info.n_valid  # every other track accepted
    ids = [r.recording_id for r in res.recordings]
    assert len(set(ids)) == len(ids)
    assert not set(ids) & set(info.lost_ids)
    # one rejected item per broken album or track, each with its reason and where it is
    assert len(res.rejected) == len(info.expected_rejections)
    assert {r["reason"] for r in res.rejected} == {"bad_metadata"}
    wheres = Counter(r["detail"].split(":")[0] for r in res.rejected)
    assert wheres == Counter(e["where"] for e in info.expected_rejections)
    assert all(r["path"] == str(info.path) for r in res.rejected)


def test_split_groups_fractions_and_seed(collection) -> None:
    info, settings, res = collection
    groups, split_of = _split(settings, res.recordings, seed=42)
    assert len(split_of) == info.n_valid
    split_of_group: dict[str, set[str]] = {}
    for g, s in zip(groups, split_of):
        split_of_group.setdefault(g, set()).add(s)
    assert len(split_of_group) == info.n_groups
    assert all(len(s) == 1 for s in split_of_group.values())  # no artist in two splits
    fractions = {"train": 0.8, "validation": 0.1, "test": 0.1}
    by_group = Counter(next(iter(s)) for s in split_of_group.values())
    rows = Counter(split_of)
    for s, f in fractions.items():
        assert abs(by_group[s] / len(split_of_group) - f) < 0.02, (s, by_group)
        assert abs(rows[s] / len(split_of) - f) < 0.04, (s, rows)
    assert _split(settings, res.recordings, seed=42)[1] == split_of  # same seed, same split
    assert _split(settings, res.recordings, seed=43)[1] != split_of


def test_same_seed_same_dump(tmp_path: Path, fourq_dir: Path) -> None:
    pool = make_pool(tmp_path / "audio", 2, source_dir=fourq_dir)
    a = make_dump(tmp_path / "a.json", 50, seed=3, pool=pool, audio_root=tmp_path / "audio", broken_fraction=0.1)
    b = make_dump(tmp_path / "b.json", 50, seed=3, pool=pool, audio_root=tmp_path / "audio", broken_fraction=0.1)
    c = make_dump(tmp_path / "c.json", 50, seed=4, pool=pool, audio_root=tmp_path / "audio", broken_fraction=0.1)
    assert a.path.read_bytes() == b.path.read_bytes() != c.path.read_bytes()


def test_truncated_dump_one_error_naming_the_position(collection, tmp_path: Path) -> None:
    info, _, _ = collection
    raw = info.path.read_bytes()
    cut = tmp_path / "truncated.json"
    cut.write_bytes(raw[: int(len(raw) * 0.6)])  # mid-album: many complete albums before the cut
    n_lines = cut.read_bytes().count(b"\n") + 1
    overrides = [o.replace(str(info.path), str(cut)) for o in info.source_overrides()]
    settings = load_config("base", overrides)
    with pytest.raises(MetadataError) as exc_info:  # no partial result: the whole file is unusable
        load_recordings(settings.dataset.source)
    err = exc_info.value
    assert err.reason == "bad_metadata" and Path(err.path) == cut
    assert err.line is not None and 1 <= err.line <= n_lines  # the position is named
    assert str(cut) in str(err)

    args = ["ingest", "--config", "base"]
    for o in overrides:
        args += ["--set", o]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    text = "".join(result.output.split())  # rich wraps long lines
    assert "".join(f"{cut}:{err.line}".split()) in text, text
    assert "Traceback" not in result.output


def test_label_matrix_rows_match_recordings(collection) -> None:
    """The stratification input has one row per accepted track and the album's labels in it."""
    info, settings, res = collection
    labels = clean_labels(res.recordings, settings.dataset.labels)
    y = label_matrix(labels.recordings, labels.vocab)
    assert y.shape == (info.n_valid, sum(len(v) for v in labels.vocab.values()))
    per_row = np.asarray(y.sum(axis=1)).ravel()
    assert per_row.min() >= 2  # at least one descriptor and one genre each
    assert set(labels.vocab) == {"descriptors", "genres"}


def test_csv_dump_same_accounting(tmp_path: Path, fourq_dir: Path) -> None:
    """The generator's CSV form (one row per track) goes through the CSV adapter with the same
    accounting: every valid track accepted, each broken row rejected naming its line."""
    pool = make_pool(tmp_path / "audio", 2, source_dir=fourq_dir)
    info = make_dump(tmp_path / "dump.csv", 200, seed=5, pool=pool, audio_root=tmp_path / "audio",
                     broken_fraction=0.05, fmt="csv")
    res = load_recordings(load_config("base", info.source_overrides()).dataset.source)
    assert len(res.recordings) == info.n_valid and info.n_valid < info.n_tracks
    assert Counter(r["detail"].split(":")[0] for r in res.rejected) == \
        Counter(e["where"] for e in info.expected_rejections)
    assert {r.group for r in res.recordings} and all(r.group.startswith("artist") for r in res.recordings)
