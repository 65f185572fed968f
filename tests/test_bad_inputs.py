"""A hostile corpus generated on the fly goes through the real ``eno build`` and ``eno tag`` CLIs.

Every input must be accounted for with the expected reason code in both commands, nothing
outside the audio root may be opened by ``eno build`` (inotify sees no open of a sentinel WAV
outside the root, and it never shows up as accepted; ``eno tag`` follows links in the folder the
user named, and there inotify does see the open), and the good files must give the same rows /
scores as a run on the good files alone. Tiny generated WAVs (2 s at 16 kHz) plus one real MP3,
cut, for the truncated MP3 case. An unreadable file (``io_error``) is tested in a subprocess that
cannot read it even as root.
"""

from __future__ import annotations

import ctypes
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from eno_hf.cli import app
from eno_hf.data.qc import read_qc_rows
from eno_hf.errors import REASON_DESCRIPTIONS

runner = CliRunner()
SR = 16_000
IS_ROOT = os.geteuid() == 0
PROJECT_ROOT = Path(__file__).resolve().parent.parent
_LIBC = ctypes.CDLL(None, use_errno=True)


class OpenWitness:
    """Counts the opens and reads of one file by any process, through Linux inotify (``IN_OPEN |
    IN_ACCESS`` on the file; a read through a symbolic link is seen too). Unlike the access time,
    which a ``noatime`` mount never updates (and ``relatime`` only sometimes), this cannot miss an
    open; ``stat``/``realpath`` (what a root check needs) raise no event.
    Source: inotify(7).
    """

    IN_ACCESS, IN_OPEN, IN_NONBLOCK, IN_CLOEXEC = 0x1, 0x20, 0o4000, 0o2000000

    def __init__(self, path: Path) -> None:
        self.fd = _LIBC.inotify_init1(self.IN_NONBLOCK | self.IN_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        if _LIBC.inotify_add_watch(self.fd, os.fsencode(path), self.IN_OPEN | self.IN_ACCESS) < 0:
            os.close(self.fd)
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {path}")

    def events(self) -> int:
        """Events since the last call (each ``struct inotify_event``: 16 bytes + its name)."""
        n = 0
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                return n
            off = 0
            while off < len(buf):
                name_len = struct.unpack_from("iIII", buf, off)[3]
                off += 16 + name_len
                n += 1

    def close(self) -> None:
        os.close(self.fd)


def tone(path: Path, seconds: float = 2.0, sr: int = SR, channels: int = 1, seed: int = 0,
         subtype: str = "PCM_16") -> Path:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * (220.0 + 55 * seed) * t) + 0.05 * rng.standard_normal(t.size)
    data = np.stack([x * (1 + 0.1 * c) / 1.5 for c in range(channels)], axis=1) if channels > 1 else x
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data.astype(np.float32), sr, subtype=subtype)
    return path


def lying_header(path: Path) -> Path:
    """A WAV whose RIFF/data sizes claim ten times the bytes present (decodes what is there)."""
    tone(path, seed=7)
    raw = bytearray(path.read_bytes())
    data_at = raw.index(b"data")
    real = int.from_bytes(raw[data_at + 4:data_at + 8], "little")
    raw[data_at + 4:data_at + 8] = (real * 10).to_bytes(4, "little")
    raw[4:8] = (len(raw) * 10).to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    return path


# name -> expected reason in build ("ok" = written) and in tag ("ok" = tagged)
GOOD = {"good1.wav": 1, "good2.wav": 2, "surround8.wav": 3, "low8k.wav": 4, "hi192k.flac": 5,
        "müsik ñ 音楽.wav": 6, "lying_header.wav": 7}


def make_corpus(base: Path, real_mp3: Path | None) -> dict[str, tuple[str, str]]:
    """Write the corpus under ``base/audio`` (+ a sentinel outside it) and ``base/meta.csv``.

    Returns ``{key: (build reason, tag reason)}``; key = file name (walk entries) or row id.
    """
    audio = base / "audio"
    outside = base / "outside"
    tone(outside / "secret.wav", seed=9)  # a perfectly good file: reading it would be accepted
    exp: dict[str, tuple[str, str]] = {}
    for name, seed in GOOD.items():
        if name == "surround8.wav":
            tone(audio / name, channels=8, seed=seed)
        elif name == "low8k.wav":
            tone(audio / name, sr=8000, seed=seed)
        elif name == "hi192k.flac":
            tone(audio / name, sr=192_000, seed=seed, subtype="PCM_24")
        elif name == "lying_header.wav":
            lying_header(audio / name)
        else:
            tone(audio / name, seed=seed)
        exp[name] = ("ok", "ok")
    (audio / "empty.wav").write_bytes(b"")
    exp["empty.wav"] = ("empty", "empty")
    header = (audio / "good1.wav").read_bytes()[:44]
    (audio / "truncated.wav").write_bytes(header)  # a header, no frames
    exp["truncated.wav"] = ("empty", "empty")
    (audio / "text.mp3").write_text("this is not audio at all\n" * 20)
    exp["text.mp3"] = ("undecodable", "undecodable")
    (audio / "image.wav").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(2000))
    exp["image.wav"] = ("undecodable", "undecodable")
    sf.write(audio / "silence.wav", np.zeros(2 * SR, dtype=np.float32), SR)
    exp["silence.wav"] = ("silent", "silent")
    nan = np.sin(np.arange(2 * SR) / 10.0).astype(np.float32)
    nan[100:110] = np.nan
    sf.write(audio / "nan.wav", nan, SR, subtype="FLOAT")
    exp["nan.wav"] = ("nan_inf", "nan_inf")
    inf = np.sin(np.arange(2 * SR) / 10.0).astype(np.float32)
    inf[5] = np.inf
    sf.write(audio / "inf.wav", inf, SR, subtype="FLOAT")
    exp["inf.wav"] = ("nan_inf", "nan_inf")
    tone(audio / "short.wav", seconds=0.05)
    exp["short.wav"] = ("too_short", "too_short")
    if real_mp3 is not None:
        raw = real_mp3.read_bytes()
        (audio / "cut.mp3").write_bytes(raw[:6000])  # ~0.25 s of a real MP3
        exp["cut.mp3"] = ("too_short", "too_short")
    (audio / "corrupt.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x02garbage")
    exp["corrupt.mid"] = ("undecodable", "undecodable")
    if not IS_ROOT:  # root reads mode-000 files anyway: see test_unreadable_file_is_io_error
        tone(audio / "locked.wav", seed=11)
        (audio / "locked.wav").chmod(0)
        exp["locked.wav"] = ("io_error", "io_error")
    tone(audio / "orphan.wav", seed=12)  # no metadata row: build rejects it, tag tags it
    exp["orphan.wav"] = ("no_metadata", "ok")
    (audio / "notes.txt").write_text("liner notes")
    exp["notes.txt"] = ("unsupported", "unsupported")
    (audio / "album.mp3").mkdir()  # a directory named like audio
    exp["album.mp3"] = ("unsupported", "unsupported")
    (audio / "link_out.wav").symlink_to(outside / "secret.wav")
    # links in a folder named on eno tag's command line are the user's choice: followed there
    exp["link_out.wav"] = ("outside_root", "ok")
    (audio / "passwd.mp3").symlink_to("/etc/passwd")
    exp["passwd.mp3"] = ("outside_root", "undecodable")

    rows = [f"{Path(n).stem},{n},rock,120" for n in exp
            if n not in ("orphan.wav", "notes.txt", "album.mp3", "link_out.wav", "passwd.mp3")]
    hostile = {
        # a path climbing out of the root, an absolute path, a template climbing out
        "climb": ("climb,../outside/secret.wav,rock,1", "outside_root"),
        "absolute": (f"absolute,{outside / 'secret.wav'},rock,1", "outside_root"),
        "../outside/secret": ("../outside/secret,,rock,1", "outside_root"),
        "etc": ("etc,/etc/passwd,rock,1", "outside_root"),
        "gone": ("gone,gone.wav,rock,1", "missing_file"),
        "badnum": ("badnum,good1.wav,rock,fast", "bad_metadata"),
        "toomany": ("toomany,good1.wav,rock,1,extra", "bad_metadata"),
        "dup": ("good1,good2.wav,pop,3", "bad_metadata"),  # duplicate id
    }
    lines = ["id,file,genre,bpm", *rows, *(line for line, _ in hostile.values())]
    body = ("\n".join(lines) + "\n").encode()
    body += b"latin1,good1.wav,caf\xe9,1\n"  # one non-UTF-8 byte: this row only
    (base / "meta.csv").write_bytes(body)
    for key, (_, reason) in hostile.items():
        exp[f"row:{key}"] = (reason, "-")
    exp["row:latin1"] = ("bad_metadata", "-")
    return exp


def build_args(base: Path, data_root: Path, meta: str = "meta.csv") -> list[str]:
    sets = [f"paths.data_root={data_root}", "dataset.name=hostile", "dataset.source.kind=csv",
            f"dataset.source.metadata={base / meta}", f"dataset.source.audio_root={base / 'audio'}",
            "dataset.source.id_column=id", "dataset.source.path_column=file",
            "dataset.source.path_template={id}.wav", "dataset.source.stem_lookup=false",
            "dataset.source.singlelabel={genre: genre}", "dataset.source.numeric={bpm: bpm}",
            "dataset.segment.segment_s=1.0", "dataset.segment.hop_s=1.0",
            "dataset.split.train=0.6", "dataset.split.validation=0.2", "dataset.split.test=0.2",
            "dataset.num_workers=1", "dataset.audio_column=false"]
    args = ["build", "--config", "configs/base.yaml", "--json"]
    for s in sets:
        args += ["--set", s]
    return args


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, tuple[str, str]]]:
    base = tmp_path_factory.mktemp("hostile")
    real = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "4q-dev" / "Q1"
    mp3 = sorted(real.glob("*.mp3"))[0] if real.is_dir() else None
    exp = make_corpus(base, mp3)
    return base, exp


def _key(item: dict, base: Path, exp: dict) -> str:
    """The corpus key of one QC-report rejection."""
    rid, detail = item.get("recording_id"), item.get("detail") or ""
    if "duplicate id" in detail:
        return "row:dup"
    if rid is not None and f"row:{rid}" in exp:
        return f"row:{rid}"
    if rid is not None:  # a metadata row naming a corpus file
        return next(n for n in exp if Path(n).stem == rid)
    return _walk_name(Path(item["path"]), base)


def _walk_name(p: Path, base: Path) -> str:
    """Corpus name of a walk entry; outside_root entries name the resolved target."""
    targets = {(base / "outside" / "secret.wav").resolve(): "link_out.wav",
               Path("/etc/passwd").resolve(): "passwd.mp3"}
    return targets.get(p, p.name)


def test_build_accounts_for_every_input(corpus) -> None:
    base, exp = corpus
    data_root = base / "data"
    witness = OpenWitness(base / "outside" / "secret.wav")
    try:
        result = runner.invoke(app, build_args(base, data_root))
        opened_outside = witness.events()
    finally:
        witness.close()
    assert result.exit_code == 1, result.output  # written, with rejected inputs
    last = json.loads(result.stdout.strip().splitlines()[-1])
    report = json.loads((Path(last["dataset"]) / "qc_report.json").read_text())
    got: dict[str, str] = {}
    for item in report["rejected"]:
        assert item["reason"] in REASON_DESCRIPTIONS, item
        key = _key(item, base, exp)
        assert key not in got, (key, item)
        got[key] = item["reason"]
    for w in read_qc_rows(Path(last["dataset"]), "written"):
        got[next(n for n in exp if Path(n).stem == w["recording_id"])] = "ok"
    expected = {k: b for k, (b, _) in exp.items()}
    assert got == expected
    acc = report["accounting"]
    assert acc["invariant_holds"] and acc["n_inputs"] == len(expected)
    # resolved paths are named for outside_root rows
    climb = next(r for r in report["rejected"] if r["recording_id"] == "climb")
    assert climb["path"] == str((base / "outside" / "secret.wav").resolve())
    # the sentinel outside the root was never opened (test_tag_accounts_for_every_input shows
    # the same witness seeing eno tag's open of it)
    assert opened_outside == 0

    # good files: the same rows as a build on the good files alone
    good_rows = [f"{Path(n).stem},{n},rock,120" for n in GOOD]
    (base / "clean.csv").write_text("id,file,genre,bpm\n" + "\n".join(good_rows) + "\n")
    clean_root = base / "clean-data"
    clean_audio = base / "clean-audio"
    clean_audio.mkdir()
    for n in GOOD:
        (clean_audio / n).write_bytes((base / "audio" / n).read_bytes())
    args = build_args(base, clean_root, "clean.csv")
    args[args.index(f"dataset.source.audio_root={base / 'audio'}")] = \
        f"dataset.source.audio_root={clean_audio}"
    clean = runner.invoke(app, args)
    assert clean.exit_code == 0, clean.output
    clean_path = Path(json.loads(clean.stdout.strip().splitlines()[-1])["dataset"])
    from datasets import load_from_disk

    def rows(path: Path) -> dict[str, tuple]:
        out = {}
        for split, ds in load_from_disk(str(path)).items():
            for r in ds.select_columns(["segment_id", "waveform", "log_mel"]).to_list():
                out[r["segment_id"]] = (np.asarray(r["waveform"]).tobytes(),
                                        np.asarray(r["log_mel"]).tobytes())
        return out

    hostile_rows, clean_rows = rows(Path(last["dataset"])), rows(clean_path)
    assert hostile_rows.keys() == clean_rows.keys() and len(hostile_rows) >= 2 * len(GOOD)
    assert all(hostile_rows[k] == clean_rows[k] for k in clean_rows)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from eno_hf.models import EnoFeatureExtractor, EnoForAudioTagging, EnoModelConfig

    out = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    cfg = EnoModelConfig(encoder_type="mel_cnn", encoder_kwargs={"n_mels": 32, "channels": 4,
                                                                 "n_blocks": 2},
                         chunk_s=2.0, hidden_dim=8,
                         heads=[{"name": "moods", "kind": "multilabel", "labels": ["a", "b"]}])
    EnoForAudioTagging(cfg).eval().save_pretrained(out)
    EnoFeatureExtractor(sampling_rate=SR, target_lufs=-18.0).save_pretrained(out)
    return out


def test_tag_accounts_for_every_input(corpus, tiny_model, tmp_path) -> None:
    base, exp = corpus
    out = tmp_path / "tags.jsonl"
    missing = base / "audio" / "not-there.wav"
    witness = OpenWitness(base / "outside" / "secret.wav")
    try:
        result = runner.invoke(app, ["tag", str(base / "audio"), str(missing), "--model",
                                     str(tiny_model), "--out", str(out)])
        opened_outside = witness.events()
    finally:
        witness.close()
    assert result.exit_code == 1, result.output  # some inputs failed
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    got: dict[str, str] = {}
    for r in records:
        p = Path(r["path"])
        name = _walk_name(p, base)
        assert name not in got, r
        if r.get("error"):
            assert r["error"]["reason"] in REASON_DESCRIPTIONS
            got[name] = r["error"]["reason"]
        else:
            got[name] = "ok"
    expected = {k: t for k, (_, t) in exp.items() if not k.startswith("row:")}
    expected["not-there.wav"] = "missing_file"
    assert got == expected
    n_failed = sum(v != "ok" for v in expected.values())
    assert f"{len(expected)} input(s), {len(expected) - n_failed} tagged, {n_failed} failed" \
        in " ".join(result.output.split())
    # the sentinel outside is read here (the link is in the folder the user named): the witness
    # that saw no open in test_build_accounts_for_every_input does see this one
    assert opened_outside > 0
    # a good file gets the same scores as when tagged alone
    alone = runner.invoke(app, ["tag", str(base / "audio" / "good1.wav"), "--model",
                                str(tiny_model), "--json"])
    assert alone.exit_code == 0, alone.output
    rec = json.loads(alone.stdout.strip().splitlines()[0])
    assert rec["heads"] == next(r for r in records if r["path"].endswith("good1.wav"))["heads"]


def _drop_dac_capabilities() -> None:
    """``preexec_fn`` for a child of root: drop ``CAP_DAC_OVERRIDE`` (1) and ``CAP_DAC_READ_SEARCH``
    (2) from the bounding set (``prctl(PR_CAPBSET_DROP)``, 24), so the program it executes runs as
    uid 0 without them and gets the ordinary permission checks: a mode-000 file is unreadable to
    it, as to any user. Source: capabilities(7), prctl(2)."""
    for cap in (1, 2):
        if _LIBC.prctl(24, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), f"prctl(PR_CAPBSET_DROP, {cap})")


@pytest.mark.slow
def test_unreadable_file_is_io_error(tiny_model, tmp_path) -> None:
    """``io_error``: a mode-000 file in ``eno build`` and ``eno tag``, both run as subprocesses that
    may not read it. Root reads a mode-000 file anyway (CI runs as root), so as root the
    subprocesses run without the capabilities that let it; the same ``open`` in such a subprocess
    must fail first (else the test would prove nothing)."""
    audio = tmp_path / "audio"
    for i in range(5):  # enough recordings for the 60/20/20 split
        tone(audio / f"good{i}.wav", seed=20 + i)
    locked = tone(audio / "locked.wav", seed=11)
    locked.chmod(0)
    (tmp_path / "meta.csv").write_text("id,file,genre,bpm\n" + "".join(
        f"{p.stem},{p.name},rock,120\n" for p in sorted(audio.iterdir())))
    preexec = _drop_dac_capabilities if IS_ROOT else None

    def run(args: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *args], cwd=PROJECT_ROOT, preexec_fn=preexec,
                              capture_output=True, text=True, timeout=900)

    probe = run(["-c", f"open({str(locked)!r}, 'rb')"])
    assert probe.returncode == 1 and "PermissionError" in probe.stderr, probe.stderr[-2000:]

    build = run(["-m", "eno_hf.cli", *build_args(tmp_path, tmp_path / "data")])
    assert build.returncode == 1, build.stderr[-3000:]  # written, with one rejected input
    dataset = Path(json.loads(build.stdout.strip().splitlines()[-1])["dataset"])
    report = json.loads((dataset / "qc_report.json").read_text())
    assert [(r["recording_id"], r["reason"]) for r in report["rejected"]] == [("locked", "io_error")]
    assert sorted(w["recording_id"] for w in read_qc_rows(dataset, "written")) == [f"good{i}" for i in range(5)]

    out = tmp_path / "tags.jsonl"
    tag = run(["-m", "eno_hf.cli", "tag", str(audio), "--model", str(tiny_model), "--out", str(out)])
    assert tag.returncode == 1, tag.stderr[-3000:]  # one input failed
    got = {Path(r["path"]).name: (r["error"]["reason"] if r.get("error") else "ok")
           for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    assert got == {"locked.wav": "io_error", **{f"good{i}.wav": "ok" for i in range(5)}}


def test_every_reason_is_documented() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "errors.md").read_text()
    for reason in REASON_DESCRIPTIONS:
        assert f"`{reason}`" in doc, reason
