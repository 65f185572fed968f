"""Validation scores on hand-built manifests (known answers)."""

from __future__ import annotations

import json

import pytest

from eno_hf.workspace.layout import Workspace
from eno_hf.workspace.schema import Annotations, ManifestEntry, Provenance, Rejection
from eno_hf.workspace.validate import gini_simpson, sample_quality, validate_workspace


def _ws(make_settings, *overrides):
    s = make_settings("workspace.target_per_category=2", *overrides)
    ws = Workspace.create(s.workspace, s.paths.data_root)
    return s, ws, ws.load()


def _add(ws, m, sid, emotion, key="C major", mode="major", tempo=120.0, source="a", feats=True, **kw):
    (ws.abs(f"raw/audio/{sid}.wav")).write_bytes(b"x")
    e = ManifestEntry(sample_id=sid, file_path=f"raw/audio/{sid}.wav", kind="audio", group=sid, source=source,
                      annotations=Annotations(emotion=emotion, valence=0.1, arousal=0.1, key=key, mode=mode,
                                              tempo_bpm=tempo), **kw)
    if feats:
        (ws.abs(f"processed/features/{sid}.json")).write_text(json.dumps({"n_numeric": 10, "n_nonfinite": 0}))
        e.features_path = f"processed/features/{sid}.json"
    m.samples.append(e)
    return e


def test_gini_simpson_known_values():
    assert gini_simpson(["a", "b"], 2) == pytest.approx(1.0)
    assert gini_simpson(["a", "a"], 2) == 0.0
    assert gini_simpson(["a", "b", "c", "d"], 24) == pytest.approx((1 - 4 / 16) / (1 - 1 / 24))
    assert gini_simpson([]) == 0.0


def test_balance_counts_against_target(make_settings):
    s, ws, m = _ws(make_settings)
    for i, emo in enumerate(["happy", "happy", "happy", "sad"]):
        _add(ws, m, f"s{i}", emo)
    ws.save(m)
    rep = validate_workspace(ws, m, s)
    # happy 3/2 -> 1, sad 1/2, angry 0, calm 0 → (1 + 0.5 + 0 + 0) / 4
    assert rep.scores["balance"] == pytest.approx(0.375)
    assert rep.counts["by_emotion"] == {"happy": 3, "angry": 0, "sad": 1, "calm": 0}
    assert "balance" in rep.failing and not rep.passed


def test_diversity_parts(make_settings):
    s, ws, m = _ws(make_settings)
    _add(ws, m, "a", "happy", key="C major", mode="major", tempo=50.0, source="x")
    _add(ws, m, "b", "sad", key="A minor", mode="minor", tempo=190.0, source="y")
    ws.save(m)
    rep = validate_workspace(ws, m, s)
    parts = rep.counts["diversity_parts"]
    assert parts["modes"] == pytest.approx(1.0) and parts["sources"] == pytest.approx(1.0)
    assert parts["keys"] == pytest.approx(0.5 / (1 - 1 / 24))
    assert parts["tempi"] == pytest.approx(0.5 / (1 - 1 / 8))
    assert rep.scores["diversity"] == pytest.approx(sum(parts.values()) / 4)


def test_quality_penalizes_missing_labels_nan_features_and_bad_files(make_settings):
    s, ws, m = _ws(make_settings)
    good = _add(ws, m, "g", "happy")
    nolab = _add(ws, m, "n", None)
    nolab.annotations = Annotations()          # nothing annotated
    nan = _add(ws, m, "f", "calm")
    (ws.abs("processed/features/f.json")).write_text(json.dumps({"n_numeric": 10, "n_nonfinite": 5}))
    m.rejected.append(Rejection(path="/x/broken.mid", reason="undecodable", stage="extract"))
    m.rejected.append(Rejection(path="/x/dup.mid", reason="duplicate_content", stage="import"))
    ws.save(m)
    assert sample_quality(good, {"n_numeric": 10, "n_nonfinite": 0}) == pytest.approx(1.0)
    rep = validate_workspace(ws, m, s)
    # g: 1; n: (1 + 0 + 1)/3; f: (1 + 1 + 0.5)/3; broken: 0; duplicate: not counted
    assert rep.scores["quality"] == pytest.approx((1 + 2 / 3 + 2.5 / 3 + 0) / 4)
    assert ws.load().by_id()["f"].annotations.quality_score == pytest.approx(2.5 / 3, abs=1e-4)


def test_structure_checks_catch_missing_files_orphans_and_split_leaks(make_settings):
    s, ws, m = _ws(make_settings)
    _add(ws, m, "a", "happy")
    _add(ws, m, "b", "happy", feats=False)
    _add(ws, m, "c", "happy", origin="augmented",
         provenance=Provenance(source_sample_id="a", operations=[{"op": "gain", "factor": 1.1}], seed=1))
    _add(ws, m, "d", "happy", origin="augmented",
         provenance=Provenance(source_sample_id="zzz", operations=[], seed=1))
    ws.save(m)
    (ws.abs("splits/train.txt")).write_text("a\nb\n")
    (ws.abs("splits/test.txt")).write_text("c\nb\n")
    ws.abs("raw/audio/a.wav").unlink()
    rep = validate_workspace(ws, m, s)
    failed = {c["check"] for c in rep.checks if not c["passed"]}
    assert failed == {"sample files present", "features extracted", "augmented sources present",
                      "splits disjoint", "augmented copies follow their source"}
    assert rep.scores["structure"] == pytest.approx(1 - 5 / len(rep.checks))
    saved = json.loads(ws.abs("reports/validation.json").read_text())
    assert saved["scores"]["structure"] == pytest.approx(rep.scores["structure"])
