"""The main job as plain functions: dataset → baselines → train → evaluate → register → tag.

Each stage is a function of ``Settings`` (plus the previous stage's output) that writes under
``{data_root}`` and can be skipped when its inputs are unchanged: a stage's cache key is a hash
of the settings it depends on and the upstream version, and a finished stage leaves a
``stage.json`` beside its outputs. ``flows/pipeline.py`` runs the same functions as Prefect
subflows; ``eno run`` runs that flow (or these functions directly with ``--no-prefect``).

Layout under ``data_root``::

    datasets/{name}/{version}/        DatasetDict + README.md + qc_report.json   (eno_hf.data.build)
    runs/{run_id}/model/              trained model (save_pretrained, LoRA merged)
    runs/{run_id}/eval/               metrics.json, per-tag CSV, PNG plots
    runs/{run_id}/baselines.json      label prior + feature probe on the same split
    runs/{run_id}/tags.jsonl          tags of files never seen in training
    hub/{model_name}/{version}/       registered model (+ model card)
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eno_hf.config import Settings


@dataclass
class RunResult:
    """What the main job produced (all paths absolute)."""

    dataset: str
    dataset_version: str
    run_dir: str
    model: str
    registered: str | None
    eval_dir: str
    metrics: dict[str, Any]
    baselines: dict[str, Any] = field(default_factory=dict)
    tags: str | None = None
    clearml: str | None = None
    cached: dict[str, bool] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _hash(obj: Any, length: int = 12) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:length]


def run_id(settings: Settings, dataset_version: str) -> str:
    """Stable id of a training run: model + train settings + dataset version."""
    key = {
        "dataset": dataset_version,
        "model": settings.model.model_dump(mode="json"),
        "train": settings.train.model_dump(mode="json", exclude={"output_dir", "resume", "num_workers"}),
    }
    return f"{settings.registry.model_name}-{_hash(key, 10)}"


def _done(path: Path) -> dict[str, Any] | None:
    marker = path / "stage.json"
    if marker.is_file():
        return json.loads(marker.read_text())
    return None


def _mark_done(path: Path, info: dict[str, Any]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    tmp = path / "stage.json.tmp"
    tmp.write_text(json.dumps({**info, "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=2,
                              default=str))
    tmp.replace(path / "stage.json")


# ----------------------------------------------------------------------------- stages
def stage_dataset(settings: Settings, progress: bool = True, map_fn=None):
    """Build (or reuse) the dataset. Returns ``eno_hf.data.build.BuildResult``."""
    from eno_hf.data.build import build_dataset

    return build_dataset(settings, progress=progress, map_fn=map_fn)


def stage_baselines(settings: Settings, dataset, run_dir: Path) -> dict[str, Any]:
    """Label-prior and feature-probe baselines on the same splits; cached in ``baselines.json``."""
    out = run_dir / "baselines.json"
    if out.is_file():
        return json.loads(out.read_text())
    from eno_hf.evaluation.baselines import feature_probe_baseline, label_prior_baseline

    heads = head_specs(settings, dataset)
    results = {
        "label_prior": label_prior_baseline(dataset["train"], dataset[settings.evaluate.split], heads),
        "feature_probe": feature_probe_baseline(
            dataset["train"], dataset["validation"], dataset[settings.evaluate.split], heads
        ),
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=_json_default))
    return results


def stage_train(settings: Settings, dataset, run_dir: Path) -> tuple[Path, bool]:
    """Train (or reuse) the model. Returns (model_dir, cached)."""
    model_dir = run_dir / "model"
    if _done(model_dir):
        return model_dir, True
    from eno_hf.registry.clearml import ClearMLCallback, make_tracker
    from eno_hf.training.train import train_model

    # One ClearML task per training run: settings + per-epoch train/eval scalars (offline by default).
    with make_tracker(settings.registry.clearml, settings.registry.clearml_project,
                      f"{settings.registry.model_name}-train",
                      offline=settings.registry.clearml_offline) as tracker:
        tracker.log_params(settings.model_dump(mode="json"))
        result = train_model(settings, dataset, output_dir=run_dir / "checkpoints",
                             callbacks=[ClearMLCallback(tracker)])
    src = Path(result.model_dir)
    if src.resolve() != model_dir.resolve():
        import shutil

        if model_dir.exists():
            shutil.rmtree(model_dir)
        shutil.copytree(src, model_dir)
    _mark_done(model_dir, {"best_metric": getattr(result, "best_metric", None)})
    return model_dir, False


def stage_evaluate(settings: Settings, model_dir: Path, dataset, run_dir: Path) -> tuple[dict, bool]:
    """Evaluate on the test split (thresholds tuned on validation). Returns (metrics, cached)."""
    eval_dir = run_dir / "eval"
    if _done(eval_dir) and (eval_dir / "metrics.json").is_file():
        return json.loads((eval_dir / "metrics.json").read_text()), True
    from eno_hf.evaluation.run import evaluate_model

    metrics = evaluate_model(model_dir, dataset, eval_dir, settings)
    _mark_done(eval_dir, {})
    return metrics, False


def stage_register(settings: Settings, model_dir: Path, metrics: dict, baselines: dict,
                   dataset_info: dict[str, Any]) -> tuple[Path, str | None]:
    """Write the model card, copy into the local hub, log to ClearML. Returns (hub dir, clearml path)."""
    from eno_hf.evaluation.model_card import write_model_card
    from eno_hf.registry.hub import register

    write_model_card(model_dir, settings.model_dump(mode="json"), metrics, baselines, dataset_info)
    hub_dir = register(model_dir, settings.paths.hub(), settings.registry.model_name,
                       {"metrics": _summary(metrics), "dataset": dataset_info})
    clearml_path = None
    if settings.registry.clearml:
        from eno_hf.registry.clearml import Tracker

        with Tracker(settings.registry.clearml_project, f"{settings.registry.model_name}",
                     offline=settings.registry.clearml_offline) as tracker:
            tracker.log_params(settings.model_dump(mode="json"))
            tracker.log_scalars(0, _flat_scalars(metrics))
            tracker.register_model(hub_dir)
            clearml_path = str(getattr(tracker, "offline_session_path", None) or "")
    return Path(hub_dir), clearml_path or None


def stage_tag(settings: Settings, model_dir: Path, run_dir: Path) -> Path | None:
    """Tag ``run.tag_files`` (never seen in training) into ``tags.jsonl``."""
    if not settings.run.tag_files:
        return None
    from eno_hf.inference.tag import tag_paths, write_jsonl

    out = run_dir / "tags.jsonl"
    records = list(tag_paths([Path(p) for p in settings.run.tag_files], model_dir))
    write_jsonl(records, out)
    return out


# ----------------------------------------------------------------------------- helpers
def head_specs(settings: Settings, dataset) -> list[dict[str, Any]]:
    """Heads with their label vocabularies read from the dataset features."""
    feats = dataset["train"].features
    heads = []
    for h in settings.model.heads:
        col = h.column or h.name
        spec: dict[str, Any] = {"name": h.name, "kind": h.kind, "column": col, "weight": h.weight}
        if h.kind == "multilabel":
            spec["labels"] = list(feats[col].feature.names)
        elif h.kind == "singlelabel":
            spec["labels"] = list(feats[col].names)
        heads.append(spec)
    return heads


def _json_default(o: Any) -> Any:
    try:
        import numpy as np

        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, np.generic):
            return o.item()
    except ImportError:  # pragma: no cover
        pass
    return str(o)


def _summary(metrics: dict[str, Any]) -> dict[str, float]:
    return _flat_scalars(metrics)


def _flat_scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """Headline scalar metrics flattened to ``head/metric`` keys (``evaluation.metrics``)."""
    from eno_hf.evaluation.metrics import flatten_metrics

    return flatten_metrics(metrics)


def run_pipeline(settings: Settings, progress: bool = True) -> RunResult:
    """Run the main job end to end without Prefect (``flows/pipeline.py`` wraps the same stages)."""
    built = stage_dataset(settings, progress=progress)
    return finish_pipeline(settings, built)


def finish_pipeline(settings: Settings, built) -> RunResult:
    """All stages after the dataset build (shared by the plain and the Prefect path)."""
    data_root = Path(settings.paths.data_root).resolve()
    dataset = built.dataset
    rid = run_id(settings, built.version)
    run_dir = data_root / "runs" / rid
    baselines = stage_baselines(settings, dataset, run_dir) if settings.run.baselines else {}
    model_dir, train_cached = stage_train(settings, dataset, run_dir)
    metrics, eval_cached = stage_evaluate(settings, model_dir, dataset, run_dir)
    dataset_info = {"name": settings.dataset.name, "version": built.version, "path": str(built.path)}
    hub_dir, clearml_path = stage_register(settings, model_dir, metrics, baselines, dataset_info)
    tags = stage_tag(settings, model_dir, run_dir)
    return RunResult(
        dataset=str(Path(built.path).resolve()), dataset_version=built.version,
        run_dir=str(run_dir), model=str(model_dir.resolve()), registered=str(hub_dir),
        eval_dir=str((run_dir / "eval").resolve()), metrics=metrics, baselines=baselines,
        tags=str(tags) if tags else None, clearml=clearml_path,
        cached={"dataset": bool(built.cache_hit), "train": train_cached, "evaluate": eval_cached},
    )
