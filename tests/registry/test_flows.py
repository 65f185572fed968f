"""flows.register over the hub (flow body via ``.fn``: no Prefect server needed)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("prefect")


def test_register_flow_body(tmp_path):
    from flows.register import register

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "metrics.json").write_text(json.dumps({"score": 0.8}))
    overrides = [f"paths.hub_dir={tmp_path / 'hub'}", "registry.clearml=false"]
    out = register.fn(str(model), name="tiny", overrides=overrides)
    assert out["version_dir"] == str(tmp_path / "hub" / "tiny" / "v1") and out["clearml_session"] is None
    info = json.loads((tmp_path / "hub" / "tiny" / "v1" / "registry.json").read_text())
    assert info["metadata"]["metrics"]["score"] == 0.8
    assert register.fn(str(model), name="tiny", overrides=overrides)["version_dir"].endswith("v2")
