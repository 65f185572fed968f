"""Offline defaults are set in one place and never override what the user exported."""

from __future__ import annotations

import os

from eno_hf.env import OFFLINE_DEFAULTS, apply_offline_defaults


def test_offline_defaults_applied(monkeypatch, tmp_path) -> None:
    for key in OFFLINE_DEFAULTS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("PREFECT_HOME", raising=False)
    apply_offline_defaults(home=tmp_path)
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert os.environ["HF_DATASETS_OFFLINE"] == "1"
    assert os.environ["TRANSFORMERS_OFFLINE"] == "1"
    assert os.environ["CLEARML_OFFLINE_MODE"] == "1"
    assert os.environ["PREFECT_HOME"] == str(tmp_path / "prefect")


def test_state_folders_created_with_parents(monkeypatch, tmp_path) -> None:
    """A fresh machine has no ~/.eno: Prefect's own parent-less mkdir would fail, so eno creates
    PREFECT_HOME and the ClearML cache (parents included) when it sets the defaults."""
    monkeypatch.delenv("PREFECT_HOME", raising=False)
    monkeypatch.delenv("CLEARML_CACHE_DIR", raising=False)
    home = tmp_path / "fresh-home" / ".eno"
    assert not home.parent.exists()
    apply_offline_defaults(home=home)
    assert (home / "prefect").is_dir()
    assert (home / "clearml-cache").is_dir()


def test_user_values_win(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("CLEARML_OFFLINE_MODE", "0")
    mine = tmp_path / "somewhere" / "deeper"
    monkeypatch.setenv("PREFECT_HOME", str(mine))
    apply_offline_defaults(home=tmp_path)
    assert os.environ["CLEARML_OFFLINE_MODE"] == "0"
    assert os.environ["PREFECT_HOME"] == str(mine)
    assert mine.is_dir()  # the user's folder is created too (Prefect would not create its parents)
