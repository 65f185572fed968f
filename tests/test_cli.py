"""The eno CLI: every stage listed, root options (--version, -v/-q wired to logging), config
listing and the one-JSON-object-last contract of --json."""

from __future__ import annotations

import json
import logging
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from typer.testing import CliRunner

import eno_hf
from eno_hf.cli import app
from eno_hf.utils import logs

runner = CliRunner()


@pytest.fixture(autouse=True)
def _restore_logging(monkeypatch):
    """The root options set the eno_hf level and ENO_LOG_LEVEL: give later tests the defaults back."""
    logger = logging.getLogger("eno_hf")
    level = logger.level
    monkeypatch.delenv(logs.ENV_VAR, raising=False)
    yield
    logger.setLevel(level)
    logs._explicit = None
    os.environ.pop(logs.ENV_VAR, None)


def _last_json(stdout: str) -> dict:
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    assert lines, "no output"
    return json.loads(lines[-1])


def test_help_lists_every_stage() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for cmd in ("ingest", "build", "train", "evaluate", "register", "tag", "run", "import-weights",
                "config", "hub", "clarity", "dataset", "embed", "cv", "serve", "export-onnx"):
        assert cmd in result.output
    for opt in ("--version", "--verbose", "--quiet"):
        assert opt in result.output


def test_version() -> None:
    try:
        expected = version("eno")
    except PackageNotFoundError:
        expected = eno_hf.__version__
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"eno {expected}"


@pytest.mark.parametrize("flags, level, quiet", [
    ([], logging.INFO, False),
    (["-v"], logging.DEBUG, False),
    (["--verbose"], logging.DEBUG, False),
    (["-q"], logging.WARNING, True),
    (["--quiet"], logging.WARNING, True),
])
def test_root_options_set_the_log_level(flags: list[str], level: int, quiet: bool) -> None:
    result = runner.invoke(app, [*flags, "config", "--list"])
    assert result.exit_code == 0, result.output
    assert logging.getLogger("eno_hf").level == level
    assert logs.quiet() is quiet
    assert os.environ[logs.ENV_VAR] == logging.getLevelName(level)
    handlers = [h for h in logging.getLogger().handlers if getattr(h, "_eno", False)]
    assert len(handlers) == 1  # one stderr handler however often the command runs


def test_info_lines_reach_stderr_unless_quiet() -> None:
    @app.command("_log_probe", hidden=True)
    def _probe() -> None:
        logging.getLogger("eno_hf.probe").info("probe-info-line")
        logging.getLogger("eno_hf.probe").debug("probe-debug-line")

    try:
        plain = runner.invoke(app, ["_log_probe"])
        assert "probe-info-line" in plain.stderr and "probe-debug-line" not in plain.stderr
        assert "probe-info-line" not in plain.stdout
        verbose = runner.invoke(app, ["-v", "_log_probe"])
        assert "probe-debug-line" in verbose.stderr
        quiet = runner.invoke(app, ["-q", "_log_probe"])
        assert "probe-info-line" not in quiet.stderr
    finally:
        app.registered_commands[:] = [c for c in app.registered_commands if c.name != "_log_probe"]


def test_verbose_and_quiet_exclude_each_other() -> None:
    result = runner.invoke(app, ["-v", "-q", "config"])
    assert result.exit_code == 2


def test_config_command_applies_overrides() -> None:
    result = runner.invoke(app, ["config", "--set", "train.epochs=2"])
    assert result.exit_code == 0, result.output
    assert "epochs: 2" in result.output


def test_config_json_is_one_object_last() -> None:
    result = runner.invoke(app, ["config", "--set", "train.epochs=2", "--json"])
    assert result.exit_code == 0, result.output
    obj = _last_json(result.stdout)
    assert obj["settings"]["train"]["epochs"] == 2
    assert Path(obj["config"]).name == "small.yaml"
    assert len(result.stdout.strip().splitlines()) == 1  # no YAML before it


def test_config_list_names_builtins_with_their_first_comment() -> None:
    from eno_hf.config import builtin_configs

    result = runner.invoke(app, ["config", "--list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in _last_json(result.stdout)["configs"]}
    assert set(rows) == set(builtin_configs())
    assert "small" in rows and "percepiano" in rows
    first = next(ln for ln in Path(rows["small"]["path"]).read_text().splitlines() if ln.startswith("#"))
    assert rows["small"]["description"] == first.lstrip("#").strip()
    table = runner.invoke(app, ["config", "--list"], terminal_width=200)
    assert table.exit_code == 0 and "small" in table.stdout and "datasets/4q" in table.stdout


def test_hub_list_json(tmp_path: Path) -> None:
    result = runner.invoke(app, ["hub", "list", "--set", f"paths.hub_dir={tmp_path / 'hub'}", "--json"])
    assert result.exit_code == 0, result.output
    assert _last_json(result.stdout) == {"hub": str(tmp_path / "hub"), "models": []}


def test_bad_override_exits_2() -> None:
    result = runner.invoke(app, ["config", "--set", "train.nope=2"])
    assert result.exit_code == 2


def test_import_weights_json(tmp_path: Path, sota_models_dir: Path) -> None:
    out = tmp_path / "msd-fcn"
    result = runner.invoke(app, ["import-weights", "msd-fcn", "--out", str(out), "--json",
                                 "--set", f"paths.models_dir={sota_models_dir.parent}"])
    assert result.exit_code == 0, result.output
    obj = _last_json(result.stdout)
    assert obj == {"name": "msd-fcn", "model": str(out.resolve())}
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()


def test_prefect_logging_setup_keeps_the_one_handler() -> None:
    """Under `eno run` (Prefect in process) eno's lines are printed once, by eno's handler."""
    import subprocess
    import sys

    code = """
import logging
from eno_hf.utils.logs import setup_logging
setup_logging("INFO")
from prefect.logging.configuration import setup_logging as prefect_setup
prefect_setup()
print([type(h).__name__ for h in logging.getLogger().handlers])
logging.getLogger("eno_hf.probe").info("probe-line")
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().splitlines()[-1] == "['StderrHandler']"
    assert res.stderr.count("probe-line") == 1, res.stderr


@pytest.fixture()
def tiny_model(tmp_path: Path) -> Path:
    import torch

    from eno_hf.models import EnoFeatureExtractor, EnoForAudioTagging, EnoModelConfig

    torch.manual_seed(0)
    cfg = EnoModelConfig(encoder_type="mel_cnn", encoder_kwargs={"n_mels": 16, "channels": 2, "n_blocks": 1},
                         chunk_s=1.0, hidden_dim=4, heads=[{"name": "m", "kind": "multilabel", "labels": ["a", "b"]}])
    out = tmp_path / "model"
    EnoForAudioTagging(cfg).save_pretrained(out)
    EnoFeatureExtractor(sampling_rate=16_000).save_pretrained(out)
    return out


def test_register_json(tmp_path: Path, tiny_model: Path) -> None:
    result = runner.invoke(app, ["register", "--model", str(tiny_model), "--name", "tiny", "--json",
                                 "--set", f"paths.hub_dir={tmp_path / 'hub'}", "--set", "registry.clearml=false"])
    assert result.exit_code == 0, result.output
    obj = _last_json(result.stdout)
    assert obj["registered"] == str(tmp_path / "hub" / "tiny" / "v1") and obj["version"] == "v1"
    assert Path(obj["registered"], "config.json").is_file()
    listed = _last_json(runner.invoke(app, ["hub", "list", "--json", "--set",
                                            f"paths.hub_dir={tmp_path / 'hub'}"]).stdout)
    assert [(m["name"], m["path"]) for m in listed["models"]] == [("tiny", obj["registered"])]


def test_tag_json_streams_records_then_a_summary(tmp_path: Path, tiny_model: Path) -> None:
    import numpy as np
    import soundfile as sf

    good = tmp_path / "good.wav"
    sf.write(good, (0.1 * np.sin(np.arange(32_000) * 0.05)).astype("float32"), 16_000)
    missing = tmp_path / "missing.wav"
    result = runner.invoke(app, ["tag", str(good), str(missing), "--model", str(tiny_model), "--json"])
    assert result.exit_code == 1, result.output  # one input failed
    objs = [json.loads(ln) for ln in result.stdout.splitlines() if ln.strip()]
    assert [Path(o["path"]).name for o in objs[:-1]] == ["good.wav", "missing.wav"]
    assert objs[0]["heads"]["m"] and objs[1]["error"]["reason"] == "missing_file"
    assert objs[-1] == {"inputs": 2, "tagged": 1, "failed": 1, "reasons": {"missing_file": 1}, "out": None}
