"""Prefect flow ``eno-evaluate-model``: evaluate a trained model on a built dataset version.

A thin wrapper over ``eno_hf.evaluation.run.evaluate_model`` (all logic lives in the library)::

    python -m flows.evaluate --model runs/eno-tagger-abc/model --dataset eno-data/datasets/4q/v1 \\
        --config configs/small.yaml --out eval/

Parameters are paths and strings only (Prefect records parameters; never pass arrays).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import eno_hf  # noqa: F401  (offline env defaults before Prefect reads its settings)
from prefect import flow

from eno_hf.config import load_config


@flow(name="eno-evaluate-model", log_prints=True)
def evaluate(model_dir: str, dataset_path: str, out_dir: str, config: str | None = None,
             overrides: list[str] | None = None) -> dict[str, Any]:
    """Evaluate ``model_dir`` on the dataset saved at ``dataset_path`` (``DatasetDict.save_to_disk``
    output); writes the report to ``out_dir`` and returns the test metrics (JSON-safe)."""
    from datasets import load_from_disk

    from eno_hf.evaluation.run import evaluate_model

    settings = load_config(config, overrides)
    metrics = evaluate_model(Path(model_dir), load_from_disk(dataset_path), Path(out_dir), settings)
    print(f"evaluation written to {out_dir} (score {metrics.get('score')})")
    return metrics


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - CLI shim
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="trained model directory")
    ap.add_argument("--dataset", required=True, help="dataset version directory (save_to_disk)")
    ap.add_argument("--out", required=True, help="report folder")
    ap.add_argument("--config", default=None)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args(argv)
    print(json.dumps(evaluate(args.model, args.dataset, args.out, args.config, args.overrides),
                     indent=2))


if __name__ == "__main__":  # pragma: no cover
    main()
