"""Prefect flow ``eno-register``: copy a trained model into the local hub (and ClearML).

A thin wrapper over ``eno_hf.registry.hub.register`` and ``eno_hf.registry.clearml.Tracker``::

    python -m flows.register --model eno-data/runs/my-run/model --config configs/small.yaml

``metrics.json`` next to / inside the model directory, if present, is stored in ``registry.json``.
Parameters are paths and strings only.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import eno_hf  # noqa: F401  (offline env defaults before Prefect reads its settings)
from prefect import flow

from eno_hf.config import load_config


@flow(name="eno-register", log_prints=True)
def register(model_dir: str, name: str | None = None, config: str | None = None,
             overrides: list[str] | None = None, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """Register ``model_dir`` as ``{hub}/{name}/v{N}`` (``name`` default ``registry.model_name``).

    Returns ``{"version_dir", "name", "clearml_session"}``.
    """
    from eno_hf.registry.clearml import make_tracker
    from eno_hf.registry.hub import register as hub_register

    settings = load_config(config, overrides)
    reg = settings.registry
    name = name or reg.model_name
    meta = dict(metadata or {})
    metrics_file = Path(model_dir) / "metrics.json"
    if "metrics" not in meta and metrics_file.is_file():
        meta["metrics"] = json.loads(metrics_file.read_text(encoding="utf-8"))
    version_dir = hub_register(model_dir, settings.paths.hub(), name, meta)
    with make_tracker(reg.clearml, reg.clearml_project, f"register-{name}", reg.clearml_offline) as tracker:
        tracker.log_params({"name": name, "version": version_dir.name, "source": str(model_dir)}, name="registry")
        tracker.register_model(version_dir, name=name)
        session = tracker.offline_session_path
    print(f"registered {name}@{version_dir.name}: {version_dir}")
    return {"version_dir": str(version_dir), "name": name,
            "clearml_session": str(session) if session else None}


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - CLI shim
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="trained model directory")
    ap.add_argument("--name", default=None)
    ap.add_argument("--config", default=None)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args(argv)
    print(json.dumps(register(args.model, args.name, args.config, args.overrides), indent=2))


if __name__ == "__main__":  # pragma: no cover
    main()
