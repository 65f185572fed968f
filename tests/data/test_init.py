"""``eno init``: detection of the four source kinds on real clips, the written eno.yaml, bad input.

Real data: clips of ``$ENO_SHARED_DIR/data/4q-dev`` (default ``../shared``) (skipped with a reason when absent). The command is
driven through typer's CliRunner on ``eno_hf.init_cli.init_command``.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from eno_hf.config import load_config
from eno_hf.data.sources import load_recordings
from eno_hf.init_cli import init_command
from eno_hf.locations import shared_path

REPO = Path(__file__).resolve().parents[2]
FOURQ = shared_path("data/4q-dev")
FOURQ_CSV = FOURQ / "panda_dataset_taffc_metadata.csv"
needs_4q = pytest.mark.skipif(not FOURQ_CSV.is_file(), reason=f"real 4Q clips not found at {FOURQ}")

app = typer.Typer()
app.command()(init_command)
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def last_json(result) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, list[Path]]:
    """3 real 4Q clips per quadrant (12), copied once: quadrant -> files."""
    if not FOURQ_CSV.is_file():
        pytest.skip(f"real 4Q clips not found at {FOURQ}")
    src = tmp_path_factory.mktemp("clips")
    out: dict[str, list[Path]] = {}
    for q in ("Q1", "Q2", "Q3", "Q4"):
        (src / q).mkdir()
        out[q] = [Path(shutil.copy(p, src / q)) for p in sorted((FOURQ / q).glob("*.mp3"))[:3]]
    return out


def copy_tree(clips: dict[str, list[Path]], dest: Path) -> Path:
    for q, files in clips.items():
        (dest / q).mkdir(parents=True)
        for f in files:
            (dest / q / f.name).symlink_to(f)
    return dest


# ----------------------------------------------------------------------------- folders
def test_folders_by_quadrant(tmp_path: Path, clips) -> None:
    col = copy_tree(clips, tmp_path / "my music")
    (col / "notes.txt").write_text("not audio\n")
    res = invoke(col, "--json")
    assert res.exit_code == 0, res.output
    out = last_json(res)
    assert out["kind"] == "folders" and out["recordings"] == 12
    assert out["files"] == {".mp3": 12, ".txt": 1}
    assert out["tasks"]["label"]["labels"] == 4
    assert dict(out["tasks"]["label"]["top"]) == {"q1": 3, "q2": 3, "q3": 3, "q4": 3}
    assert out["rejected"]["by_reason"] == {"unsupported": 1}  # notes.txt
    assert any("no artist/album" in q for q in out["questions"])
    assert any(c.startswith("eno run --config") for c in out["next"])
    assert "wrote" in res.stdout and "task label" in res.stdout

    text = (col / "eno.yaml").read_text()
    assert "defaults: [tagger]" in text and "audio_root: ." in text
    assert "# QUESTION:" in text
    s = load_config(col / "eno.yaml")
    assert s.dataset.source.kind == "folders" and s.dataset.source.folder_mode == "singlelabel"
    assert Path(s.paths.data_root) == (col / ".eno").resolve()
    assert [(h.name, h.kind) for h in s.model.heads] == [("label", "singlelabel")]
    assert s.run.tag_files == []
    found = load_recordings(s.dataset.source)
    assert len(found.recordings) == 12
    assert {r.singlelabel["label"] for r in found.recordings} == {"Q1", "Q2", "Q3", "Q4"}
    # the written eno.yaml is no input: only notes.txt is reported
    assert [Path(r["path"]).name for r in found.rejected] == ["notes.txt"]
    assert not [p for p in col.iterdir() if p.name.startswith(".eno-init")]  # no temporaries


def test_folders_nested_albums_and_tags(tmp_path: Path, clips) -> None:
    """Two levels: album folders of their own -> label + group by parent; repeated inner names
    (rock/live, jazz/live) -> every level a tag. Both are asked in the file."""
    albums = tmp_path / "albums"
    for i, (q, files) in enumerate(clips.items()):
        for j, f in enumerate(files):
            d = albums / q / f"album-{i}-{j % 2}"
            d.mkdir(parents=True, exist_ok=True)
            (d / f.name).symlink_to(f)
    (albums / "Q1" / "album-0-0" / "empty.mp3").write_bytes(b"")  # the build will reject it
    res = invoke(albums, "--json")
    assert res.exit_code == 0, res.output
    s = load_config(albums / "eno.yaml")
    assert (s.dataset.source.folder_mode, s.dataset.source.folder_group) == ("singlelabel", "parent")
    out = last_json(res)
    assert out["groups"]["count"] == 8 and out["recordings"] == 13
    assert out["rejected"]["by_reason"] == {"empty": 1}

    tags = tmp_path / "tags"
    for q, files in clips.items():
        for j, f in enumerate(files):
            d = tags / q / ("live" if j % 2 else "studio")
            d.mkdir(parents=True, exist_ok=True)
            (d / f.name).symlink_to(f)
    res = invoke(tags, "--json")
    assert res.exit_code == 0, res.output
    s = load_config(tags / "eno.yaml")
    assert s.dataset.source.folder_mode == "multilabel"
    assert s.model.heads[0].kind == "multilabel"
    assert last_json(res)["tasks"]["label"]["labels"] == 6  # 4 quadrants + live + studio
    assert "QUESTION" in (tags / "eno.yaml").read_text()


# ----------------------------------------------------------------------------- csv
@needs_4q
def test_real_4q_csv(tmp_path: Path) -> None:
    """The 4Q metadata as it ships: Song id, Quadrant single-label, MoodsStrSplit/GenresStr
    multi-label on ';', Artist as group, the path template from the folders."""
    res = invoke(FOURQ, "--out", tmp_path / "eno.yaml", "--json")
    assert res.exit_code == 0, res.output
    out = last_json(res)
    assert out["kind"] == "csv" and out["recordings"] == 360 and out["rejected"]["count"] == 0
    s = load_config(tmp_path / "eno.yaml")
    src = s.dataset.source
    assert src.kind == "csv" and src.metadata == FOURQ_CSV
    assert src.id_column == "Song" and src.group_column == "Artist"
    assert src.path_template == "{Quadrant}/{Song}.mp3"
    assert src.singlelabel == {"quadrant": "Quadrant"}
    assert {t: (m.column, m.separator) for t, m in src.multilabel.items()} == \
        {"moods": ("MoodsStrSplit", ";"), "genres": ("GenresStr", ";")}
    assert src.numeric == {}  # PQuad, MoodsTotal...: asked, left commented
    assert {(h.name, h.kind) for h in s.model.heads} == \
        {("quadrant", "singlelabel"), ("moods", "multilabel"), ("genres", "multilabel")}
    text = (tmp_path / "eno.yaml").read_text()
    assert "# moods_2: {column: MoodsStr" in text  # the near-duplicate column is a question
    assert "QUESTION: numeric columns" in text
    assert out["tasks"]["quadrant"]["labels"] == 4 and out["groups"]["column"] == "Artist"


@needs_4q
def test_csv_beside_some_clips_reports_missing(tmp_path: Path, clips) -> None:
    """A copy of the full CSV next to 12 of its clips: 12 recordings, 348 rows rejected as
    missing_file; a TSV with a path column and '|' tags is read the same way."""
    col = copy_tree(clips, tmp_path / "col")
    shutil.copy(FOURQ_CSV, col / "meta.csv")
    res = invoke(col, "--json")
    assert res.exit_code == 0, res.output
    out = last_json(res)
    assert out["kind"] == "csv" and out["recordings"] == 12
    assert out["rejected"]["by_reason"] == {"missing_file": 348}
    assert "rejects: 348 (missing_file 348)" in res.stdout

    rows = list(csv.DictReader(FOURQ_CSV.open(encoding="utf-8")))
    by_song = {r["Song"]: r for r in rows}
    tsv = tmp_path / "tsv"
    tsv.mkdir()
    with (tsv / "tracks.tsv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter="\t")
        w.writerow(["file", "performer", "mood", "tags", "rating"])
        for q, files in clips.items():
            for f in files:
                r = by_song[f.stem]
                w.writerow([f"{q}/{f.name}", r["Artist"], q.lower(), r["GenresStr"].replace("; ", "|"),
                            r["PQuad"]])
    copy_tree(clips, tsv)
    res = invoke(tsv / "tracks.tsv", "--json")
    assert res.exit_code == 0, res.output
    s = load_config(tsv / "eno.yaml")
    src = s.dataset.source
    assert (src.delimiter, src.path_column, src.id_column, src.group_column) == ("\t", "file", None, "performer")
    assert src.singlelabel == {"mood": "mood"} and src.multilabel["tags"].separator == "|"
    assert src.numeric == {"rating": "rating"}  # named like a target
    assert last_json(res)["recordings"] == 12


# ----------------------------------------------------------------------------- json / jsonl
def test_json_dump_and_jsonl(tmp_path: Path, clips) -> None:
    files = [f for fs in clips.values() for f in fs][:6]
    col = tmp_path / "rym"
    col.mkdir()
    albums = []
    for a in range(3):
        tracks = []
        for t in range(2):
            f = files[2 * a + t]
            (col / f.name).symlink_to(f)
            tracks.append({"track_id": f"a{a}-{t}", "path": f.name, "title": f"song {a}{t}",
                           "descriptors": ["calm", "dark"][t:] + ["warm"], "rating": 3.0 + t / 2})
        albums.append({"album_id": f"a{a}", "artist": ["X", "Y", "X"][a], "title": f"album {a}",
                       "genres": ["rock; jazz", "rock", "jazz; rock"][a], "tracks": tracks})
    (col / "dump.json").write_text(json.dumps({"albums": albums}))
    res = invoke(col / "dump.json", "--json")
    assert res.exit_code == 0, res.output
    out = last_json(res)
    assert out["kind"] == "json_dump" and out["recordings"] == 6
    src = load_config(col / "eno.yaml").dataset.source
    assert (src.id_column, src.path_column, src.group_column) == ("track_id", "path", "artist")
    assert src.multilabel["genres"].separator == ";" and src.multilabel["descriptors"].column == "descriptors"
    assert src.numeric == {"rating": "rating"}
    assert out["tasks"]["genres"]["labels"] == 2

    seg = tmp_path / "seg"
    seg.mkdir()
    lines = []
    for i, f in enumerate(files[:2]):
        (seg / f.name).symlink_to(f)
        for k in range(3):
            lines.append({"segment_id": f"{f.stem}_{k}", "recording_id": f.stem, "segment_start": 5.0 * k,
                          "segment_end": 5.0 * k + 5, "mood": ["calm", "tense"][(i + k) % 2],
                          "tags": ["a", "b"][: 1 + k % 2]})
    (seg / "segments.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    res = invoke(seg, "--json")
    assert res.exit_code == 0, res.output
    out = last_json(res)
    assert out["kind"] == "jsonl_segments" and out["recordings"] == 6
    src = load_config(seg / "eno.yaml").dataset.source
    assert src.singlelabel == {"mood": "mood"} and src.multilabel["tags"].column == "tags"
    assert src.id_column is None and src.group_column is None  # segments grouped by recording


# ----------------------------------------------------------------------------- bad input
def _bad(path: Path, *args: str, expect: str, where: Path | None = None) -> None:
    folder = where or (path if path.is_dir() else path.parent)
    before = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else None
    res = invoke(path, *args)
    assert res.exit_code == 2, res.output
    err = res.stderr.strip()
    assert err.count("\n") == 0, err  # one line
    assert expect in err, err
    if before is not None:
        assert sorted(p.name for p in folder.iterdir()) == before  # nothing written
    assert res.stdout == ""


def test_bad_input(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    _bad(empty, expect=f"{empty}: empty folder")

    noaudio = tmp_path / "noaudio"
    (noaudio / "docs").mkdir(parents=True)
    (noaudio / "docs" / "a.txt").write_text("x")
    (noaudio / "cover.jpg").write_bytes(b"\xff\xd8")
    _bad(noaudio, expect=f"{noaudio}: no audio/MIDI files")

    loose = tmp_path / "loose"
    loose.mkdir()
    (loose / "a.mp3").write_bytes(b"ID3")
    _bad(loose, expect="no label folders and no metadata")

    noid = tmp_path / "noid"
    noid.mkdir()
    (noid / "meta.csv").write_text("genre,mood\nrock,happy\nrock,sad\njazz,happy\n")
    _bad(noid / "meta.csv", expect=f"{noid / 'meta.csv'}:1: no id column")

    notalbums = tmp_path / "notalbums"
    notalbums.mkdir()
    (notalbums / "dump.json").write_text('{"tracks": [1, 2]}')
    _bad(notalbums / "dump.json", expect=f"{notalbums / 'dump.json'}:1: column 1: not an album list")
    (notalbums / "list.json").write_text('[{"album_id": "a"}]')
    _bad(notalbums / "list.json", expect="albums[0] is not an object with a 'tracks' list")
    (notalbums / "broken.json").write_text('[\n  {"album_id": "a",\n   "tracks": [}\n]')
    _bad(notalbums / "broken.json", expect=f"{notalbums / 'broken.json'}:3: column 15: not a JSON document")

    (tmp_path / "seg.jsonl").write_text('{"segment_id": "s", "recording_id": "r", "segment_start": 0, '
                                        '"segment_end": 1}\n{"segment_id": "t"}\n')
    _bad(tmp_path / "seg.jsonl", expect="seg.jsonl:2: column 1: not a segment: missing")

    _bad(tmp_path / "nowhere", expect=f"{tmp_path / 'nowhere'}: no such file or folder",
         where=tmp_path)


def test_existing_file_needs_force(tmp_path: Path, clips) -> None:
    col = copy_tree(clips, tmp_path / "col")
    (col / "eno.yaml").write_text("# mine\n")
    _bad(col, expect=f"{col / 'eno.yaml'}: already exists; pass --force")
    assert (col / "eno.yaml").read_text() == "# mine\n"
    _bad(col, "--force", "--base", "small", expect="--base small brings its own dataset ('4q')")
    _bad(col, "--force", "--base", "nosuchrecipe", expect="nosuchrecipe: config file not found")
    res = invoke(col, "--force")
    assert res.exit_code == 0, res.output
    assert "defaults: [tagger]" in (col / "eno.yaml").read_text()


def test_registered_in_eno_cli(tmp_path: Path) -> None:
    """`eno init` is a command of the main app."""
    from eno_hf.cli import app as eno_app

    res = runner.invoke(eno_app, ["init", str(tmp_path / "nowhere")])
    assert res.exit_code == 2 and "nowhere: no such file or folder" in res.stderr, res.output
    assert "--force" in runner.invoke(eno_app, ["init", "--help"]).stdout


def test_guide_examples_load(tmp_path: Path) -> None:
    """Every YAML example of docs/own-collection.md is a valid config (five lines each)."""
    import re

    text = (REPO / "docs" / "own-collection.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 4
    kinds = set()
    for i, block in enumerate(blocks):
        assert len(block.strip().splitlines()) == 5, block
        (tmp_path / f"{i}.yaml").write_text(block)
        s = load_config(tmp_path / f"{i}.yaml")
        kinds.add(s.dataset.source.kind)
    assert kinds == {"folders", "csv", "json_dump", "jsonl_segments"}


def test_unrelated_csv_falls_back_to_folders(tmp_path: Path, clips) -> None:
    """A CSV beside label folders that names none of their files: the folders are the labels,
    and the file says why (a question)."""
    col = copy_tree(clips, tmp_path / "col")
    (col / "stats.csv").write_text("track_id,plays,mood\nt1,3,a\nt2,5,b\nt3,1,a\nt4,2,b\nt5,2,a\nt6,9,b\n")
    res = invoke(col, "--json")
    assert res.exit_code == 0, res.output
    out = last_json(res)
    assert out["kind"] == "folders" and out["recordings"] == 12
    assert any("no usable recording" in q for q in out["questions"])


def test_ambiguity_is_a_question(tmp_path: Path, clips) -> None:
    """Two id-like unique columns and no grouping column: choices made, both asked in the file."""
    col = copy_tree(clips, tmp_path / "col")
    lines = ["track_id,isrc_id,file,genre"]
    for i, (q, files) in enumerate(clips.items()):
        for j, f in enumerate(files):
            lines.append(f"t{i}{j},X{i}{j},{q}/{f.name},{['rock', 'jazz'][j % 2]}")
    (col / "tracks.csv").write_text("\n".join(lines) + "\n")
    res = invoke(col, "--json")
    assert res.exit_code == 0, res.output
    text = (col / "eno.yaml").read_text()
    src = load_config(col / "eno.yaml").dataset.source
    assert src.path_column == "file" and src.id_column in ("track_id", "isrc_id")
    assert src.group_column is None and src.singlelabel == {"genre": "genre"}
    qs = last_json(res)["questions"]
    assert any("are all unique per row" in q for q in qs) and any("no grouping column" in q for q in qs)
    assert text.count("# QUESTION:") == len(qs) == 3  # id, group, symlinks (allowed_roots)
    assert "group_column: null" in text
