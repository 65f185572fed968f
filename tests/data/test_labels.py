"""Label cleaning, vocabularies, multi-hot matrices (generated rows and the real 4Q labels)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

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
    assert sp.issparse(y) and y.format == "csr" and y.dtype == np.uint8
    # tasks sorted: genre (x), moods (a, b)
    assert y.toarray().tolist() == [[1, 1, 0], [0, 1, 1]]
    assert y[[1]].toarray().tolist() == [[0, 1, 1]]  # row indexing as the build's y[tv]
    assert label_matrix(res.recordings, res.vocab, ["moods"]).shape == (2, 2)
    assert label_matrix(res.recordings, {}).shape == (2, 0)
    with pytest.raises(KeyError):
        label_matrix(res.recordings, res.vocab, ["nope"])


def _dense_label_matrix(recordings, vocab, tasks=None) -> np.ndarray:
    """The former dense construction: one ``to_multi_hot`` block per task, concatenated."""
    blocks = []
    for t in (sorted(vocab) if tasks is None else tasks):
        rows = [r.multilabel[t] if t in r.multilabel
                else ([] if r.singlelabel.get(t) is None else [r.singlelabel[t]])
                for r in recordings]
        blocks.append(to_multi_hot(rows, vocab[t], unknown="ignore"))
    return (np.concatenate(blocks, axis=1) if blocks
            else np.zeros((len(recordings), 0), dtype=np.uint8))


def test_label_matrix_duplicates_unknown_and_missing_tags() -> None:
    recs = [Recording("a", None, multilabel={"m": ["x", "x", "zz", "y"]}, singlelabel={"s": "q"}),
            Recording("b", None, multilabel={}, singlelabel={"s": None, "m": "x"}),
            Recording("c", None, multilabel={"m": []}, singlelabel={"s": "unknown"})]
    vocab = {"m": ["x", "y"], "s": ["p", "q"]}
    y = label_matrix(recs, vocab)
    assert y.toarray().tolist() == _dense_label_matrix(recs, vocab).tolist()
    assert y.toarray().tolist() == [[1, 1, 0, 1], [1, 0, 0, 0], [0, 0, 0, 0]]
    assert (y.data == 1).all() and y.has_canonical_format


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
    assert (np.asarray(y.sum(axis=0)) > 0).all()
    dense = _dense_label_matrix(res.recordings, res.vocab)
    assert dense.sum() > 360 and np.array_equal(y.toarray(), dense)
    sub = ["quadrant", "descriptors"]
    assert np.array_equal(label_matrix(res.recordings, res.vocab, sub).toarray(),
                          _dense_label_matrix(res.recordings, res.vocab, sub))


def _reference_clean_labels(recordings, cfg: LabelsConfig):
    """The former implementation (per-task row lists, then ``dataclasses.replace``), kept to pin
    the output of the one-pass ``clean_labels``."""
    from dataclasses import replace

    from eno_hf.data.labels import _alias_map

    def clean_row(tags, aliases):
        out = []
        for tag in tags:
            if tag is None:
                continue
            norm = normalize_tag(tag, cfg.lowercase)
            for t in aliases.get(norm, [norm]):
                if t and t not in out:
                    out.append(t)
        return out

    ml_tasks = sorted({t for r in recordings for t in r.multilabel})
    sl_tasks = sorted({t for r in recordings for t in r.singlelabel})
    ml = {t: [clean_row(r.multilabel.get(t, []), _alias_map(cfg, t)) for r in recordings]
          for t in ml_tasks}
    sl = {t: [clean_row([] if r.singlelabel.get(t) is None else [r.singlelabel[t]],
                        _alias_map(cfg, t))[:1] for r in recordings] for t in sl_tasks}
    vocab, dropped = {}, {}
    for t, rows in {**ml, **sl}.items():
        counts = Counter(tag for row in rows for tag in row)
        min_count = cfg.min_count.get(t, cfg.default_min_count)
        drop = {tag: n for tag, n in counts.items() if n < min_count}
        dropped[t] = dict(sorted(drop.items()))
        vocab[t] = sorted(tag for tag in counts if tag not in drop)
        for row in rows:
            row[:] = [tag for tag in row if tag not in drop]
    out = [replace(r, multilabel={**r.multilabel, **{t: ml[t][i] for t in ml_tasks}},
                   singlelabel={**r.singlelabel, **{t: (sl[t][i][0] if sl[t][i] else None)
                                                    for t in sl_tasks}},
                   numeric=dict(r.numeric), extra=dict(r.extra))
           for i, r in enumerate(recordings)]
    return out, vocab, dropped


@pytest.mark.parametrize("seed", range(6))
def test_clean_labels_matches_reference_on_generated_rows(seed: int) -> None:
    import copy

    rng = np.random.default_rng(seed)
    raw = ["Calm", " calm ", "CALM", "Hip  Hop", "hip hop", "Calm/Peaceful", "", "  ", "Noise",
           "serene", "Rock", "rock ", "Jazz", "STRASSE", "straße", None, "x", "y", "z", "Dark"]

    def tags(k: int) -> list:
        return [raw[i] for i in rng.integers(0, len(raw), size=k)]

    recs = []
    for i in range(300):
        ml = {}
        if rng.random() < 0.9:
            ml["moods"] = tags(int(rng.integers(0, 6)))
        if rng.random() < 0.5:
            ml["genres"] = tags(int(rng.integers(0, 3)))
        sl = {"quadrant": raw[int(rng.integers(0, len(raw)))]} if rng.random() < 0.8 else {}
        recs.append(Recording(f"r{i}", None, multilabel=ml, singlelabel=sl,
                              numeric={"bpm": float(i)}, group=f"g{i % 7}",
                              extra={"n": i}))
    cfg = LabelsConfig(lowercase=bool(seed % 2 == 0),
                       aliases={"moods": {"Calm/Peaceful": ["calm", "peaceful"], "serene": "calm",
                                          "noise": ""},
                                "quadrant": {"Rock": ["rock", "pop"], "jazz": []}},
                       min_count={"genres": 30}, default_min_count=int(seed % 3) * 10 + 1)
    before = copy.deepcopy(recs)
    res = clean_labels(recs, cfg)
    ref, vocab, dropped = _reference_clean_labels(recs, cfg)
    assert recs == before  # input not modified
    assert res.vocab == vocab and list(res.vocab) == list(vocab)
    assert res.dropped == dropped and list(res.dropped) == list(dropped)
    assert res.recordings == ref
    assert all(list(a.multilabel) == list(b.multilabel)
               and list(a.singlelabel) == list(b.singlelabel) for a, b in zip(res.recordings, ref))
    assert any(dropped.values()) and sum(map(len, vocab.values())) > 5  # the case is not trivial
    assert all(a is not b and a.multilabel is not b.multilabel
               for a, b in zip(res.recordings, recs))


def test_clean_labels_in_place_equals_the_copy() -> None:
    """``in_place=True`` (the build's way) cleans the given recordings themselves, with the
    same result as the copying default."""
    import copy

    recs = [Recording(f"r{i}", None, multilabel={"moods": [" Calm", "DARK", "rare"][: 1 + i % 3]},
                      singlelabel={"q": ["Q1", "q1 ", "Q2"][i % 3]}, numeric={"x": float(i)})
            for i in range(30)]
    cfg = LabelsConfig(min_count={"moods": 5})
    copied = clean_labels(copy.deepcopy(recs), cfg)
    ids = [id(r) for r in recs]
    in_place = clean_labels(recs, cfg, in_place=True)
    assert [id(r) for r in in_place.recordings] == ids  # the same objects, cleaned
    assert in_place.recordings == copied.recordings
    assert in_place.vocab == copied.vocab and in_place.dropped == copied.dropped
    assert recs[0].multilabel["moods"] == ["calm"]
