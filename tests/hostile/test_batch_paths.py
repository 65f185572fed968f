"""The batch corpus (``batch_corpus``) through the real ``eno build`` and ``eno tag`` CLIs:
stem collisions, a FIFO, a folder the walk cannot list, and a folder of symlinks to real clips
elsewhere. Every input is accounted for, with the same reason on both paths where both see it;
``eno tag`` exits 1 because some inputs failed; the build's accounting invariant holds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from batch_corpus import deny_listing, make_batch_corpus, make_link_folder, rel, unlock
from typer.testing import CliRunner

from eno_hf.cli import app
from eno_hf.data.qc import read_qc_rows
from eno_hf.errors import REASON_DESCRIPTIONS

runner = CliRunner()


def _library(tmp_path: Path) -> list[Path]:
    """Two real 4Q clips (``../shared``), else two generated WAVs outside the corpus folder."""
    real = Path(__file__).resolve().parents[3] / "shared" / "data" / "4q-dev" / "Q1"
    clips = sorted(real.glob("*.mp3"))[:2] if real.is_dir() else []
    if len(clips) == 2:
        return clips
    from batch_corpus import tone

    return [tone(tmp_path / "library" / f"song{i}.wav", seed=10 + i) for i in range(2)]


@pytest.fixture
def corpus(tmp_path: Path, monkeypatch) -> tuple[Path, dict]:
    audio = tmp_path / "audio"
    exp = make_batch_corpus(audio)
    links = make_link_folder(audio / "links", _library(tmp_path))  # links into a music library
    exp |= {f"links/{k}": v for k, v in links.items()}
    if os.geteuid() == 0:  # root lists a mode-000 folder anyway: fail the listing as for a user
        monkeypatch.setattr(os, "scandir", deny_listing(audio))
    monkeypatch.setenv("ENO_RENDER_CACHE", str(tmp_path / "render-cache"))
    yield audio, exp
    unlock(audio)


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
    EnoFeatureExtractor(sampling_rate=16_000, target_lufs=-18.0).save_pretrained(out)
    return out


def _build(audio: Path, data_root: Path) -> tuple[dict, list[dict]]:
    """(qc_report.json, the written rows of qc_rows.jsonl) of ``eno build`` over ``audio``."""
    sets = [f"paths.data_root={data_root}", "dataset.name=batch", "dataset.source.kind=folders",
            f"dataset.source.audio_root={audio}", "dataset.source.folder_group=none",
            "dataset.segment.segment_s=1.0", "dataset.segment.hop_s=1.0",
            "dataset.split.train=0.6", "dataset.split.validation=0.2", "dataset.split.test=0.2",
            "dataset.num_workers=1", "dataset.audio_column=false", "dataset.features.mfcc=false"]
    args = ["build", "--config", "configs/base.yaml", "--json"]
    for s in sets:
        args += ["--set", s]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output  # written, with rejected inputs
    last = json.loads(result.stdout.strip().splitlines()[-1])
    return (json.loads((Path(last["dataset"]) / "qc_report.json").read_text()),
            list(read_qc_rows(Path(last["dataset"]), "written")))


def test_batch_corpus_through_build_and_tag(corpus, tiny_model, tmp_path: Path) -> None:
    audio, exp = corpus

    # eno build: every entry once, with the expected reason (links: outside_root)
    report, written = _build(audio, tmp_path / "data")
    ids = {k.replace("/", "__"): k for k in exp} | \
        {Path(k).with_suffix("").as_posix().replace("/", "__"): k for k in exp}
    got: dict[str, str] = {}
    for item in report["rejected"]:
        assert item["reason"] in REASON_DESCRIPTIONS, item
        path = Path(item["path"])
        key = rel(path, audio) if path.is_relative_to(audio) else \
            next(k for k in exp if k.startswith("links/") and Path(k).name == path.name)
        assert key not in got, item
        got[key] = item["reason"]
    for w in written:
        key = ids[w["recording_id"]]
        assert key not in got, w
        got[key] = "ok"
    assert got == {k: b for k, (b, _) in exp.items()}
    # the three files of stem x are three inputs (their ids keep the extension)
    assert {w["recording_id"] for w in written} >= {"rock__x.mp3", "rock__x.wav",
                                                              "rock__x.mid"}
    assert report["accounting"]["invariant_holds"]
    assert report["accounting"]["n_inputs"] == len(exp)
    locked = next(r for r in report["rejected"] if r["reason"] == "io_error")
    assert locked["path"] == str(audio / "locked") and "cannot list folder" in locked["detail"]
    fifo = next(r for r in report["rejected"] if r["path"].endswith("pipe.wav"))
    assert fifo["detail"] == "not a regular file"

    # eno tag of the folder: the same reasons; links are followed (the user named the folder)
    out = tmp_path / "tags.jsonl"
    result = runner.invoke(app, ["tag", str(audio), "--model", str(tiny_model), "--out", str(out)])
    assert result.exit_code == 1, result.output  # some inputs failed
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    tagged: dict[str, str] = {}
    for r in records:
        key = rel(r["path"], audio)
        assert key not in tagged, r
        tagged[key] = r["error"]["reason"] if r.get("error") else "ok"
    assert tagged == {k: t for k, (_, t) in exp.items()}
    fifo = next(r for r in records if r["path"].endswith("pipe.wav"))
    assert fifo["error"]["detail"] == "not a regular file"


def test_two_groups_for_three_splits_is_one_line_exit_2(tmp_path: Path) -> None:
    from batch_corpus import tone

    audio = tmp_path / "audio"
    tone(audio / "rock" / "a.wav", seed=1)
    tone(audio / "jazz" / "b.wav", seed=2)
    args = ["build", "--config", "configs/base.yaml"]
    for s in [f"paths.data_root={tmp_path / 'data'}", "dataset.name=two",
              "dataset.source.kind=folders", f"dataset.source.audio_root={audio}",
              "dataset.source.folder_group=none", "dataset.num_workers=1",
              "dataset.segment.segment_s=1.0", "dataset.segment.hop_s=1.0",
              "dataset.audio_column=false", "dataset.features.mfcc=false"]:
        args += ["--set", s]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    text = " ".join(result.output.split())
    assert "dataset 'two': 2 group(s)" in text and "3 splits ['train', 'validation', 'test']" in text
    assert "Traceback" not in result.output


def test_pickle_only_model_folder_is_one_line_exit_2(tiny_model: Path, tmp_path: Path) -> None:
    """A model folder whose weights are only a pickle ``pytorch_model.bin`` is refused before
    anything is unpickled: one line, exit 2."""
    import shutil

    from safetensors.torch import load_file

    bad = tmp_path / "pickled"
    bad.mkdir()
    for f in tiny_model.glob("*.json"):
        shutil.copy(f, bad / f.name)
    torch.save(load_file(tiny_model / "model.safetensors"), bad / "pytorch_model.bin")
    clip = tmp_path / "a.wav"
    from batch_corpus import tone

    tone(clip)
    result = runner.invoke(app, ["tag", str(clip), "--model", str(bad)])
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "never unpickles" in lines[0] and "pytorch_model.bin" in lines[0]
