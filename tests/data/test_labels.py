"""Label cleaning, vocabularies, multi-hot matrices (generated rows and the real 4Q labels)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from eno_hf.config import LabelsConfig, load_config
from eno_hf.data.labels import clean_labels, label_matrix, normalize_tag, to_multi_hot
from eno_hf.data.recording import Recording
from eno_hf.data.sources import load_recordings

FOURQ_YAML = Path(__file__).resolve().parents[2] / "configs" / "datasets" / "4q.yaml"


def rec(i: int, tags: list[str], cls: str | None = None) -> Recording:
    return Recording(f"r{i}", None, multilabel={"moods": tags}, singlelabel={"genre": cls},
                     numeric={"bpm": float(i)})


def test_normalize_tag() -> None:
    assert normalize_tag("  Hip \t Hop ") == "hip hop"
    assert normalize_tag(" Calm/Peaceful ", lowercase=False) == "Calm/Peaceful"
    assert normalize_tag("STRASSE") == "strasse"


def test_trim_casefold_dedupe_and_vocab_sorted() -> None:
    recs = [rec(0, [" Calm ", "calm", "", "Calm/Peaceful", "Zesty"], " Rock "),
            rec(1, ["ZESTY", "  "], "rock")]
    res = clean_labels(recs, LabelsConfig())
    assert res.recordings[0].multilabel["moods"] == ["calm", "calm/peaceful", "zesty"]
    assert res.recordings[1].multilabel["moods"] == ["zesty"]
    assert res.vocab == {"moods": ["calm", "calm/peaceful", "zesty"], "genre": ["rock"]}
    assert res.recordings[0].singlelabel["genre"] == "rock"
    assert res.recordings[1].numeric == {"bpm": 1.0}
    assert res.dropped == {"moods": {}, "genre": {}}
    # the input is not modified
    assert recs[0].multilabel["moods"][0] == " Calm " and recs[0].singlelabel["genre"] == " Rock "


def test_lowercase_off_keeps_case() -> None:
    res = clean_labels([rec(0, ["Calm", "calm"])], LabelsConfig(lowercase=False))
    assert res.vocab["moods"] == ["Calm", "calm"]


def test_aliases_map_split_and_delete() -> None:
    cfg = LabelsConfig(aliases={"moods": {"Calm/Peaceful": ["calm", "peaceful"],
                                          "Serene": "calm", "noise": ""},
                                "genre": {"Pop/Rock": "rock"}})
    recs = [rec(0, ["Calm/Peaceful", "serene", "NOISE"], "pop/rock"), rec(1, ["Peaceful"], "Jazz")]
    res = clean_labels(recs, cfg)
    assert res.recordings[0].multilabel["moods"] == ["calm", "peaceful"]
    assert res.recordings[1].multilabel["moods"] == ["peaceful"]
    assert res.vocab["moods"] == ["calm", "peaceful"]
    assert [r.singlelabel["genre"] for r in res.recordings] == ["rock", "jazz"]


def test_min_count_per_task_and_default() -> None:
    recs = [rec(0, ["a", "b", "c"], "x"), rec(1, ["a", "b"], "x"), rec(2, ["a", "a"], "y"),
            rec(3, [], None)]
    res = clean_labels(recs, LabelsConfig(min_count={"moods": 3}, default_min_count=2))
    assert res.vocab == {"moods": ["a"], "genre": ["x"]}
    # counts are per recording (a duplicated tag in one row counts once)
    assert res.dropped == {"moods": {"b": 2, "c": 1}, "genre": {"y": 1}}
    assert [r.multilabel["moods"] for r in res.recordings] == [["a"], ["a"], ["a"], []]
    assert [r.singlelabel["genre"] for r in res.recordings] == ["x", "x", None, None]


def test_to_multi_hot_and_label_matrix() -> None:
    m = to_multi_hot([["b"], ["a", "c"], []], ["a", "b", "c"])
    assert m.dtype == np.uint8 and m.shape == (3, 3)
    assert m.tolist() == [[0, 1, 0], [1, 0, 1], [0, 0, 0]]
    with pytest.raises(ValueError, match="'z'"):
        to_multi_hot([["z"]], ["a"])
    assert to_multi_hot([["z", "a"]], ["a"], unknown="ignore").tolist() == [[1]]
    res = clean_labels([rec(0, ["a"], "x"), rec(1, ["b", "a"], None)], LabelsConfig())
    y = label_matrix(res.recordings, res.vocab)
    # tasks sorted: genre (x), moods (a, b)
    assert y.tolist() == [[1, 1, 0], [0, 1, 1]]
    assert label_matrix(res.recordings, res.vocab, ["moods"]).shape == (2, 2)


def test_fourq_labels(fourq_dir: Path) -> None:
    ds = load_config(FOURQ_YAML).dataset
    res = clean_labels(load_recordings(ds.source).recordings, ds.labels)
    assert res.vocab["quadrant"] == ["q1", "q2", "q3", "q4"]
    assert "pop/rock" in res.vocab["genres"] and "stage & screen" in res.vocab["genres"]
    counts = Counter(t for r in res.recordings for t in r.multilabel["descriptors"])
    assert set(counts) == set(res.vocab["descriptors"])
    assert min(counts.values()) >= 10 and all(n < 10 for n in res.dropped["descriptors"].values())
    assert 50 <= len(res.vocab["descriptors"]) <= 200
    gcounts = Counter(t for r in res.recordings for t in r.multilabel["genres"])
    assert min(gcounts.values()) >= 5
    assert all(t == t.casefold() for t in res.vocab["descriptors"])
    y = label_matrix(res.recordings, res.vocab)
    assert y.shape == (360, sum(len(v) for v in res.vocab.values()))
    assert (y.sum(axis=0) > 0).all()
