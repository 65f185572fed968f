"""Prefect flow ``eno-train``: train a model on a built dataset version.

A thin wrapper over ``eno_hf.training.train.train_model`` (all logic lives in the library)::

    python -m flows.train --dataset eno-data/datasets/4q/v1 --config configs/small.yaml \\
        --out eno-data/runs/my-run --set train.epochs=3

With ``registry.clearml`` on, the run is tracked in a ClearML task (offline session by default):
settings as parameters, per-epoch eval metrics and training losses as scalars
(``eno_hf.registry.clearml.ClearMLCallback``). Parameters are paths and strings only.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import eno_hf  # noqa: F401  (offline env defaults before Prefect reads its settings)
from prefect import flow

from eno_hf.config import load_config


@flow(name="eno-train", log_prints=True)
def train(dataset_path: str, output_dir: str | None = None, config: str | None = None,
          overrides: list[str] | None = None) -> dict[str, Any]:
    """Train on the dataset saved at ``dataset_path`` (``DatasetDict.save_to_disk`` output).

    Returns ``{"model_dir", "best_metric", "score", "clearml_session"}`` (JSON-safe); the model is
    saved in ``{output_dir}/model``.
    """
    from datasets import load_from_disk

    from eno_hf.registry.clearml import ClearMLCallback, make_tracker
    from eno_hf.training.train import train_model

    settings = load_config(config, overrides)
    reg = settings.registry
    with make_tracker(reg.clearml, reg.clearml_project, f"train-{reg.model_name}", reg.clearml_offline) as tracker:
        tracker.log_params(settings.model_dump(mode="json"))
        result = train_model(settings, load_from_disk(dataset_path), output_dir=output_dir,
                             callbacks=[ClearMLCallback(tracker)])
        session = tracker.offline_session_path
    score = result.metrics.get("score")
    print(f"model saved to {result.model_dir} (validation score {score})")
    return {
        "model_dir": str(result.model_dir),
        "best_metric": result.best_metric,
        "score": None if score is None or math.isnan(score) else float(score),
        "clearml_session": str(session) if session else None,
    }


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - CLI shim
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True, help="dataset version directory (save_to_disk)")
    ap.add_argument("--out", default=None, help="run folder (checkpoints + model/)")
    ap.add_argument("--config", default=None)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args(argv)
    print(json.dumps(train(args.dataset, args.out, args.config, args.overrides), indent=2))


if __name__ == "__main__":  # pragma: no cover
    main()
