"""Metadata adapters: the real 4Q CSV, and generated CSV/TSV, JSON dump, JSONL segments, folders."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from eno_hf.config import MultiLabelColumn, SourceConfig, load_config
from eno_hf.data.recording import Recording
from eno_hf.data.sources import load_recordings
from eno_hf.errors import MetadataError, RejectedInput

FOURQ_YAML = Path(__file__).resolve().parents[2] / "configs" / "datasets" / "4q.yaml"


def touch(path: Path, data: bytes = b"RIFF0000") -> Path:
    """A tiny fake audio file (adapters never decode audio)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def reasons(result) -> Counter:
    return Counter(r["reason"] for r in result.rejected)


# ----------------------------------------------------------------------------- real 4Q CSV
@pytest.fixture(scope="module")
def fourq(fourq_dir: Path):
    cfg = load_config(FOURQ_YAML).dataset.source
    assert Path(cfg.metadata).parent == fourq_dir.resolve()
    return load_recordings(cfg)


def test_fourq_all_rows_ingested(fourq) -> None:
    assert len(fourq.recordings) == 360
    assert fourq.rejected == []
    ids = [r.recording_id for r in fourq.recordings]
    assert len(set(ids)) == 360
    for r in fourq.recordings:
        assert r.path is not None and r.path.is_file()
        assert r.path.stem == r.recording_id
        assert r.path.parent.name == r.singlelabel["quadrant"]
        assert r.group is None or (r.group and r.group == r.group.strip())
        assert r.start_s is None and r.end_s is None
    # three rows ship with an empty Artist: they become their own groups (None), not ""
    assert sum(r.group is None for r in fourq.recordings) == 3
    assert len({r.group for r in fourq.recordings if r.group}) == 254


def test_fourq_labels_parsed(fourq) -> None:
    by_id = {r.recording_id: r for r in fourq.recordings}
    first = by_id["MT0000011975"]
    assert first.multilabel["descriptors"] == ["Fierce", "Harsh", "Hostile", "Menacing",
                                               "Outrageous", "Unsettling"]
    assert first.multilabel["genres"] == ["Electronic"]
    assert first.singlelabel == {"quadrant": "Q2"}
    assert first.group == "Curse of the Golden Vampire"
    assert first.extra["Title"] == "Ultrasonic Meltdown"
    assert by_id["MT0000040632"].multilabel["genres"] == ["International", "Jazz"]
    assert Counter(r.singlelabel["quadrant"] for r in fourq.recordings) == \
        {"Q1": 90, "Q2": 90, "Q3": 90, "Q4": 90}
    n_desc = [len(r.multilabel["descriptors"]) for r in fourq.recordings]
    assert min(n_desc) >= 1 and max(n_desc) <= 40
    assert all(t == t.strip() and t for r in fourq.recordings for t in r.multilabel["descriptors"])
    assert len({t for r in fourq.recordings for t in r.multilabel["descriptors"]}) > 100
    json.dumps(first.to_dict())  # serializable
    assert first.to_dict()["path"] == str(first.path)


# ----------------------------------------------------------------------------- generated CSV/TSV
def test_csv_crlf_bom_quoted_sniffed_with_template(tmp_path: Path) -> None:
    touch(tmp_path / "Q1" / "a.mp3")
    touch(tmp_path / "Q2" / "b.mp3")
    text = ('"Song","Artist","Quadrant","Moods","Score"\r\n'
            '"a","Art, One","Q1","Calm; Happy;; ","0.5"\r\n'
            '"b","Two","Q2","Sad","" \r\n')
    meta = tmp_path / "meta.csv"
    meta.write_bytes(b"\xef\xbb\xbf" + text.encode())
    cfg = SourceConfig(metadata=meta, id_column="Song", path_template="{Quadrant}/{Song}.mp3",
                       multilabel={"moods": MultiLabelColumn(column="Moods")},
                       singlelabel={"quadrant": "Quadrant"}, numeric={"score": "Score"},
                       group_column="Artist")
    res = load_recordings(cfg)
    assert res.rejected == []
    a, b = res.recordings
    assert a.recording_id == "a" and a.path == tmp_path / "Q1" / "a.mp3"
    assert a.multilabel == {"moods": ["Calm", "Happy"]}
    assert a.group == "Art, One"
    assert a.numeric == {"score": 0.5} and b.numeric == {"score": None}


def test_tsv_path_column_missing_orphan_duplicate_bad_rows(tmp_path: Path) -> None:
    audio = tmp_path / "audio"
    touch(audio / "x.wav")
    touch(audio / "sub" / "y.flac")
    touch(audio / "orphan.ogg")
    (audio / "notes.txt").write_text("not audio")
    meta = tmp_path / "meta.tsv"
    meta.write_text("id\tfile\tgenre\tbpm\n"
                    "x\tx.wav\trock\t120\n"
                    "y\tsub/y.flac\tjazz\t\n"
                    "gone\tgone.wav\tpop\t99\n"
                    "x\tx.wav\trock\t120\n"
                    "bad\tsub/y.flac\tjazz\tfast\n"
                    "short\tx.wav\n", encoding="utf-8")
    cfg = SourceConfig(metadata=meta, audio_root=audio, id_column="id", path_column="file",
                       singlelabel={"genre": "genre"}, numeric={"bpm": "bpm"})
    res = load_recordings(cfg)
    assert [r.recording_id for r in res.recordings] == ["x", "y"]
    assert res.recordings[1].numeric["bpm"] is None and res.recordings[0].numeric["bpm"] == 120.0
    by_id = {}
    for item in res.rejected:
        assert set(item) == {"path", "recording_id", "reason", "detail"}
        assert item["reason"] in RejectedInput.REASONS
        by_id[item["recording_id"] or Path(item["path"]).name] = item
    assert by_id["gone"]["reason"] == "missing_file"
    assert by_id["gone"]["path"] == str(audio / "gone.wav")
    assert by_id["x"]["reason"] == "bad_metadata" and "duplicate id" in by_id["x"]["detail"]
    assert by_id["bad"]["reason"] == "bad_metadata" and "bpm" in by_id["bad"]["detail"]
    assert by_id["short"]["reason"] == "bad_metadata" and "too few" in by_id["short"]["detail"]
    assert by_id["orphan.ogg"]["reason"] == "no_metadata"
    assert by_id["notes.txt"]["reason"] == "unsupported"
    # every metadata row (6), the orphan audio file and the non-audio notes.txt are accounted for
    assert len(res.recordings) + len(res.rejected) == 6 + 1 + 1
    assert reasons(res) == {"missing_file": 1, "bad_metadata": 3, "no_metadata": 1,
                            "unsupported": 1}


def test_csv_is_read_as_a_stream(tmp_path: Path) -> None:
    """Rows are parsed as they are read: the rows before a broken line are handed out first, then
    one MetadataError names the broken line."""
    from eno_hf.data.sources.csv import iter_rows

    meta = tmp_path / "m.csv"
    meta.write_text("id,genre\n" + "".join(f"r{i},rock\n" for i in range(500))
                    + '"' + "x" * 200_000 + '",rock\n')  # past csv's field size limit
    header, rows = iter_rows(meta)
    assert header == ["id", "genre"]
    got = []
    with pytest.raises(MetadataError) as err:
        for line, row in rows:
            got.append((line, row["id"]))
    assert got[0] == (2, "r0") and got[-1] == (501, "r499") and len(got) == 500
    assert err.value.line in (501, 502) and "CSV parse error" in str(err.value)


def test_csv_stem_lookup_and_configured_delimiter(tmp_path: Path) -> None:
    touch(tmp_path / "deep" / "dir" / "s1.opus")
    touch(tmp_path / "a" / "s2.wav")
    touch(tmp_path / "b" / "s2.mp3")  # ambiguous stem
    meta = tmp_path / "m.txt"
    meta.write_text("id;tags\ns1;a|b\ns2;c\n")
    cfg = SourceConfig(metadata=meta, id_column="id", delimiter=";",
                       multilabel={"tags": MultiLabelColumn(column="tags", separator="|")})
    res = load_recordings(cfg)
    assert [r.recording_id for r in res.recordings] == ["s1"]
    assert res.recordings[0].path == tmp_path / "deep" / "dir" / "s1.opus"
    assert res.recordings[0].multilabel == {"tags": ["a", "b"]}
    assert reasons(res) == {"missing_file": 1, "no_metadata": 2}
    missing = next(r for r in res.rejected if r["reason"] == "missing_file")
    assert missing["recording_id"] == "s2" and "2 files with stem" in missing["detail"]


def test_csv_whole_file_errors(tmp_path: Path) -> None:
    with pytest.raises(RejectedInput) as err:
        load_recordings(SourceConfig(metadata=tmp_path / "nope.csv", id_column="id"))
    assert err.value.reason == "missing_file"
    meta = tmp_path / "m.csv"
    meta.write_text("id,genre\na,rock\n")
    with pytest.raises(MetadataError) as err:
        load_recordings(SourceConfig(metadata=meta, id_column="id", singlelabel={"g": "Genre"}))
    assert err.value.reason == "bad_metadata" and err.value.column == "Genre"
    assert str(err.value).startswith(f"{meta}:1: column 'Genre':")
    # one non-UTF-8 byte costs its row only, named by line and column
    touch(tmp_path / "b.wav")
    meta.write_bytes(b"id,genre\n\xff\xfe,rock\nb,jazz\n")
    res = load_recordings(SourceConfig(metadata=meta, id_column="id", stem_lookup=True))
    assert [r.recording_id for r in res.recordings] == ["b"]
    bad = [r for r in res.rejected if r["reason"] == "bad_metadata"]
    assert len(bad) == 1 and bad[0]["detail"].startswith("line 2: column 'id': not UTF-8")
    for content, line, words in ((b"", 1, "empty"), (b"id,genre\n", 2, "header only"),
                                 (b"\xffid,genre\na,b\n", 1, "not UTF-8")):
        meta.write_bytes(content)
        with pytest.raises(MetadataError) as err:
            load_recordings(SourceConfig(metadata=meta, id_column="id"))
        assert err.value.line == line and words in str(err.value), str(err.value)


# ----------------------------------------------------------------------------- JSON dump
def _dump(tmp_path: Path) -> Path:
    touch(tmp_path / "a1" / "01.flac")
    touch(tmp_path / "a1" / "02.flac")
    touch(tmp_path / "a2" / "01.mp3")
    touch(tmp_path / "stray.wav")
    dump = {"albums": [
        {"album_id": "a1", "artist": "Art", "title": "First", "descriptors": ["dark", "cold"],
         "genres": ["IDM"], "rating": 3.9,
         "tracks": [
             {"track_id": "t1", "path": "a1/01.flac", "title": "One", "descriptors": ["warm"],
              "genres": "IDM; Ambient", "rating": 3.5},
             {"track_id": "t2", "path": "a1/02.flac", "title": "Two"},
             {"track_id": "t3", "path": "a1/03.flac"},
         ]},
        {"album_id": "a2", "artist": "Art", "title": "Second", "genres": ["Rock"],
         "tracks": [{"track_id": "t4", "path": "a2/01.mp3", "rating": "n/a"},
                    {"title": "no id"}, "junk"]},
        {"album_id": "a3", "artist": "Other"},
    ]}
    meta = tmp_path / "dump.json"
    meta.write_text(json.dumps(dump))
    return meta


def test_json_dump_fallback_and_rejects(tmp_path: Path) -> None:
    res = load_recordings(SourceConfig(kind="json_dump", metadata=_dump(tmp_path)))
    recs = {r.recording_id: r for r in res.recordings}
    assert sorted(recs) == ["t1", "t2"]
    t1, t2 = recs["t1"], recs["t2"]
    assert t1.multilabel == {"descriptors": ["warm"], "genres": ["IDM", "Ambient"]}
    assert t1.numeric == {"rating": 3.5} and t2.numeric == {"rating": 3.9}
    assert t2.multilabel == {"descriptors": ["dark", "cold"], "genres": ["IDM"]}
    assert t1.group == t2.group == "a1"
    assert t1.extra["artist"] == "Art" and t1.extra["album_title"] == "First"
    assert t1.extra["title"] == "One"
    details = {(r["recording_id"], r["reason"]) for r in res.rejected}
    assert ("t3", "missing_file") in details
    assert ("t4", "bad_metadata") in details  # rating "n/a"
    assert ("a3", "bad_metadata") in details  # album without tracks
    assert reasons(res) == {"missing_file": 1, "bad_metadata": 4, "no_metadata": 2}
    orphans = {Path(r["path"]).name for r in res.rejected if r["reason"] == "no_metadata"}
    assert orphans == {"stray.wav", "01.mp3"}  # t4's file: its row was unusable


def test_json_dump_group_by_artist_and_custom_tasks(tmp_path: Path) -> None:
    cfg = SourceConfig(kind="json_dump", metadata=_dump(tmp_path), group_column="artist",
                       multilabel={"genres": MultiLabelColumn(column="genres")})
    res = load_recordings(cfg)
    assert {r.group for r in res.recordings} == {"Art"}
    assert all(set(r.multilabel) == {"genres"} and r.numeric == {} for r in res.recordings)
    assert {r.recording_id for r in res.recordings} == {"t1", "t2", "t4"}  # no rating parsed now


def _album_list(n: int) -> list[dict]:
    return [{"album_id": f"al{i}", "artist": f"artist{i % 7}", "genres": ["IDM"],
             "tracks": [{"track_id": f"al{i}-{t}", "path": f"pool/f{(i + t) % 4}.wav"}
                        for t in range(3)]} for i in range(n)]


def test_json_dump_broken_albums_in_the_middle_lose_only_their_rows(tmp_path: Path) -> None:
    for k in range(4):
        touch(tmp_path / "pool" / f"f{k}.wav")
    albums: list = _album_list(40)
    albums[10] = "junk"                                     # not an object
    del albums[20]["tracks"]                                # no track list
    albums[30]["tracks"][1]["rating"] = "n/a"               # a bad number: this track only
    albums[30]["tracks"][2] = 7                             # not an object: this track only
    meta = tmp_path / "dump.json"
    meta.write_text(json.dumps(albums))                     # a top-level list of albums
    res = load_recordings(SourceConfig(kind="json_dump", metadata=meta))
    ids = {r.recording_id for r in res.recordings}
    assert len(ids) == 37 * 3 + 1                           # every other track
    assert "al9-2" in ids and "al11-0" in ids and "al30-0" in ids and "al39-2" in ids
    bad = [(r["recording_id"], r["detail"].split(":")[0]) for r in res.rejected]
    assert bad == [(None, "albums[10]"), ("al20", "albums[20]"),
                   ("al30-1", "albums[30].tracks[1]"), (None, "albums[30].tracks[2]")]
    assert reasons(res) == {"bad_metadata": 4}
    assert all(r.numeric == {"rating": None} and r.multilabel["genres"] == ["IDM"]
               for r in res.recordings)


def test_json_dump_truncated_or_broken_is_one_error_naming_the_position(tmp_path: Path) -> None:
    from eno_hf.data.sources import json_dump

    albums = _album_list(3000)
    albums[2000]["title"] = "Café ☕"                        # characters of 2 and 3 bytes before the error
    text = json.dumps({"albums": albums}, indent=1, ensure_ascii=False)
    data = text.encode()
    assert len(data) > 2 * json_dump.READ_SIZE              # the errors below lie past the first reads
    meta = tmp_path / "dump.json"
    for cut in (len(data) // 2, len(data) - 3):
        meta.write_bytes(data[:cut])                         # a truncated dump
        with pytest.raises(MetadataError) as err:
            load_recordings(SourceConfig(kind="json_dump", metadata=meta, audio_root=tmp_path))
        head = data[:cut].decode("utf-8", "ignore")
        assert (err.value.line, err.value.column) == (head.count("\n") + 1,
                                                      len(head) - head.rfind("\n"))
        assert f"byte offset {cut}" in str(err.value) and "truncated" in str(err.value)
    # a syntax error deep in the file: its byte, line and character column
    key = '"album_id": "al2500"'
    at = text.index(key) + len(key)
    meta.write_bytes((text[:at] + ",," + text[at:]).encode())
    with pytest.raises(MetadataError) as err:
        load_recordings(SourceConfig(kind="json_dump", metadata=meta, audio_root=tmp_path))
    head = text[:at + 1]
    assert (err.value.line, err.value.column) == (head.count("\n") + 1, len(head) - head.rfind("\n"))
    assert f"byte offset {len(head.encode())}" in str(err.value)
    # a bad byte deep in the file; NaN (Python's json.dump writes it; not JSON)
    meta.write_bytes(data[:at] + b"\xff" + data[at:])
    with pytest.raises(MetadataError) as err:
        load_recordings(SourceConfig(kind="json_dump", metadata=meta, audio_root=tmp_path))
    assert "not UTF-8" in str(err.value) and f"byte offset {at}" in str(err.value)
    meta.write_text('[{"album_id": "a", "rating": NaN, "tracks": []}]')
    with pytest.raises(MetadataError, match="NaN is not JSON: write null"):
        load_recordings(SourceConfig(kind="json_dump", metadata=meta, audio_root=tmp_path))


@pytest.mark.parametrize("content, message", [
    (b" \n\t", "empty file"),
    (b'{"albums": {"item": {"tracks": []}}}', "expected {\"albums\": [...]}"),
    (b'{"other": [1, 2]}', "expected {\"albums\": [...]}"),
    (b'"albums"', "expected {\"albums\": [...]}"),
    (b"albums", "not a JSON document"),
    (b"[] []", "trailing garbage"),
])
def test_json_dump_not_an_album_list(tmp_path: Path, content: bytes, message: str) -> None:
    meta = tmp_path / "dump.json"
    meta.write_bytes(content)
    with pytest.raises(MetadataError) as err:
        load_recordings(SourceConfig(kind="json_dump", metadata=meta))
    assert message in str(err.value) and err.value.line == 1


def test_json_dump_bom_and_albums_after_other_keys(tmp_path: Path) -> None:
    for k in range(3):
        touch(tmp_path / "pool" / f"f{k}.wav")
    doc = {"exported": "2026-01-01", "meta": {"albums": 1}, "albums": _album_list(1)[:1]}
    (tmp_path / "dump.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(doc).encode())
    res = load_recordings(SourceConfig(kind="json_dump", metadata=tmp_path / "dump.json"))
    assert [r.recording_id for r in res.recordings] == ["al0-0", "al0-1", "al0-2"]
    assert res.rejected == []


def test_truncated_dump_exits_2_naming_the_position(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from eno_hf.cli import app

    meta = tmp_path / "dump.json"
    meta.write_text(json.dumps({"albums": _album_list(5)})[:-40])
    args = ["build", "--config", "configs/base.yaml"]
    for s in (f"paths.data_root={tmp_path / 'data'}", "dataset.source.kind=json_dump",
              f"dataset.source.metadata={meta}", f"dataset.source.audio_root={tmp_path}"):
        args += ["--set", s]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    text = "".join(result.output.split())
    assert "prematureEOFatbyteoffset" in text and "Traceback" not in result.output


def test_rows_over_a_small_pool_stat_each_path_once(tmp_path: Path, monkeypatch) -> None:
    """3000 tracks naming 4 files: the file system is asked about each path a bounded number
    of times, not once per row."""
    import os

    for k in range(4):
        touch(tmp_path / "pool" / f"f{k}.wav")
    meta = tmp_path / "dump.json"
    meta.write_text(json.dumps({"albums": _album_list(1000)}))
    calls: Counter = Counter()
    real_lstat, real_stat = os.lstat, os.stat

    def lstat(p, *a, **k):
        calls[str(p)] += 1
        return real_lstat(p, *a, **k)

    def stat(p, *a, **k):
        calls[str(p)] += 1
        return real_stat(p, *a, **k)

    monkeypatch.setattr(os, "lstat", lstat)
    monkeypatch.setattr(os, "stat", stat)
    res = load_recordings(SourceConfig(kind="json_dump", metadata=meta))
    assert len(res.recordings) == 3000
    pool_calls = {p: n for p, n in calls.items() if p.startswith(str(tmp_path / "pool"))}
    assert len(pool_calls) >= 4 and max(pool_calls.values()) <= 10, pool_calls  # 750 rows a file


def test_probe_resolves_as_path_resolve(tmp_path: Path) -> None:
    """``AudioIndex.probe``'s fast resolution (cached folder + one lstat) equals ``Path.resolve``."""
    import os

    from eno_hf.data.sources import AudioIndex

    root = tmp_path / "root"
    touch(root / "real" / "a.wav")
    (root / "dirlink").symlink_to(root / "real", target_is_directory=True)
    (root / "filelink.wav").symlink_to(root / "real" / "a.wav")
    (root / "dangling.wav").symlink_to(root / "nowhere.wav")
    os.mkfifo(root / "pipe.wav")
    index = AudioIndex(root, [".wav"])
    cases = {"real/a.wav": "file", "dirlink/a.wav": "file", "filelink.wav": "file",
             "dangling.wav": "missing", "pipe.wav": "other", "real": "dir", "dirlink": "dir",
             "real/../real/a.wav": "file", "no/such/dir/x.wav": "missing",
             "dirlink/missing.wav": "missing"}
    for rel, kind in cases.items():
        p = root / rel
        assert index.probe(p) == (str(p.resolve()), kind), rel
        assert index.probe(p) == (str(p.resolve()), kind), rel  # cached: same answer


# ----------------------------------------------------------------------------- JSONL segments
def test_jsonl_segments(tmp_path: Path) -> None:
    touch(tmp_path / "songs" / "s1.flac")
    touch(tmp_path / "s2.wav")
    touch(tmp_path / "unused.mp3")
    lines = [
        {"segment_id": "s1_a", "recording_id": "s1", "segment_start": 0, "segment_end": 10.5,
         "path": "songs/s1.flac", "moods": ["calm", "dreamy"], "genre": "ambient", "energy": 0.2},
        {"segment_id": "s1_b", "recording_id": "s1", "segment_start": 10.5, "segment_end": 20,
         "path": "songs/s1.flac", "moods": "calm; dark", "genre": "ambient", "energy": None},
        {"segment_id": "s2_a", "recording_id": "s2", "segment_start": 5, "segment_end": 9},
        {"segment_id": "bad", "recording_id": "s2", "segment_start": 9, "segment_end": 3},
        {"segment_id": "nofile", "recording_id": "s9", "segment_start": 0, "segment_end": 1},
        {"recording_id": "s2", "segment_start": 0, "segment_end": 1},
    ]
    meta = tmp_path / "segments.jsonl"
    meta.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n{not json\n")
    cfg = SourceConfig(kind="jsonl_segments", metadata=meta,
                       multilabel={"moods": MultiLabelColumn(column="moods")},
                       singlelabel={"genre": "genre"}, numeric={"energy": "energy"})
    res = load_recordings(cfg)
    recs = {r.recording_id: r for r in res.recordings}
    assert sorted(recs) == ["s1_a", "s1_b", "s2_a"]
    assert recs["s1_a"].start_s == 0.0 and recs["s1_a"].end_s == 10.5
    assert recs["s1_b"].multilabel == {"moods": ["calm", "dark"]}
    assert recs["s1_a"].group == recs["s1_b"].group == "s1"
    assert recs["s1_a"].numeric == {"energy": 0.2} and recs["s1_b"].numeric == {"energy": None}
    assert recs["s2_a"].path == tmp_path / "s2.wav"  # stem lookup by recording_id
    assert recs["s2_a"].singlelabel == {"genre": None} and recs["s2_a"].multilabel == {"moods": []}
    assert recs["s1_a"].extra["source_recording_id"] == "s1"
    rej = {(r["recording_id"], r["reason"]) for r in res.rejected}
    assert ("bad", "bad_metadata") in rej and ("nofile", "missing_file") in rej
    assert reasons(res) == {"bad_metadata": 3, "missing_file": 1, "no_metadata": 1}
    assert any("line 8" in r["detail"] for r in res.rejected)  # the broken JSON line


def test_json_metadata_errors_name_line_and_column(tmp_path: Path) -> None:
    dump = tmp_path / "dump.json"
    dump.write_text('{"albums": [\n  {"album_id": "a1",, "tracks": []}\n]}\n')
    with pytest.raises(MetadataError) as err:
        load_recordings(SourceConfig(kind="json_dump", metadata=dump))
    assert (err.value.line, err.value.column) == (2, 21), str(err.value)
    dump.write_bytes(b'{"albums": [\n {"album_id": "caf\xe9", "tracks": []}]}')
    with pytest.raises(MetadataError) as err:
        load_recordings(SourceConfig(kind="json_dump", metadata=dump))
    assert err.value.line == 2 and "not UTF-8" in str(err.value) and "0xe9" in str(err.value)
    # JSONL: a non-UTF-8 line costs that line only
    touch(tmp_path / "j" / "s1.wav")
    seg = tmp_path / "j" / "seg.jsonl"
    good = json.dumps({"segment_id": "a", "recording_id": "s1", "segment_start": 0,
                       "segment_end": 1})
    seg.write_bytes(good.encode() + b'\n{"segment_id": "b\xff", "recording_id": "s1"}\n')
    res = load_recordings(SourceConfig(kind="jsonl_segments", metadata=seg))
    assert [r.recording_id for r in res.recordings] == ["a"]
    assert [(r["reason"], r["detail"][:28]) for r in res.rejected] == [
        ("bad_metadata", "line 2: line: not UTF-8 text")]


def test_paths_outside_the_root_are_rejected_unopened(tmp_path: Path) -> None:
    root, out = tmp_path / "audio", tmp_path / "outside"
    touch(root / "ok.wav")
    touch(out / "secret.wav")
    (root / "link.wav").symlink_to(out / "secret.wav")
    (root / "x.mp3").mkdir()
    meta = tmp_path / "m.csv"
    meta.write_text(f"id,path\nok,ok.wav\nclimb,../outside/secret.wav\nabs,{out / 'secret.wav'}\n"
                    "tmpl,\n")
    cfg = SourceConfig(metadata=meta, audio_root=root, id_column="id", path_column="path",
                       path_template="../outside/secret.wav", stem_lookup=False)
    res = load_recordings(cfg)
    assert [r.recording_id for r in res.recordings] == ["ok"]
    got = {(r["recording_id"], r["reason"], r["path"]) for r in res.rejected}
    secret = str((out / "secret.wav").resolve())
    assert got == {("climb", "outside_root", secret), ("abs", "outside_root", secret),
                   ("tmpl", "outside_root", secret), (None, "outside_root", secret),
                   (None, "unsupported", str(root / "x.mp3"))}
    # an explicit allow-list admits absolute paths and symlink targets
    allowed = load_recordings(cfg.model_copy(update={"allowed_roots": [out]}))
    assert sorted(r.recording_id for r in allowed.recordings) == ["abs", "climb", "ok", "tmpl"]


# ----------------------------------------------------------------------------- folders
def _tree(root: Path) -> None:
    touch(root / "happy" / "a.wav")
    touch(root / "sad" / "a.wav")
    touch(root / "rock" / "live" / "c.mp3")
    touch(root / "top.wav")
    (root / "happy" / "cover.jpg").write_bytes(b"\xff\xd8")


def test_folders_singlelabel(tmp_path: Path) -> None:
    _tree(tmp_path)
    res = load_recordings(SourceConfig(kind="folders", audio_root=tmp_path, folder_task="mood"))
    recs = {r.recording_id: r for r in res.recordings}
    assert sorted(recs) == ["happy__a", "rock__live__c", "sad__a"]
    assert recs["happy__a"].singlelabel == {"mood": "happy"}
    assert recs["rock__live__c"].singlelabel == {"mood": "rock"}
    assert recs["rock__live__c"].extra["subfolders"] == ["live"]
    assert recs["happy__a"].group == recs["sad__a"].group == "a"
    assert sorted((Path(r["path"]).name, r["reason"]) for r in res.rejected) == [
        ("cover.jpg", "unsupported"), ("top.wav", "no_metadata")]


def test_folders_multilabel_parent_group(tmp_path: Path) -> None:
    _tree(tmp_path)
    cfg = SourceConfig(kind="folders", audio_root=tmp_path, folder_mode="multilabel",
                       folder_group="parent")
    recs = {r.recording_id: r for r in load_recordings(cfg).recordings}
    assert recs["rock__live__c"].multilabel == {"label": ["rock", "live"]}
    assert recs["rock__live__c"].group == "rock/live"
    assert recs["happy__a"].group != recs["sad__a"].group
    with pytest.raises(RejectedInput):
        load_recordings(SourceConfig(kind="folders"))


def test_recording_to_dict_roundtrip() -> None:
    rec = Recording("r1", Path("/x/y.wav"), {"t": ["a"]}, {"s": None}, {"n": 1.0}, "g", 0.0, 2.0)
    d = rec.to_dict()
    assert d["path"] == "/x/y.wav" and d["multilabel"] == {"t": ["a"]} and d["end_s"] == 2.0
    assert Recording(**{**d, "path": Path(d["path"])}) == rec


# ----------------------------------------------------------------------------- hostile walks
def test_fourq_ids_keep_their_stem(fourq) -> None:
    """No stem collides in 4Q: ids (and so the dataset version) do not change."""
    assert all("." not in r.recording_id for r in fourq.recordings)


def test_stem_collisions_keep_the_extension(tmp_path: Path) -> None:
    root = tmp_path / "audio"
    for name in ("rock/x.mp3", "rock/x.wav", "rock/x.mid", "rock/y.wav", "jazz/x.wav"):
        touch(root / name)
    res = load_recordings(SourceConfig(kind="folders", audio_root=root))
    assert res.rejected == []
    assert sorted(r.recording_id for r in res.recordings) == \
        ["jazz__x", "rock__x.mid", "rock__x.mp3", "rock__x.wav", "rock__y"]
    # csv without id column: ids from the named files' stems, the extension kept on collision
    (tmp_path / "m.csv").write_text("path,genre\nrock/x.mp3,a\nrock/x.wav,b\nrock/y.wav,c\n")
    res = load_recordings(SourceConfig(kind="csv", metadata=tmp_path / "m.csv", audio_root=root,
                                       path_column="path", singlelabel={"genre": "genre"}))
    assert sorted(r.recording_id for r in res.recordings) == ["x.mp3", "x.wav", "y"]
    assert Counter(r["reason"] for r in res.rejected) == {"no_metadata": 2}


def test_fifo_is_unsupported_not_missing(tmp_path: Path) -> None:
    import os

    root = tmp_path / "audio"
    touch(root / "rock" / "a.wav")
    os.mkfifo(root / "rock" / "pipe.wav")
    res = load_recordings(SourceConfig(kind="folders", audio_root=root))
    assert [r.recording_id for r in res.recordings] == ["rock__a"]
    assert [(Path(r["path"]).name, r["reason"], r["detail"]) for r in res.rejected] == \
        [("pipe.wav", "unsupported", "not a regular file")]


def test_unlistable_folder_is_an_io_error(tmp_path: Path, monkeypatch) -> None:
    """os.walk's error on a folder it cannot list becomes an io_error record (not a silent gap)."""
    import errno
    import os

    root = tmp_path / "audio"
    touch(root / "rock" / "a.wav")
    touch(root / "locked" / "b.wav")
    real_scandir = os.scandir

    def scandir(path=None):
        if Path(path).name == "locked":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    res = load_recordings(SourceConfig(kind="folders", audio_root=root))
    assert [r.recording_id for r in res.recordings] == ["rock__a"]
    assert [(r["path"], r["reason"]) for r in res.rejected] == [(str(root / "locked"), "io_error")]
    assert "Permission denied" in res.rejected[0]["detail"]


def test_unreadable_folder_as_another_user(tmp_path: Path) -> None:
    """A real mode-000 folder walked by a user that is not root (root reads it anyway): a forked
    child drops to ``nobody`` with ``os.setuid`` and walks it (modules already imported)."""
    import os
    import pwd
    import shutil
    import tempfile

    if os.geteuid() == 0:
        try:
            uid = pwd.getpwnam("nobody").pw_uid
        except KeyError:
            pytest.skip("running as root and no 'nobody' user to drop to")
    else:
        uid = None
    base = Path(tempfile.mkdtemp(prefix="eno-walk-"))  # outside pytest's mode-700 tmp folder
    try:
        base.chmod(0o755)
        touch(base / "rock" / "a.wav")
        touch(base / "locked" / "b.wav")
        (base / "rock").chmod(0o755)
        (base / "rock" / "a.wav").chmod(0o644)
        (base / "locked").chmod(0)
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: drop privileges, walk, report, exit without pytest's teardown
            try:
                os.close(read_fd)
                if uid is not None:
                    os.setgid(uid)
                    os.setuid(uid)
                r = load_recordings(SourceConfig(kind="folders", audio_root=base))
                os.write(write_fd, json.dumps([[x.recording_id for x in r.recordings],
                                               r.rejected]).encode())
            finally:
                os._exit(0)
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as fh:
            out = fh.read()
        os.waitpid(pid, 0)
        ids, rejected = json.loads(out)
        assert ids == ["rock__a"]
        assert [(r["path"], r["reason"]) for r in rejected] == [(str(base / "locked"), "io_error")]
    finally:
        (base / "locked").chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)


def test_walk_of_a_named_folder_follows_links(tmp_path: Path) -> None:
    """``follow_symlinks`` (``eno tag FOLDER``): links inside the folder are followed, files and
    folders, a loop walked once; the confined walk (dataset roots) rejects the same links."""
    import os

    from eno_hf.data.sources import AudioIndex

    library = tmp_path / "library"
    touch(library / "a.wav")
    touch(library / "album" / "b.mp3")
    links = tmp_path / "links"
    links.mkdir()
    (links / "a.wav").symlink_to(library / "a.wav")
    (links / "album").symlink_to(library / "album", target_is_directory=True)
    (links / "loop").symlink_to(links, target_is_directory=True)
    (links / "gone.wav").symlink_to(tmp_path / "nowhere.wav")
    os.mkfifo(links / "pipe.wav")
    exts = [".wav", ".mp3"]
    followed = AudioIndex(links, exts, follow_symlinks=True)
    assert followed.files == [links / "a.wav", links / "album" / "b.mp3", links / "gone.wav",
                              links / "pipe.wav"]
    assert followed.outside == [] and followed.unreadable == []
    confined = AudioIndex(links, exts)
    assert confined.files == [links / "pipe.wav"]
    assert sorted(Path(e.path).name for e in confined.outside) == ["a.wav", "album", "nowhere.wav"]
