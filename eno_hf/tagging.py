"""The tagging job (the main job), defined once: an ordered tuple of stages run directly or
through an orchestrator (the job model of ``eno_hf.jobs``).

``STAGES`` (``TAGGING.stages``) is the single definition of the tagging job::

    dataset → embed → baselines → train → evaluate → register → tag

Each ``Stage`` is a plain function ``fn(settings, state) -> dict`` of ``Settings`` and the
``PipelineState`` the earlier stages produced; it returns the state fields it sets. ``run_stages``
(``eno_hf.jobs.run_stages`` over ``TAGGING``) walks the list and hands every stage to a *runner* —
the one seam between the job and whoever runs it (the same idea as ``build_dataset(map_fn=...)``):

- ``run_directly`` (default, ``eno run --no-prefect``, ``eno build/train/evaluate/register``) calls
  the function;
- ``eno_hf.flows.runner.prefect_runner`` (``eno run``, every Prefect flow and deployment) wraps it in a
  Prefect task with retries/timeouts and, for GPU stages, a slot of the global concurrency limit
  ``gpu``. This module never imports Prefect.

A stage's ``resource`` (``"cpu"``, ``"gpu"`` or ``"io"``) tells the runner how to schedule it.

Caching, one mechanism per level:

- per file: ``{data_root}/cache/segments/{hash[:2]}/*.arrow`` (``eno_hf.data.build``);
- per dataset: the content-addressed version folder ``datasets/{name}/{version}/`` (+ ``LATEST``);
- per later stage: a ``stage.json`` marker beside the stage's outputs holding the hash of its
  inputs (``json_hash``; ``eno_hf.jobs.read_marker`` / ``write_marker``); a marker whose key differs (other model, other dataset version) is
  ignored and the stage runs again.

Layout under ``data_root``::

    datasets/{name}/{version}/        DatasetDict + README.md + qc_report.json   (eno_hf.data.build)
    embeddings/{name}/{version}/{key}/ companion embeddings by segment_id (eno_hf.embeddings.companion)
    runs/{run_id}/baselines.json      label prior + feature probe on the same split
    runs/{run_id}/model/              trained model (save_pretrained, LoRA merged)
    runs/{run_id}/eval/               metrics.json, per-tag CSV, PNG plots
    runs/{run_id}/register/stage.json which hub version this run's model became
    runs/{run_id}/tags.jsonl          tags of files never seen in training
    hub/{model_name}/v{N}/            registered model (+ model card)
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eno_hf import jobs
from eno_hf.config import Settings
from eno_hf.data.sources import load_recordings
from eno_hf.jobs import FieldState, Job, Resource, Stage, StageRunner, read_marker, run_directly, write_marker
from eno_hf.models.heads import head_specs_from_features
from eno_hf.registry.clearml_dataset import register_dataset_version
from eno_hf.registry.register import register_model
from eno_hf.utils.io import atomic_write_json, file_sha256, json_hash

__all__ = ["PipelineState", "RunResult", "Resource", "STAGES", "Stage", "StageRunner", "TAGGING", "head_specs",
           "run_directly", "run_id", "run_pipeline", "run_stages", "select_stages", "write_manifest"]

log = logging.getLogger(__name__)


@dataclass
class PipelineState(FieldState):
    """What the stages produced so far (in memory; paths absolute).

    Run options (set by the caller, read by stages): ``progress`` (False hides the progress of
    long stages, otherwise shown through ``eno_hf.utils.progress``: a bar on a terminal, INFO lines
    elsewhere, nothing with ``eno -q``) and ``map_fn``
    (how the dataset build maps per-file work, see ``eno_hf.data.build.build_dataset``).
    A caller may preset outputs to start mid-way, e.g. ``model_dir`` to evaluate or register a
    model trained elsewhere.
    """

    progress: bool = True
    map_fn: Callable[..., Any] | None = None
    dataset_path: Path | None = None
    dataset_version: str | None = None
    dataset: Any = None
    qc_report: dict[str, Any] | None = None
    embeddings: Path | None = None
    run_dir: Path | None = None
    baselines: dict[str, Any] = field(default_factory=dict)
    model_dir: Path | None = None
    metrics: dict[str, Any] | None = None
    eval_dir: Path | None = None
    registered: Path | None = None
    clearml: str | None = None
    tags: Path | None = None
    cached: dict[str, bool] = field(default_factory=dict)

    state_label = "pipeline state"

    @staticmethod
    def run_label(settings: Settings, changes: dict[str, Any]) -> str | None:
        """What a stage's ``changes`` tell about the run for its name: ``{dataset}@{version}`` once
        the dataset stage knows the version (``prefect_runner`` renames the flow run), else None."""
        version = changes.get("dataset_version")
        return f"{settings.dataset.name}@{version}" if version else None


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

    @classmethod
    def from_state(cls, state: PipelineState) -> RunResult:
        """The result of a full run.

        Raises:
            RuntimeError: a stage output is missing (the run did not reach evaluate).
        """
        state.require("dataset_path", "dataset_version", "run_dir", "model_dir", "metrics", "eval_dir")
        return cls(dataset=str(state.dataset_path), dataset_version=str(state.dataset_version),
                   run_dir=str(state.run_dir), model=str(state.model_dir),
                   registered=str(state.registered) if state.registered else None,
                   eval_dir=str(state.eval_dir), metrics=state.metrics, baselines=state.baselines,
                   tags=str(state.tags) if state.tags else None, clearml=state.clearml,
                   cached=dict(state.cached))


def run_id(settings: Settings, dataset_version: str) -> str:
    """Stable id of a training run: model + train settings + dataset version."""
    key = {
        "dataset": dataset_version,
        "model": settings.model.model_dump(mode="json"),
        "train": settings.train.model_dump(mode="json", exclude={"output_dir", "resume", "num_workers"}),
    }
    if settings.embed.use_for_training:  # the model's input is the companion embedding
        key["embed"] = settings.embed.model_dump(mode="json", exclude={"device", "batch_size", "shard_size"})
    return f"{settings.registry.model_name}-{json_hash(key, 10)}"


# ----------------------------------------------------------------------------- stage markers
def _done(path: Path, key: str) -> dict[str, Any] | None:
    """The ``stage.json`` marker in the folder ``path`` when it was written for inputs ``key``, else None."""
    return read_marker(path / "stage.json", key)


def _mark_done(path: Path, key: str, info: dict[str, Any] | None = None) -> None:
    write_marker(path / "stage.json", key, info)


def _model_key(model_dir: Path) -> list[Any]:
    """Identity of a model directory: its path + (name, size, mtime) of its weight files (cheap, no
    hashing). ``config.json`` and ``README.md`` are left out: evaluate writes thresholds into the
    former and register the model card into the latter."""
    files = sorted(p for p in model_dir.rglob("*") if p.is_file() and p.suffix in {".safetensors", ".bin", ".pt"})
    return [str(model_dir.resolve())] + [(p.relative_to(model_dir).as_posix(), p.stat().st_size,
                                          p.stat().st_mtime_ns) for p in files]


# ----------------------------------------------------------------------------- stages
def stage_dataset(settings: Settings, state: PipelineState) -> dict[str, Any]:
    """Build (or reuse) the versioned dataset (``eno_hf.data.build.build_dataset``)."""
    from eno_hf.data.build import build_dataset

    built = build_dataset(settings, progress=state.progress, map_fn=state.map_fn)
    root = Path(settings.paths.data_root).resolve()
    record = root / "clearml" / "datasets" / settings.dataset.name / f"{built.version}.json"
    if settings.registry.clearml_datasets and not record.is_file():
        register_dataset_version(built.path, settings.dataset.name, built.version, root,
                                 settings.registry.clearml_project, settings.registry.clearml_offline, record=record)
    acc, splits = built.report["accounting"], built.report.get("splits") or {}
    log.info("dataset %s@%s%s: %d inputs, %d written, %d rejected%s; %s", settings.dataset.name, built.version,
             " (reused)" if built.cache_hit else "", acc["n_inputs"], acc["n_written"], acc["n_rejected"],
             "".join(f", {k}: {v}" for k, v in sorted((built.report.get("rejected_by_reason") or {}).items())),
             ", ".join(f"{k} {v['n_recordings']} recordings / {v['n_segments']} segments" for k, v in splits.items()))
    return {"dataset_path": Path(built.path).resolve(), "dataset_version": built.version,
            "dataset": built.dataset, "qc_report": built.report,
            "run_dir": root / "runs" / run_id(settings, built.version),
            "cached": {"dataset": bool(built.cache_hit)}}


def stage_embed(settings: Settings, state: PipelineState) -> dict[str, Any]:
    """Embed every segment into the companion dataset (``eno_hf.embeddings.companion``; resumable
    by shard, reused when complete); with ``embed.use_for_training`` join its ``embedding`` column
    to every split (segments without an embedding are dropped and logged)."""
    state.require("dataset_version")
    from eno_hf.embeddings.companion import attach_embeddings, embed_dataset

    res = embed_dataset(settings, state.dataset_version)
    out: dict[str, Any] = {"embeddings": res.path.resolve(), "cached": {"embed": res.cache_hit}}
    if settings.embed.use_for_training and state.dataset is not None:
        out["dataset"], dropped = attach_embeddings(state.dataset, res.dataset)
        if dropped:
            import logging

            logging.getLogger(__name__).warning("%d segments have no embedding (see %s/rejections.jsonl): %s",
                                                len(dropped), res.path.parent, dropped[:5])
    return out


def stage_baselines(settings: Settings, state: PipelineState) -> dict[str, Any]:
    """Label-prior and feature-probe baselines on the same splits; cached in ``baselines.json``."""
    state.require("dataset", "run_dir")
    out = state.run_dir / "baselines.json"
    if out.is_file():
        return {"baselines": json.loads(out.read_text(encoding="utf-8")), "cached": {"baselines": True}}
    from eno_hf.evaluation.baselines import feature_probe_baseline, label_prior_baseline

    dataset = state.dataset
    heads = head_specs(settings, dataset)
    results = {
        "label_prior": label_prior_baseline(dataset["train"], dataset[settings.evaluate.split], heads),
        "feature_probe": feature_probe_baseline(
            dataset["train"], dataset["validation"], dataset[settings.evaluate.split], heads
        ),
    }
    atomic_write_json(out, results)
    return {"baselines": json.loads(out.read_text(encoding="utf-8")), "cached": {"baselines": False}}


def stage_train(settings: Settings, state: PipelineState) -> dict[str, Any]:
    """Train (or reuse) the model into ``{run_dir}/model`` (resumable from ``checkpoints/``)."""
    state.require("dataset", "run_dir", "dataset_version")
    model_dir = state.run_dir / "model"
    key = json_hash({"run": state.run_dir.name, "dataset": state.dataset_version})
    if _done(model_dir, key):
        log.info("model reused (same run and dataset version): %s", model_dir)
        return {"model_dir": model_dir, "cached": {"train": True}}
    from eno_hf.registry.clearml import ClearMLCallback, make_tracker
    from eno_hf.training.train import train_model

    reg = settings.registry
    # One ClearML task per training run: settings + per-epoch train/eval scalars (offline by default).
    with make_tracker(reg.clearml, reg.clearml_project, f"{reg.model_name}-train",
                      offline=reg.clearml_offline) as tracker:
        tracker.log_params(settings.model_dump(mode="json"))
        result = train_model(settings, state.dataset, output_dir=state.run_dir / "checkpoints",
                             callbacks=[ClearMLCallback(tracker)])
    if int(os.environ.get("RANK", "0")) != 0:  # `accelerate launch`: only the main process publishes
        return {"model_dir": model_dir, "cached": {"train": False}}
    src = Path(result.model_dir)
    if src.resolve() != model_dir.resolve():
        if model_dir.exists():
            shutil.rmtree(model_dir)
        shutil.copytree(src, model_dir)
    _mark_done(model_dir, key, {"best_metric": getattr(result, "best_metric", None)})
    log.info("model trained into %s (best %s: %s)", model_dir, settings.train.metric_for_best_model,
             getattr(result, "best_metric", None))
    return {"model_dir": model_dir, "cached": {"train": False}}


def _log_metrics(metrics: dict[str, Any], baselines: dict[str, Any], eval_dir: Path, reused: bool = False) -> None:
    """One INFO line of test metrics: the score beside the baselines', then each head's figures."""
    from eno_hf.metrics import flatten_metrics

    def fmt(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, (int, float)) and v == v else "–"

    flat = flatten_metrics({k: ({kk: (float("nan") if vv is None else vv) for kk, vv in v.items()}
                                if isinstance(v, dict) else (float("nan") if v is None else v))
                            for k, v in metrics.items()})
    log.info("test metrics%s: score %s (%s); %s; report in %s", " (reused)" if reused else "",
             fmt(flat.pop("score")),
             ", ".join(f"{n} {fmt((b or {}).get('score'))}" for n, b in (baselines or {}).items()) or "no baselines",
             ", ".join(f"{k} {fmt(v)}" for k, v in flat.items()), eval_dir)


def stage_evaluate(settings: Settings, state: PipelineState) -> dict[str, Any]:
    """Evaluate on the test split (thresholds tuned on validation), into ``state.eval_dir`` (default
    ``{run_dir}/eval``); cached while the model files and the dataset version are unchanged."""
    state.require("dataset", "model_dir", "dataset_version")
    eval_dir = state.eval_dir or state.run_dir / "eval"
    key = json_hash({"model": _model_key(state.model_dir), "dataset": state.dataset_version,
                     "evaluate": settings.evaluate.model_dump(mode="json")})
    if _done(eval_dir, key) and (eval_dir / "metrics.json").is_file():
        metrics = json.loads((eval_dir / "metrics.json").read_text(encoding="utf-8"))
        _log_metrics(metrics, state.baselines, eval_dir, reused=True)
        return {"metrics": metrics, "eval_dir": eval_dir, "cached": {"evaluate": True}}
    from eno_hf.evaluation.run import evaluate_model

    metrics = evaluate_model(state.model_dir, state.dataset, eval_dir, settings)
    _mark_done(eval_dir, key)
    _log_metrics(metrics, state.baselines, eval_dir)
    return {"metrics": metrics, "eval_dir": eval_dir, "cached": {"evaluate": False}}


def stage_register(settings: Settings, state: PipelineState) -> dict[str, Any]:
    """Model card + local hub + ClearML (``eno_hf.registry.register.register_model``).

    Inside a run (``state.run_dir`` set) the registration is remembered in
    ``{run_dir}/register/stage.json``: an unchanged model is not registered twice; an ``eno cv``
    report of the dataset version written (or rewritten) since counts as a change, so ``eno run``
    after ``eno cv`` registers a version whose card holds the cross-validated figures.
    """
    state.require("model_dir")
    from eno_hf.evaluation.cv import report_dir

    marker_dir = state.run_dir / "register" if state.run_dir else None
    cv_report = (report_dir(settings.paths.data_root, settings.dataset.name, str(state.dataset_version))
                 / "cv_report.json" if state.dataset_version else None)
    # an `eno cv` report written since the last registration changes the card: register again
    cv_sha = file_sha256(cv_report) if cv_report is not None and cv_report.is_file() else None
    facts: dict[str, Any] = {"model": _model_key(state.model_dir), "metrics": state.metrics}
    if cv_sha:
        facts["cv_report"] = cv_sha
    key = json_hash(facts)
    if marker_dir is not None:
        done = _done(marker_dir, key)
        if done and Path(done["version_dir"]).is_dir():
            log.info("model already registered as %s", done["version_dir"])
            return {"registered": Path(done["version_dir"]), "clearml": done.get("clearml_session"),
                    "cached": {"register": True}}
    dataset_info = ({"name": settings.dataset.name, "version": state.dataset_version,
                     "path": str(state.dataset_path)} if state.dataset_version else None)
    reg = register_model(settings, state.model_dir, metrics=state.metrics, baselines=state.baselines,
                         dataset_info=dataset_info)
    if marker_dir is not None:
        _mark_done(marker_dir, key, reg.to_dict())
    log.info("model %s registered as %s (card: %s)", state.model_dir, reg.version_dir, Path(reg.version_dir) / "README.md")
    return {"registered": reg.version_dir, "clearml": reg.clearml_session, "cached": {"register": False}}


def _files_key(paths: Sequence[str | Path]) -> list[Any]:
    """(path, size, mtime) of every file named or under a named folder (``None`` when missing)."""
    key: list[Any] = []
    for p in map(Path, paths):
        if p.is_dir():
            key.append([str(p.resolve())] + [(f.relative_to(p).as_posix(), f.stat().st_size, f.stat().st_mtime_ns)
                                             for f in sorted(p.rglob("*")) if f.is_file()])
        else:
            st = p.stat() if p.is_file() else None
            key.append((str(p.resolve()), st.st_size if st else None, st.st_mtime_ns if st else None))
    return key


def stage_tag(settings: Settings, state: PipelineState) -> dict[str, Any]:
    """Tag ``run.tag_files`` (never seen in training) into ``{run_dir}/tags.jsonl``; reused while the
    model (weights and ``config.json``, which holds the tuned thresholds) and the files are unchanged
    (marker ``{run_dir}/tag/stage.json``)."""
    state.require("model_dir", "run_dir")
    out = state.run_dir / "tags.jsonl"
    config = state.model_dir / "config.json"
    key = json_hash({"model": _model_key(state.model_dir), "files": _files_key(settings.run.tag_files),
                     "config": file_sha256(config) if config.is_file() else None})
    if _done(state.run_dir / "tag", key) and out.is_file():
        log.info("tags reused (same model and files): %s", out)
        return {"tags": out, "cached": {"tag": True}}
    from eno_hf.inference.tag import tag_paths, write_jsonl

    n = write_jsonl(tag_paths([Path(p) for p in settings.run.tag_files], state.model_dir), out)
    _mark_done(state.run_dir / "tag", key, {"n_records": n})
    log.info("tagged %d files with %s into %s", n, state.model_dir, out)
    return {"tags": out, "cached": {"tag": False}}


STAGES: tuple[Stage, ...] = (
    Stage("dataset", stage_dataset, "cpu"),
    Stage("embed", stage_embed, "gpu", enabled=lambda s: s.embed.use_for_training),
    Stage("baselines", stage_baselines, "cpu", enabled=lambda s: s.run.baselines),
    Stage("train", stage_train, "gpu"),
    Stage("evaluate", stage_evaluate, "gpu"),
    Stage("register", stage_register, "io"),
    Stage("tag", stage_tag, "gpu", enabled=lambda s: bool(s.run.tag_files)),
)
"""The tagging job's stages. Every tagging entry point (CLI, Prefect flows, deployments) runs (a
slice of) this tuple."""


def _tagging_result(settings: Settings, state: PipelineState) -> dict[str, Any]:
    return RunResult.from_state(state).to_dict()


TAGGING = Job("tagging", STAGES, PipelineState, _tagging_result)
"""The tagging job (``eno_hf.jobs.JOBS["tagging"]``); its result is ``RunResult.to_dict()``."""


def select_stages(names: Sequence[str] | None = None) -> tuple[Stage, ...]:
    """``STAGES`` restricted to ``names`` (kept in pipeline order); all of them for ``None``.

    Raises:
        ValueError: an unknown stage name.
    """
    return TAGGING.select(names)


def run_stages(settings: Settings, names: Sequence[str] | None = None, state: PipelineState | None = None,
               runner: StageRunner = run_directly) -> PipelineState:
    """The tagging job's enabled stages of ``select_stages(names)`` in order through ``runner``
    (``eno_hf.jobs.run_stages(TAGGING, ...)``).

    Args:
        settings: the configuration (passed to every stage; never re-read from YAML).
        names: stage names to run (default: all).
        state: a (possibly preset) state to continue from; a new one by default.
        runner: ``runner(stage, settings, state) -> dict`` (``run_directly``, or
            ``eno_hf.flows.runner.prefect_runner``).

    Returns:
        The final ``PipelineState``.
    """
    return jobs.run_stages(TAGGING, settings, names, state if state is not None else PipelineState(), runner)


def run_pipeline(settings: Settings, progress: bool = True, runner: StageRunner = run_directly,
                 map_fn: Callable[..., Any] | None = None) -> RunResult:
    """The whole tagging job (``STAGES``) through ``runner``. Returns its ``RunResult``."""
    state = run_stages(settings, state=PipelineState(progress=progress, map_fn=map_fn), runner=runner)
    return RunResult.from_state(state)


# ----------------------------------------------------------------------------- helpers
def head_specs(settings: Settings, dataset) -> list[Any]:
    """``settings.model.heads`` as ``HeadSpec`` s with their label vocabularies read from the
    train split's features (``eno_hf.models.heads.head_specs_from_features``)."""
    return head_specs_from_features(dataset["train"].features, settings.model.heads)


def write_manifest(settings: Settings) -> Path:
    """Ingest: read + clean the metadata of ``settings.dataset`` (no audio decoding) into
    ``{data_root}/manifests/{name}.json``: ``{dataset, n_recordings, recordings, rejected, vocab,
    dropped}``. Returns its path."""
    from eno_hf.data.labels import clean_labels

    cfg = settings.dataset
    src = load_recordings(cfg.source)
    labels = clean_labels(src.recordings, cfg.labels)
    manifest = {
        "dataset": cfg.name,
        "n_recordings": len(labels.recordings),
        "recordings": [r.to_dict() for r in labels.recordings],
        "rejected": src.rejected,
        "vocab": labels.vocab,
        "dropped": labels.dropped,
    }
    return atomic_write_json(Path(settings.paths.data_root) / "manifests" / f"{cfg.name}.json", manifest)
