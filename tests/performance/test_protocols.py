"""performance.protocols: the four outer-fold protocols on hand-built performances and on the real
PercePiano labels: passages held out whole, performers never on both sides, the set-aside test
set on no side, the grouped protocols' folds unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from eno_hf.data.folds import ALWAYS_TRAIN, SET_ASIDE
from eno_hf.performance.percepiano import PercePianoRow
from eno_hf.performance.protocols import ProtocolFolds, composition4fold, performer4fold, protocol_folds
from eno_hf.performance.samplers import grouped_folds

BEETHOVEN = ["1", "2", "3", "4", "7", "11", "14", "18", "19", "22", "24", "26", "Score", "Score2"]
SCHUBERT = [str(p) for p in range(13)] + ["Score"]


def _row(piece: str, segment: str, performer: str, n_bars: int = 8) -> PercePianoRow:
    sid = f"{piece}_{n_bars}bars_{performer}_{segment}"
    return PercePianoRow(segment_id=sid, piece=piece, n_bars=n_bars, segment=segment, performer=performer,
                         is_score=performer.startswith("Score"), midi=Path(f"/nonexistent/{sid}.mid"),
                         labels=np.full(19, 0.5, dtype=np.float32))


def _rows() -> list[PercePianoRow]:
    """Beethoven: 3 variations x 1 passage x 14 players; Schubert: 2 movements x 6 passages x 14
    players, minus a few (passages of 1 and 2 performances)."""
    rows = [_row(f"Beethoven_WoO80_var{v}", "1", p) for v in (3, 4, 5) for p in BEETHOVEN]
    rows += [_row(f"Schubert_D960_mv{m}", f"{s:02d}", p) for m in (2, 3) for s in range(1, 7) for p in SCHUBERT]
    rows += [_row("Schubert_D960_mv2", "20", "4"), _row("Schubert_D960_mv3", "21", "5"),
             _row("Schubert_D960_mv3", "21", "6")]
    return rows


def _sides(pf: ProtocolFolds) -> None:
    """Every fold: no group on both sides, no set-aside performance on either."""
    aside = set(pf.set_aside.tolist())
    for tr, te in pf.folds:
        assert not {pf.groups[i] for i in tr} & {pf.groups[i] for i in te}
        assert not aside & (set(tr.tolist()) | set(te.tolist()))
        assert len(tr) + len(te) + len(aside) == len(pf.fold_of)


def test_composition4fold_holds_out_whole_passages_after_setting_15_percent_aside() -> None:
    rows = _rows()
    pf = protocol_folds(rows, "composition4fold")
    passages = [r.passage for r in rows]
    assert pf.groups == passages and len(pf.folds) == 4
    for p in set(passages):  # every performance of a passage in one fold (or all set aside)
        assert len({int(pf.fold_of[i]) for i, q in enumerate(passages) if q == p}) == 1
    _sides(pf)
    aside = pf.set_aside
    assert 0.15 * len(rows) <= len(aside) < 0.15 * len(rows) + 14  # stops at the first passage past 15 %
    assert all(sum(q == passages[i] for q in passages) > 1 for i in aside)  # only passages of several
    other = {f"{r.piece}" for i, r in enumerate(rows) if pf.fold_of[i] >= 0}
    assert {rows[i].piece for i in aside} <= other  # other passages of a set-aside piece still train
    per_fold = [len({passages[i] for i in np.flatnonzero(pf.fold_of == f)}) for f in range(4)]
    assert max(per_fold) - min(per_fold) <= 1  # passages dealt round-robin
    assert (pf.fold_of != ALWAYS_TRAIN).all()
    np.testing.assert_array_equal(pf.fold_of, protocol_folds(list(reversed(rows)), "composition4fold").fold_of[::-1])
    other_seed = composition4fold([r.segment_id for r in rows], passages, seed=7)
    assert not np.array_equal(other_seed, pf.fold_of)


def test_composition4fold_stops_setting_aside_when_no_passage_of_several_is_left() -> None:
    ids = [f"p{i}_x" for i in range(10)]
    fold_of = composition4fold(ids, [f"p{i}" for i in range(10)])  # every passage played once
    assert (fold_of >= 0).all() and sorted(np.bincount(fold_of).tolist()) == [2, 2, 3, 3]


def test_performer4fold_is_the_datasets_performer_numbering() -> None:
    rows = _rows()
    pf = protocol_folds(rows, "performer4fold")
    fold = {(r.piece.split("_")[0], r.performer): int(f) for r, f in zip(rows, pf.fold_of)}
    # Beethoven players are numbered by their place in 1, 2, 3, 4, 7, 11, ...: 2 and 3 are the test set
    assert [fold["Beethoven", p] for p in BEETHOVEN] == [ALWAYS_TRAIN, SET_ASIDE, SET_ASIDE, 0, 0, 1, 1, 2, 2, 3, 3,
                                                         ALWAYS_TRAIN, ALWAYS_TRAIN, ALWAYS_TRAIN]
    # Schubert players by their own number: 1-2 test, 3-10 two per fold, 0, 11, 12 and Score always train
    assert [fold["Schubert", p] for p in SCHUBERT] == [ALWAYS_TRAIN, SET_ASIDE, SET_ASIDE, 0, 0, 1, 1, 2, 2, 3, 3,
                                                       ALWAYS_TRAIN, ALWAYS_TRAIN, ALWAYS_TRAIN]
    assert pf.groups[0] == "Beethoven/1"
    _sides(pf)  # a performer is never on both sides
    assert set(pf.evaluated.tolist()) == {i for i, f in enumerate(pf.fold_of) if f >= 0}
    with pytest.raises(ValueError, match="Beethoven performer"):
        performer4fold(["Beethoven_WoO80_thema"], ["5"])
    with pytest.raises(ValueError, match="hold no performance"):
        protocol_folds([r for r in rows if r.performer not in ("9", "10", "22", "24")], "performer4fold")


def test_piece_and_performer_protocols_keep_their_folds() -> None:
    rows = _rows()
    for protocol in ("piece", "performer"):
        key = [getattr(r, protocol) for r in rows]
        pf = protocol_folds(rows, protocol, n_folds=3, seed=5)
        assert len(pf.set_aside) == 0 and len(pf.evaluated) == len(rows)
        for (a, b), (c, d) in zip(pf.folds, grouped_folds(key, 3, 5), strict=True):
            np.testing.assert_array_equal(a, c)
            np.testing.assert_array_equal(b, d)
        _sides(pf)
    with pytest.raises(ValueError, match="unknown performance protocol"):
        protocol_folds(rows, "segment")


def test_protocols_on_the_real_labels(percepiano_rows) -> None:
    rows = sorted((r for r in percepiano_rows if r.rated), key=lambda r: r.segment_id)
    comp = protocol_folds(rows, "composition4fold")
    _sides(comp)
    assert 0.15 <= len(comp.set_aside) / len(rows) < 0.17
    perf = protocol_folds(rows, "performer4fold")
    _sides(perf)
    beethoven_test = {r.performer for r, f in zip(rows, perf.fold_of) if f == SET_ASIDE and "Beethoven" in r.piece}
    schubert_test = {r.performer for r, f in zip(rows, perf.fold_of) if f == SET_ASIDE and "Schubert" in r.piece}
    assert beethoven_test == {"2", "3"} and schubert_test == {"1", "2"}
    assert [int((perf.fold_of == f).sum()) for f in range(4)] == [156, 156, 156, 156]


def test_probe_cv_pools_only_the_held_out_performances() -> None:
    from dataclasses import replace

    from eno_hf.performance.job import probe_cv

    rng = np.random.default_rng(0)
    midi = rng.standard_normal((len(_rows()), 6))
    labels = (0.5 + 0.1 * np.tanh(midi @ rng.standard_normal((6, 19)))).astype(np.float32)
    rows = [replace(r, labels=labels[i]) for i, r in enumerate(_rows())]
    for protocol in ("composition4fold", "performer4fold"):
        pf = protocol_folds(rows, protocol)
        out = probe_cv(rows, {"midi": midi}, [], protocol, n_boot=20, inner_folds=3)
        assert out["folds"] == 4 and out["n"] == len(rows)
        assert out["n_evaluated"] == len(pf.evaluated) < len(rows) and out["set_aside"] == len(pf.set_aside) > 0
        assert out["selected"]["mean_r2"] > out["training_mean"]["mean_r2"] + 0.2  # the MIDI block predicts
        assert out["selected"]["n"] == out["training_mean"]["n"] == len(pf.evaluated)  # set-aside rows not scored


def test_probe_cv_predicts_held_out_rows_from_test_blocks() -> None:
    """``test_blocks``: trained and selected on ``blocks`` only, the held-out rows predicted from the
    other input. The same input gives the same figures; noise in place of the MIDI statistics of the
    held-out rows (a failed transcription, say) leaves the inner selection as it was and ruins the
    held-out R²; the true statistics with a small error keep most of it."""
    from dataclasses import replace

    from eno_hf.performance.job import probe_cv

    rng = np.random.default_rng(1)
    midi = rng.standard_normal((len(_rows()), 6))
    labels = (0.5 + 0.1 * np.tanh(midi @ rng.standard_normal((6, 19)))).astype(np.float32)
    rows = [replace(r, labels=labels[i]) for i, r in enumerate(_rows())]
    base = probe_cv(rows, {"midi": midi}, [], "performer4fold", n_boot=20, inner_folds=3)
    same = probe_cv(rows, {"midi": midi}, [], "performer4fold", n_boot=20, inner_folds=3, test_blocks={"midi": midi})
    assert same["selected"]["mean_r2"] == base["selected"]["mean_r2"]
    noise = probe_cv(rows, {"midi": midi}, [], "performer4fold", n_boot=20, inner_folds=3,
                     test_blocks={"midi": rng.standard_normal(midi.shape)})
    assert noise["inner_r2"] == base["inner_r2"]  # selection saw the training rows only
    assert noise["selected"]["mean_r2"] < base["training_mean"]["mean_r2"] + 0.05 < base["selected"]["mean_r2"]
    close = probe_cv(rows, {"midi": midi}, [], "performer4fold", n_boot=20, inner_folds=3,
                     test_blocks={"midi": midi + 0.1 * rng.standard_normal(midi.shape)})
    assert noise["selected"]["mean_r2"] < close["selected"]["mean_r2"] < base["selected"]["mean_r2"]
