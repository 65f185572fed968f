"""Registering a trained model: the one function behind ``eno register``, the pipeline's register
stage and the ``eno-register`` flow.

``register_model`` writes the model card (when test metrics are known), copies the model into the
local hub as ``{hub}/{name}/v{N}`` (``eno_hf.registry.hub.register``) and, with
``registry.clearml`` on, records a ClearML task (offline session by default) with the settings, the
headline metrics as scalars and the registered directory as the ``model`` artifact
(``eno_hf.registry.clearml.Tracker``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eno_hf.config import Settings
from eno_hf.utils import faults
from eno_hf.utils.io import to_jsonable


def _nan_for_none(obj: Any) -> Any:
    """Metrics read back from strict JSON hold ``None`` where a metric was undefined (NaN), e.g. a
    ROC-AUC on a test split without positives; ``flatten_metrics`` wants floats."""
    if isinstance(obj, Mapping):
        return {k: _nan_for_none(v) for k, v in obj.items()}
    return float("nan") if obj is None else obj


@dataclass
class Registration:
    """Where a model was registered: ``version_dir`` (``{hub}/{name}/v{N}``), ``name``, and the
    ClearML offline session folder (``None`` when tracking is off or online)."""

    version_dir: Path
    name: str
    clearml_session: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"version_dir": str(self.version_dir), "name": self.name,
                "clearml_session": self.clearml_session}


def recorded_run_outputs(model_dir: str | Path, hub_dir: str | Path,
                         dataset_path: str | Path | None = None) -> dict[str, Any]:
    """What ``eno run`` recorded about a model it trained, for registering it again by hand
    (``eno register --model {run}/model``, e.g. after ``eno cv`` so the card gains its
    cross-validated figures).

    Args:
        model_dir: the model directory; in a run folder it is ``{run}/model``.
        hub_dir: the local hub, searched for an earlier registration of the same directory.
        dataset_path: the saved training dataset (``{data_root}/datasets/{name}/{version}``);
            default: the dataset recorded by the latest registration of ``model_dir``.

    Raises:
        FileNotFoundError: ``dataset_path`` is given but is not a directory.

    Returns:
        ``{"metrics", "baselines", "dataset_info"}``, each ``None`` when not found: test metrics
        from ``{run}/eval/metrics.json``, baselines from ``{run}/baselines.json``, dataset
        ``{name, version, path}``.
    """
    from eno_hf.registry.hub import list_models

    model_dir = Path(model_dir).resolve()
    run = model_dir.parent

    def read(path: Path) -> Any:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    dataset_info = None
    if dataset_path is not None:
        ds = Path(dataset_path).resolve()
        if not ds.is_dir():
            raise FileNotFoundError(f"{ds}: no saved dataset there (--dataset names {{data_root}}/datasets/{{name}}/{{version}})")
        dataset_info = {"name": ds.parent.name, "version": ds.name, "path": str(ds)}
    else:
        earlier = [m for m in list_models(hub_dir)
                   if m.get("source") == str(model_dir) and (m.get("metadata") or {}).get("dataset")]
        if earlier:
            dataset_info = dict(max(earlier, key=lambda m: m.get("created", ""))["metadata"]["dataset"])
    return {"metrics": read(run / "eval" / "metrics.json"), "baselines": read(run / "baselines.json"),
            "dataset_info": dataset_info}


def register_model(settings: Settings, model_dir: str | Path, *, name: str | None = None,
                   metrics: Mapping[str, Any] | None = None,
                   baselines: Mapping[str, Any] | None = None,
                   dataset_info: Mapping[str, Any] | None = None,
                   metadata: Mapping[str, Any] | None = None) -> Registration:
    """Register ``model_dir`` in the hub (and ClearML).

    Args:
        settings: ``paths.hub_dir`` and ``registry`` (model name, ClearML project/offline) are used;
            the whole settings are stored in the card and the ClearML task.
        model_dir: a saved model directory (``config.json`` inside).
        name: hub name (default ``registry.model_name``).
        metrics: test metrics (``evaluate_heads`` output); default ``{model_dir}/metrics.json``
            when that file exists. Stored flattened (``head/metric``) in ``registry.json``.
        baselines: baseline metrics for the card.
        dataset_info: ``{name, version, path}`` of the training dataset, stored in
            ``registry.json`` and the card.
        metadata: further JSON facts stored in ``registry.json`` as given, after (and over) the
            flattened ``metrics``: e.g. the performance job's per-protocol summary and embedder.

    Returns:
        ``Registration``.

    Raises:
        FileNotFoundError: ``model_dir`` is not a saved model directory.
        ValueError: invalid ``name``.
        OSError: copying into the hub failed (retried by the Prefect runner); the fault-injection
            point ``register`` (``eno_hf.utils.faults``) raises ``faults.TransientIOError`` here.
    """
    from eno_hf.metrics import flatten_metrics
    from eno_hf.registry.hub import register as hub_register

    model_dir = Path(model_dir)
    reg = settings.registry
    name = name or reg.model_name
    if metrics is None and (model_dir / "metrics.json").is_file():
        metrics = json.loads((model_dir / "metrics.json").read_text(encoding="utf-8"))
    faults.inject("register")
    flat = to_jsonable(flatten_metrics(_nan_for_none(metrics))) if metrics else {}
    if metrics and dataset_info:
        from eno_hf.evaluation.model_card import write_model_card

        from eno_hf.evaluation.cv import report_dir

        cv_path = report_dir(settings.paths.data_root, str(dataset_info.get("name")),
                             str(dataset_info.get("version"))) / "cv_report.json"
        cv_report = json.loads(cv_path.read_text(encoding="utf-8")) if cv_path.is_file() else None
        write_model_card(model_dir, settings.model_dump(mode="json"), metrics, baselines or {}, dataset_info,
                         cv_report=cv_report)
    meta: dict[str, Any] = {"metrics": flat}
    if dataset_info:
        meta["dataset"] = dict(dataset_info)
    if metadata:
        meta.update(to_jsonable(dict(metadata)))
    version_dir = hub_register(model_dir, settings.paths.hub(), name, meta)
    session = None
    if reg.clearml:
        from eno_hf.registry.clearml import Tracker

        with Tracker(reg.clearml_project, f"register-{name}", offline=reg.clearml_offline) as tracker:
            tracker.log_params(settings.model_dump(mode="json"))
            if dataset_info:  # lineage: model <- dataset version + config
                tracker.log_params({f"dataset_{k}": str(v) for k, v in dataset_info.items()}, name="lineage")
            tracker.log_params({"name": name, "version": version_dir.name, "source": str(model_dir)},
                               name="registry")
            tracker.log_scalars(0, flat)
            tracker.register_model(version_dir, name=name)
            session = str(tracker.offline_session_path) if tracker.offline_session_path else None
    return Registration(Path(version_dir), name, session)
