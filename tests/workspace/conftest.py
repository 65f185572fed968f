"""Fixtures for workspace tests: settings on a temporary data root."""

from __future__ import annotations

import pytest

from eno_hf.config import load_config


@pytest.fixture
def make_settings(tmp_path):
    """``make_settings(*overrides)`` → Settings from configs/workspace.yaml without its import
    sources, data root under tmp_path, one worker (tests stay light on the shared 2 cores)."""
    def make(*overrides: str, sources: bool = False):
        sets = [f"paths.data_root={tmp_path / 'data'}", "workspace.num_workers=1", "dataset.num_workers=1",
                "workspace.dataset_id=t"]
        s = load_config("configs/workspace.yaml", sets + list(overrides))
        if not sources:
            s.workspace.sources = {}
        return s
    return make
