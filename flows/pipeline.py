"""Prefect flow ``eno-pipeline``: the main job, each stage a subflow over ``eno_hf.pipeline``.

Run locally (ephemeral Prefect server, no setup)::

    python -m flows.pipeline --config configs/small.yaml

or through a deployment (``prefect.yaml``)::

    prefect deployment run 'eno-pipeline/local'
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import eno_hf  # noqa: F401  (offline env defaults before Prefect reads its settings)
from prefect import flow, get_run_logger

from eno_hf import pipeline as P
from eno_hf.config import load_config


def _open(dataset_path: str):
    """Subflows pass dataset *paths* (Prefect records parameters; never pass arrays)."""
    from datasets import load_from_disk

    return load_from_disk(dataset_path)


@flow(name="eno-dataset", log_prints=True)
def dataset_subflow(config: str, overrides: list[str]) -> dict[str, Any]:
    """Build or reuse the dataset; returns ``{path, version, cache_hit}``."""
    try:
        from flows.build import build_dataset_flow
    except ImportError:  # fall back to the plain library call
        built = P.stage_dataset(load_config(config, overrides))
    else:
        built = build_dataset_flow(config=config, overrides=overrides)
    return {"path": str(Path(built.path).resolve()), "version": built.version,
            "cache_hit": bool(built.cache_hit)}


@flow(name="eno-baselines")
def baselines_subflow(config: str, overrides: list[str], dataset_path: str, run_dir: str) -> dict:
    return P.stage_baselines(load_config(config, overrides), _open(dataset_path), Path(run_dir))


@flow(name="eno-train")
def train_subflow(config: str, overrides: list[str], dataset_path: str, run_dir: str) -> tuple[str, bool]:
    model_dir, cached = P.stage_train(load_config(config, overrides), _open(dataset_path), Path(run_dir))
    return str(model_dir), cached


@flow(name="eno-evaluate")
def evaluate_subflow(config: str, overrides: list[str], model_dir: str, dataset_path: str, run_dir: str):
    return P.stage_evaluate(load_config(config, overrides), Path(model_dir), _open(dataset_path),
                            Path(run_dir))


@flow(name="eno-register")
def register_subflow(config: str, overrides: list[str], model_dir: str, metrics: dict,
                     baselines: dict, dataset_info: dict) -> tuple[str, str | None]:
    hub_dir, clearml_path = P.stage_register(load_config(config, overrides), Path(model_dir),
                                             metrics, baselines, dataset_info)
    return str(hub_dir), clearml_path


@flow(name="eno-tag")
def tag_subflow(config: str, overrides: list[str], model_dir: str, run_dir: str) -> str | None:
    out = P.stage_tag(load_config(config, overrides), Path(model_dir), Path(run_dir))
    return str(out) if out else None


@flow(name="eno-pipeline", log_prints=True, validate_parameters=False)
def eno_pipeline(config: str = "configs/small.yaml", overrides: list[str] | None = None) -> dict[str, Any]:
    """Ingest → condition → dataset → baselines → train → evaluate → register → tag.

    Args:
        config: YAML config path (relative to the cwd or ``configs/``).
        overrides: ``key.path=value`` strings applied on top.

    Returns:
        ``RunResult.to_dict()``: paths of dataset, model, registered model, evaluation, tags,
        the test metrics and the baselines.
    """
    overrides = list(overrides or [])
    settings = load_config(config, overrides)
    logger = get_run_logger()
    built = dataset_subflow(config, overrides)
    rid = P.run_id(settings, built["version"])
    run_dir = Path(settings.paths.data_root).resolve() / "runs" / rid
    baselines = baselines_subflow(config, overrides, built["path"], str(run_dir)) if settings.run.baselines else {}
    model_dir, train_cached = train_subflow(config, overrides, built["path"], str(run_dir))
    metrics, eval_cached = evaluate_subflow(config, overrides, model_dir, built["path"], str(run_dir))
    dataset_info = {"name": settings.dataset.name, "version": built["version"], "path": str(built["path"])}
    hub_dir, clearml_path = register_subflow(config, overrides, model_dir, metrics, baselines, dataset_info)
    tags = tag_subflow(config, overrides, model_dir, str(run_dir))
    result = P.RunResult(
        dataset=str(Path(built["path"]).resolve()), dataset_version=built["version"], run_dir=str(run_dir),
        model=model_dir, registered=hub_dir, eval_dir=str(run_dir / "eval"), metrics=metrics,
        baselines=baselines, tags=tags, clearml=clearml_path,
        cached={"dataset": bool(built["cache_hit"]), "train": train_cached, "evaluate": eval_cached},
    )
    logger.info("model: %s", result.model)
    return result.to_dict()


if __name__ == "__main__":  # pragma: no cover
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default="configs/small.yaml")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    print(json.dumps(eno_pipeline(args.config, args.overrides), default=str))
