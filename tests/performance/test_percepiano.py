"""PercePiano loading, MIDI statistics, degradations (T2 ground truth), augmentation, samplers."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from eno_hf.errors import RejectedInput
from eno_hf.features.midi import MIDI_STATISTICS, midi_statistics
from eno_hf.performance.augment import AugmentConfig, augment_waveform
from eno_hf.performance.degrade import degrade_midi
from eno_hf.performance.samplers import group_batches, grouped_folds, ordered_group_batches


def test_loader_fixes_swapped_schubert_columns(percepiano_rows) -> None:
    rows = percepiano_rows
    assert len(rows) == 1043 and sum(r.rated for r in rows) == 1033
    schubert = [r for r in rows if r.piece.startswith("Schubert")]
    assert {r.performer for r in schubert} == {str(i) for i in range(11)} | {"12", "Score"}
    passages = Counter(r.passage for r in rows)
    assert len(passages) == 83 and max(passages.values()) == 14
    assert all(r.is_score == (r.performer in ("Score", "Score2")) for r in rows)
    assert all(np.all((r.labels > 0) & (r.labels <= 1)) for r in rows if r.rated)


def test_midi_statistics_real_and_rejections(percepiano_rows, tmp_path: Path) -> None:
    s = midi_statistics(percepiano_rows[0].midi)
    assert list(s) == list(MIDI_STATISTICS) and all(np.isfinite(v) for v in s.values())
    assert 5 < s["duration_s"] < 60 and s["n_notes"] > 20 and 0 <= s["pedal_fraction"] <= 1
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd\x00\x00\x00\x06garbage")
    with pytest.raises(RejectedInput) as exc:
        midi_statistics(bad)
    assert exc.value.reason == "undecodable"
    (tmp_path / "empty.mid").write_bytes(b"")
    with pytest.raises(RejectedInput, match="undecodable"):
        midi_statistics(tmp_path / "empty.mid")
    with pytest.raises(RejectedInput, match="missing_file"):
        midi_statistics(tmp_path / "absent.mid")


def test_degradations_grow_with_severity(percepiano_rows, tmp_path: Path) -> None:
    """The MIDI-level ground truth of T2: each degradation's own measure moves monotonically."""
    import pretty_midi

    src = percepiano_rows[5].midi
    orig = pretty_midi.PrettyMIDI(str(src))
    o_notes = sorted((n for i in orig.instruments for n in i.notes), key=lambda n: (n.start, n.pitch))
    vel_std, onset_dev, wrong = [], [], []
    for sev in range(4):
        for kind in ("velocity_flatten", "timing_jitter", "wrong_notes"):
            p = tmp_path / f"{kind}{sev}.mid"
            p.write_bytes(degrade_midi(src, kind, sev, 3, seed=1))
            assert degrade_midi(src, kind, sev, 3, seed=1) == p.read_bytes()          # seeded: same bytes
            notes = [n for i in pretty_midi.PrettyMIDI(str(p)).instruments for n in i.notes]
            if kind == "velocity_flatten":
                vel_std.append(np.std([n.velocity for n in notes]))
            elif kind == "timing_jitter":
                onset_dev.append(np.mean(np.abs(np.sort([n.start for n in notes]) - np.sort([n.start for n in o_notes]))))
            else:
                wrong.append(sum(a != b for a, b in zip(sorted(n.pitch for n in notes), sorted(n.pitch for n in o_notes)))
                             + abs(np.mean([n.pitch for n in notes]) - np.mean([n.pitch for n in o_notes])))
    assert vel_std[0] > vel_std[1] > vel_std[2] > vel_std[3] and vel_std[3] < 1.0
    assert onset_dev[0] < 1e-3 < onset_dev[1] < onset_dev[2] < onset_dev[3]
    assert wrong[0] == 0 and wrong[3] > wrong[1] > 0
    with pytest.raises(ValueError, match="unknown degradation 'tempo'"):
        degrade_midi(src, "tempo", 1)


def test_augmentation_is_seeded_and_changes_the_signal() -> None:
    t = np.arange(16000 * 2) / 16000
    x = (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
    cfg = AugmentConfig(seed=3)
    a, pa = augment_waveform(x, 16000, cfg, "seg_1")
    b, pb = augment_waveform(x, 16000, cfg, "seg_1")
    c, pc = augment_waveform(x, 16000, cfg, "seg_2")
    np.testing.assert_array_equal(a, b)
    assert pa == pb and pa != pc and a.shape == x.shape and np.isfinite(a).all()
    always = AugmentConfig(**{k: {"p": 1.0, "low": v.low, "high": v.high} for k, v in AugmentConfig() if k != "seed"})
    y, applied = augment_waveform(x, 16000, always, "k")
    assert set(applied) == {"reverb", "compressor", "lowpass", "pitch_shift", "eq", "pink_noise", "gain"}
    assert np.abs(y - x).mean() > 1e-3


def test_samplers_are_deterministic_and_folds_grouped(percepiano_rows) -> None:
    rows = [r for r in percepiano_rows if r.rated]
    passages = [r.passage for r in rows]
    b1, b2 = group_batches(passages, 8, 4, seed=1, epoch=0), group_batches(passages, 8, 4, seed=1, epoch=0)
    assert b1 == b2 and b1 != group_batches(passages, 8, 4, seed=1, epoch=1)
    assert sorted(i for b in b1 for i in b) == list(range(len(rows)))              # each item once per epoch
    assert np.mean([len(b) - len({passages[i] for i in b}) for b in b1]) > 8      # many same-passage pairs
    for key in ("performer", "piece"):
        groups = [getattr(r, key) for r in rows]
        folds = grouped_folds(groups, 5, seed=0)
        assert sum(len(te) for _, te in folds) == len(rows)
        for tr, te in folds:
            assert not ({groups[i] for i in tr} & {groups[i] for i in te})
            assert not ({rows[i].segment_id for i in tr} & {rows[i].segment_id for i in te})
    og = ordered_group_batches(["a", "a", "b", "b", "c"], 2, seed=0)
    assert sorted(i for b in og for i in b) == [0, 1, 2, 3, 4]
