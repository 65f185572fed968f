"""Manifest schema (pydantic) and its atomic writes; workspace layout."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from eno_hf.workspace.layout import SUBDIRS, Workspace, WorkspaceError
from eno_hf.workspace.schema import Annotations, Manifest, ManifestEntry


def _entry(sid="a" * 16, **kw):
    return ManifestEntry(sample_id=sid, file_path=f"raw/midi/{sid}.mid", kind="midi", group="g", **kw)


def test_create_makes_the_layout_and_config(make_settings):
    s = make_settings()
    ws = Workspace.create(s.workspace, s.paths.data_root)
    for sub in SUBDIRS:
        assert (ws.path / sub).is_dir()
    info = json.loads((ws.path / "config.json").read_text())
    assert info["dataset_id"] == "t" and info["categories"] == ["happy", "angry", "sad", "calm"]
    assert info["target_per_category"] == s.workspace.target_per_category
    assert ws.load().samples == []
    # idempotent: a second create keeps the manifest
    m = ws.load()
    m.samples.append(_entry())
    ws.save(m)
    Workspace.create(s.workspace, s.paths.data_root)
    assert len(ws.load().samples) == 1


def test_open_without_create_names_the_folder(make_settings):
    s = make_settings()
    with pytest.raises(WorkspaceError, match="eno dataset create"):
        Workspace.open(s.workspace, s.paths.data_root)


@pytest.mark.parametrize("field,value", [("valence", 1.5), ("arousal", -2.0), ("mode", "dorian"),
                                         ("groove_type", "polka"), ("swing_ratio", 1.2), ("quality_score", -0.1),
                                         ("tempo_bpm", 0.0)])
def test_annotations_reject_out_of_range_values(field, value):
    with pytest.raises(ValidationError):
        Annotations(**{field: value})


def test_annotations_accept_the_issue_fields():
    a = Annotations(emotion="happy", valence=0.8, arousal=0.6, key="C major", mode="major", tempo_bpm=120,
                    groove_type="swing", swing_ratio=0.667, articulation="legato", chord_progression="I-V-vi-IV",
                    quality_score=0.9, is_verified=True, notes="x")
    assert set(a.model_dump()) == {"emotion", "valence", "arousal", "key", "mode", "tempo_bpm", "groove_type",
                                   "swing_ratio", "articulation", "chord_progression", "quality_score",
                                   "is_verified", "notes"}


def test_manifest_rejects_duplicate_ids_and_paths_outside_the_workspace():
    with pytest.raises(ValidationError, match="duplicate"):
        Manifest(dataset_id="t", samples=[_entry(), _entry()])
    with pytest.raises(ValidationError, match="inside the workspace"):
        ManifestEntry(sample_id="b", file_path="/etc/passwd", kind="midi", group="g")
    with pytest.raises(ValidationError, match="inside the workspace"):
        ManifestEntry(sample_id="b", file_path="../../x.mid", kind="midi", group="g")
    with pytest.raises(ValidationError):
        ManifestEntry(sample_id="b", file_path="raw/x.mid", kind="video", group="g")


def test_invalid_manifest_on_disk_is_reported_with_the_field(make_settings):
    s = make_settings()
    ws = Workspace.create(s.workspace, s.paths.data_root)
    data = json.loads(ws.manifest_path.read_text())
    data["samples"] = [{"sample_id": "x", "file_path": "raw/x.mid", "kind": "midi", "group": "g",
                        "annotations": {"valence": 3}}]
    ws.manifest_path.write_text(json.dumps(data))
    with pytest.raises(WorkspaceError, match="valence"):
        ws.load()


def test_save_writes_per_sample_annotation_files(make_settings):
    s = make_settings()
    ws = Workspace.create(s.workspace, s.paths.data_root)
    m = ws.load()
    m.samples.append(_entry(annotations=Annotations(emotion="sad")))
    ws.save(m)
    assert json.loads((ws.path / "annotations" / f"{'a' * 16}.json").read_text())["emotion"] == "sad"
    assert Manifest.model_validate_json(ws.manifest_path.read_text()).samples[0].annotations.emotion == "sad"
