"""CLI error contract: bad config numbers and whole-metadata errors exit 2 with one clear line;
an unreadable model is a permission error (exit 2)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from eno_hf.cli import app

runner = CliRunner()


@pytest.mark.parametrize("override, key", [
    ("dataset.segment.segment_s=-5", "dataset.segment.segment_s"),
    ("dataset.segment.segment_s=0", "dataset.segment.segment_s"),
    ("dataset.segment.hop_s=-1", "dataset.segment.hop_s"),
    ("dataset.audio.sample_rate=0", "dataset.audio.sample_rate"),
    ("dataset.split.train=1.5", "dataset.split.train"),
    ("dataset.limit=-1", "dataset.limit"),
    ("dataset.limit=0", "dataset.limit"),
    ("train.batch_size=0", "train.batch_size"),
    ("dataset.split.train=0.5", "dataset.split"),  # fractions no longer sum to 1
])
def test_bad_numbers_exit_2_naming_the_key(override: str, key: str) -> None:
    result = runner.invoke(app, ["config", "--set", override])
    assert result.exit_code == 2
    assert f"{key}:" in result.output and "Traceback" not in result.output


def _build(tmp_path: Path, meta: Path, *extra: str):
    sets = [f"paths.data_root={tmp_path / 'data'}", "dataset.source.kind=csv",
            f"dataset.source.metadata={meta}", f"dataset.source.audio_root={tmp_path}",
            "dataset.source.id_column=id", *extra]
    args = ["build", "--config", "configs/base.yaml"]
    for s in sets:
        args += ["--set", s]
    return runner.invoke(app, args)


@pytest.mark.parametrize("content, where", [
    (b"song,genre\na,rock\n", ":1: column 'id':"),          # configured id column missing
    (b"", ":1:"),                                           # empty file
    (b"id,genre\n", ":2: header only"),                     # no data rows
    (b"id,g\xe9nre\na,rock\n", ":1: header: not UTF-8"),    # bad byte in the header
])
def test_whole_metadata_errors_one_line_exit_2(tmp_path: Path, content: bytes, where: str) -> None:
    meta = tmp_path / "meta.csv"
    meta.write_bytes(content)
    result = _build(tmp_path, meta)
    assert result.exit_code == 2, result.output
    text = "".join(result.output.split())  # rich wraps long lines
    assert "".join(f"{meta}{where}".split()) in text, text
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


def test_every_input_rejected_exits_2(tmp_path: Path) -> None:
    meta = tmp_path / "meta.csv"
    (tmp_path / "a.wav").write_bytes(b"not audio")
    meta.write_text("id,path\na,a.wav\n")
    result = _build(tmp_path, meta, "dataset.source.path_column=path")
    assert result.exit_code == 2 and "no usable recordings" in result.output


def test_unreadable_model_is_a_permission_error(tmp_path: Path, monkeypatch) -> None:
    from eno_hf.models import EnoFeatureExtractor, EnoForAudioTagging, EnoModelConfig

    torch.manual_seed(0)
    cfg = EnoModelConfig(encoder_type="mel_cnn", encoder_kwargs={"n_mels": 16, "channels": 2,
                                                                 "n_blocks": 1},
                         chunk_s=1.0, hidden_dim=4,
                         heads=[{"name": "m", "kind": "multilabel", "labels": ["a"]}])
    EnoForAudioTagging(cfg).save_pretrained(tmp_path / "model")
    EnoFeatureExtractor(sampling_rate=16_000).save_pretrained(tmp_path / "model")
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p).endswith(".safetensors")
                        else real(p, mode))
    song = tmp_path / "x.wav"
    song.write_bytes(b"x")
    result = runner.invoke(app, ["tag", str(song), "--model", str(tmp_path / "model")])
    assert result.exit_code == 2
    text = "".join(result.output.split())  # rich wraps long lines
    assert "PermissionError" in text and "model.safetensors" in text and "permissiondenied" in text


def test_missing_weights_one_line_exit_2(tmp_path: Path) -> None:
    empty = tmp_path / "models"
    empty.mkdir()
    out = tmp_path / "out"
    result = runner.invoke(app, ["import-weights", "msd-fcn", "--out", str(out), "--json",
                                 "--set", f"paths.models_dir={empty}"])
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("weights error:"), result.output
    assert str(empty / "sota-music-tagging" / "msd-fcn.safetensors") in lines[0]
    assert "Traceback" not in result.output and not out.exists()


@pytest.mark.parametrize("command, target", [
    (["train"], "eno_hf.tagging.run_stages"),
    (["run", "--no-prefect"], "eno_hf.tagging.run_pipeline"),
])
def test_weights_error_in_a_stage_exits_2(monkeypatch, tmp_path: Path, command: list[str], target: str) -> None:
    from eno_hf.models.weights import WeightsNotFoundError

    def missing(*args, **kwargs):
        raise WeightsNotFoundError("msd-fcn.safetensors", [tmp_path / "a" / "msd-fcn.safetensors"])

    module, _, name = target.rpartition(".")
    monkeypatch.setattr(__import__(module, fromlist=[name]), name, missing)
    result = runner.invoke(app, [*command, "--set", f"paths.data_root={tmp_path / 'data'}"])
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("weights error: pretrained weights 'msd-fcn.safetensors'"), lines
