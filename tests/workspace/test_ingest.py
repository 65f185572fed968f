"""Import (content-hash ids, duplicates, bad files) and annotation (folders, table, interactive)."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from eno_hf.audio.io import content_hash
from eno_hf.workspace.config import CsvAnnotations, ImportSource
from eno_hf.workspace.ingest import annotate_from_sources, import_folder, quadrant_emotion
from eno_hf.workspace.layout import Workspace

from ws_helpers import PERCEPIANO, c_major_piece, sine_wav


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "music"
    c_major_piece(root / "Q1" / "a.mid")
    c_major_piece(root / "sad" / "b.mid", offset=2)
    sine_wav(root / "Q4" / "c.wav")
    (root / "Q3").mkdir()
    shutil.copy(root / "Q1" / "a.mid", root / "Q3" / "a_copy.mid")  # same bytes under another name
    (root / "Q2").mkdir()
    (root / "Q2" / "empty.wav").write_bytes(b"")
    (root / "Q2" / "readme.txt").write_text("not music")
    return root


def test_import_ids_are_content_hashes_and_duplicates_are_reported(make_settings, folder):
    s = make_settings()
    ws = Workspace.create(s.workspace, s.paths.data_root)
    m = ws.load()
    rep = import_folder(ws, m, ImportSource(path=folder, name="mine"), s.workspace)
    by_name = {e.original_path.split("/")[-1]: e for e in m.samples}
    assert set(by_name) == {"a.mid", "b.mid", "c.wav"}
    assert by_name["a.mid"].sample_id == content_hash(folder / "Q1" / "a.mid")[:16]
    assert by_name["c.wav"].kind == "audio" and by_name["a.mid"].kind == "midi"
    assert ws.abs(by_name["a.mid"].file_path).resolve() == (folder / "Q1" / "a.mid").resolve()
    assert [d["path"] for d in rep.duplicates] == [str(folder / "Q3" / "a_copy.mid")]
    assert rep.duplicates[0]["duplicate_of"].endswith("Q1/a.mid")
    assert [(r["path"].split("/")[-1], r["reason"]) for r in rep.rejected] == [("empty.wav", "empty")]
    reasons = {(r.path.split("/")[-1], r.reason) for r in m.rejected}
    assert reasons == {("a_copy.mid", "duplicate_content"), ("empty.wav", "empty")}
    # re-import is idempotent
    rep2 = import_folder(ws, m, ImportSource(path=folder, name="mine"), s.workspace)
    assert rep2.imported == [] and len(rep2.already_present) == 3 and len(m.samples) == 3


def test_copy_mode_copies_bytes(make_settings, folder):
    s = make_settings()
    ws = Workspace.create(s.workspace, s.paths.data_root)
    m = ws.load()
    import_folder(ws, m, ImportSource(path=folder, copy_files=True), s.workspace)
    p = ws.abs(m.samples[0].file_path)
    assert p.is_file() and not p.is_symlink()


def test_annotate_from_folder_names_uses_the_emotion_map(make_settings, folder):
    s = make_settings()
    s.workspace.sources = {"mine": ImportSource(path=folder)}
    ws = Workspace.create(s.workspace, s.paths.data_root)
    m = ws.load()
    import_folder(ws, m, s.workspace.sources["mine"], s.workspace)
    counts = annotate_from_sources(m, s.workspace)
    by_name = {e.original_path.split("/")[-1]: e.annotations for e in m.samples}
    assert by_name["a.mid"].emotion == "happy"        # Q1
    assert by_name["b.mid"].emotion == "sad"          # sad/
    assert by_name["c.wav"].emotion == "calm"         # Q4
    assert (by_name["a.mid"].valence, by_name["a.mid"].arousal) == s.workspace.emotion_valence_arousal["happy"]
    assert by_name["b.mid"].valence < 0 and by_name["b.mid"].arousal < 0
    assert counts == {"folders": 3, "table": 0, "unlabelled": 0}


def test_quadrants_of_the_circumplex():
    assert [quadrant_emotion(v, a) for v, a in ((0.5, 0.5), (-0.5, 0.5), (-0.5, -0.5), (0.5, -0.5))] == \
        ["happy", "angry", "sad", "calm"]


def test_annotate_from_a_table(make_settings, tmp_path):
    root = tmp_path / "perf"
    c_major_piece(root / "p1.mid")
    c_major_piece(root / "p2.mid", offset=1)
    (tmp_path / "labels.csv").write_text("id,dark,energy,who\np1,0.2,0.9,alice\np2,0.9,0.2,bob\n")
    s = make_settings()
    s.workspace.sources = {"perf": ImportSource(path=root, folder_labels=False, csv=CsvAnnotations(
        path=tmp_path / "labels.csv", id_column="id", valence_column="dark", valence_invert=True,
        arousal_column="energy", performer_column="who"))}
    ws = Workspace.create(s.workspace, s.paths.data_root)
    m = ws.load()
    import_folder(ws, m, s.workspace.sources["perf"], s.workspace)
    annotate_from_sources(m, s.workspace)
    got = {e.original_path.split("/")[-1]: e for e in m.samples}
    assert got["p1.mid"].annotations.emotion == "happy" and got["p1.mid"].performer == "alice"
    assert got["p1.mid"].annotations.valence == pytest.approx(0.6) and got["p1.mid"].annotations.arousal == pytest.approx(0.8)
    assert got["p2.mid"].annotations.emotion == "sad"


@pytest.mark.skipif(not (PERCEPIANO / "labels.csv").is_file(), reason="../shared/data/percepiano absent")
def test_percepiano_subset_groups_passages_and_reads_ratings(make_settings):
    s = make_settings(sources=True)
    s.workspace.sources = {"percepiano": s.workspace.sources["percepiano"].model_copy(update={"limit": 6})}
    ws = Workspace.create(s.workspace, s.paths.data_root)
    m = ws.load()
    import_folder(ws, m, s.workspace.sources["percepiano"].model_copy(update={"name": "percepiano"}), s.workspace)
    annotate_from_sources(m, s.workspace)
    assert len(m.samples) == 6
    for e in m.samples:
        stem = e.original_path.split("/")[-1][:-4]            # e.g. Beethoven_WoO80_thema_8bars_11_1
        piece_bars, performer, segment = stem.rsplit("_", 2)
        assert e.group == f"percepiano:{piece_bars}_{segment}" and e.performer == performer
        assert e.annotations.emotion in {"happy", "angry", "sad", "calm"}
        assert -1 <= e.annotations.valence <= 1


def test_interactive_annotation_reads_answers_from_stdin(make_settings, folder, tmp_path):
    from eno_hf.workspace.cli import app

    cfg = tmp_path / "ws.yaml"
    cfg.write_text(f"defaults: [{(__import__('pathlib').Path('configs/workspace.yaml').resolve())}]\n"
                   f"paths: {{data_root: {tmp_path / 'data'}}}\n"
                   f"workspace: {{dataset_id: t, num_workers: 1, sources: {{}}}}\n")
    r = CliRunner()
    assert r.invoke(app, ["create", "--config", str(cfg)]).exit_code == 0
    res = r.invoke(app, ["import", str(folder / "Q1"), "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    # emotion, valence, arousal, notes
    res = r.invoke(app, ["annotate", "--interactive", "--config", str(cfg)], input="angry\n-0.5\n0.9\nloud\n")
    assert res.exit_code == 0, res.output
    assert "emotion" in res.output
    ws_dir = tmp_path / "data" / "workspaces" / "t"
    m = json.loads((ws_dir / "manifest.json").read_text())
    a = m["samples"][0]["annotations"]
    assert (a["emotion"], a["valence"], a["arousal"], a["notes"], a["is_verified"]) == ("angry", -0.5, 0.9, "loud", True)
    # a verified label survives a later folder annotation
    res = r.invoke(app, ["annotate", "--config", str(cfg)])
    assert res.exit_code == 0
