"""The eno CLI lists every stage and reports config errors clearly."""

from __future__ import annotations

from typer.testing import CliRunner

from eno_hf.cli import app

runner = CliRunner()


def test_help_lists_every_stage() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for cmd in ("ingest", "build", "train", "evaluate", "register", "tag", "run", "import-weights"):
        assert cmd in result.output


def test_config_command_applies_overrides() -> None:
    result = runner.invoke(app, ["config", "--set", "train.epochs=2"])
    assert result.exit_code == 0, result.output
    assert "epochs: 2" in result.output


def test_bad_override_exits_2() -> None:
    result = runner.invoke(app, ["config", "--set", "train.nope=2"])
    assert result.exit_code == 2
