"""Experiment tracking with ClearML (offline by default), and a ``transformers`` callback.

``Tracker`` wraps one ClearML ``Task``:

- ``Task.init(project, task_name, ...)`` with every automatic hook off (no framework patching,
  no argparse capture, no resource monitor, no stdout capture, no repository detection), so it
  records exactly what eno logs;
- offline mode (``Task.set_offline(True)``) unless ``offline=False``: the session is written under
  ``{CLEARML_CACHE_DIR}/offline/{task_id}/`` (+ ``.zip`` after ``close``), importable later into a
  server with ``clearml.Task.import_offline_session(path)``;
- ``register_model(dir)``: offline, the directory is stored as an artifact; online it is also
  published as a ClearML ``OutputModel`` (weights file ``model.safetensors``).

``close()`` flushes (offline ~0.05 s: reports go through a thread, not ClearML's reporting subprocess; online ~11 s); call it once per run.

``NullTracker`` has the same methods and does nothing (``registry.clearml: false``).
``ClearMLCallback`` forwards the Trainer's eval metrics and training losses to a tracker.
"""

from __future__ import annotations

import logging
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

log = logging.getLogger(__name__)

_FRAMEWORKS = ("matplotlib", "tensorflow", "tensorboard", "pytorch", "xgboost", "scikit", "fastai",
               "lightgbm", "hydra", "detect_repository", "tfdefines", "joblib", "megengine",
               "catboost", "gradio", "jsonargparse")
"""Keys of ``Task.init(auto_connect_frameworks=...)``; all switched off."""


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "/"))
        else:
            out[key] = v if isinstance(v, (int, float, str, bool)) or v is None else str(v)
    return out


def _split_name(name: str) -> tuple[str, str]:
    """``"eval/descriptors/roc_auc_macro"`` -> (title ``"eval"``, series ``"descriptors/roc_auc_macro"``)."""
    title, sep, series = name.partition("/")
    return (title, series) if sep else (name, name)


class NullTracker:
    """A tracker that records nothing (tracking disabled). Same interface as ``Tracker``."""

    offline_session_path: Path | None = None
    task: Any = None

    def __enter__(self) -> NullTracker:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def log_params(self, params: Mapping[str, Any], name: str = "settings") -> None:
        """Do nothing."""

    def log_scalars(self, epoch: int | float, scalars: Mapping[str, float]) -> None:
        """Do nothing."""

    def log_artifact(self, name: str, path: str | Path) -> None:
        """Do nothing."""

    def register_model(self, model_dir: str | Path, name: str | None = None) -> None:
        """Do nothing."""

    def close(self) -> None:
        """Do nothing."""


def _forget_foreign_master() -> None:
    """Drop an inherited ``CLEARML_PROC_MASTER_ID`` unless this process is a fork of the task's process.

    ClearML marks every process it starts a Task in with ``CLEARML_PROC_MASTER_ID=pid:task``;
    a *forked* child then reports into the parent's task and ``Task.init`` returns a stub. A
    separate ``eno`` process *launched* from such a process (a test runner, a notebook) inherits
    the variable through the environment and would silently record nothing. A fork carries the
    parent's in-memory main task (``Task._Task__main_task``); a freshly started interpreter does not.
    """
    if not (os.environ.get("CLEARML_PROC_MASTER_ID") or os.environ.get("TRAINS_PROC_MASTER_ID")):
        return
    from clearml import Task

    if getattr(Task, "_Task__main_task", None) is None:
        os.environ.pop("CLEARML_PROC_MASTER_ID", None)
        os.environ.pop("TRAINS_PROC_MASTER_ID", None)


class Tracker(NullTracker):
    """One ClearML task. Use as a context manager (``close`` on exit).

    Args:
        project: ClearML project name.
        task_name: task (experiment) name.
        offline: record into a local offline session (default). ``False`` talks to the server
            configured in ``clearml.conf`` / ``CLEARML_API_HOST`` etc., provided
            ``CLEARML_OFFLINE_MODE`` is not set (``eno_hf.env`` sets it by default; a deployment
            exports ``CLEARML_OFFLINE_MODE=0``); otherwise the session is recorded offline.
        tags: optional task tags.
        task_type: ClearML task type (``"training"``, ``"testing"``, ...).

    Attributes:
        task: the ``clearml.Task``.
        offline_session_path: offline session folder (None online); after ``close`` a ``.zip`` of
            it exists next to it.

    Raises:
        ImportError: ``clearml`` is not installed.
    """

    def __init__(self, project: str, task_name: str, offline: bool = True, tags: list[str] | None = None,
                 task_type: str = "training") -> None:
        from clearml import Task

        if offline:
            os.environ["CLEARML_OFFLINE_MODE"] = "1"
            Task.set_offline(True)
        elif Task.is_offline():
            log.warning("ClearML online tracking asked for, but CLEARML_OFFLINE_MODE is set: "
                        "recording an offline session (unset it and configure a server to go online)")
        self.offline = bool(offline or Task.is_offline())
        self._closed = False
        if self.offline:
            # report from a thread of this process, not ClearML's reporting subprocess (its default
            # on Linux, ``sdk.development.report_use_subprocess``): closing an offline task then
            # takes ~0.05 s instead of ~11 s (measured: the subprocess is waited for at its
            # flush period). Online tasks keep ClearML's default.
            from clearml.config import config_obj

            config_obj.set_overrides({"sdk": {"development": {"report_use_subprocess": False}}})
        _forget_foreign_master()
        self.task = Task.init(
            project_name=project,
            task_name=task_name,
            task_type=task_type,
            tags=tags,
            reuse_last_task_id=False,
            auto_connect_frameworks={k: False for k in _FRAMEWORKS},
            auto_connect_arg_parser=False,
            auto_resource_monitoring=False,
            auto_connect_streams=False,
        )
        folder = self.task.get_offline_mode_folder() if self.offline else None
        self.offline_session_path = Path(folder) if isinstance(folder, (str, os.PathLike)) else None

    def log_params(self, params: Mapping[str, Any], name: str = "settings") -> None:
        """Record a (nested) parameter dict under section ``name`` (flattened as ``a/b/c``)."""
        self.task.connect(_flatten(params), name=name)

    def log_scalars(self, epoch: int | float, scalars: Mapping[str, float]) -> None:
        """Report scalars at iteration ``epoch``; ``"a/b"`` names become title ``a``, series ``b``.
        Non-finite and non-numeric values are skipped."""
        logger = self.task.get_logger()
        for name, value in scalars.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                continue
            title, series = _split_name(name)
            logger.report_scalar(title=title, series=series, value=float(value), iteration=int(round(epoch)))

    def log_artifact(self, name: str, path: str | Path) -> None:
        """Store a file or folder as an artifact (a folder is zipped by ClearML).

        Raises:
            FileNotFoundError: ``path`` does not exist.
        """
        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"{p}: artifact not found")
        self.task.upload_artifact(name, artifact_object=str(p), wait_on_upload=True)

    def register_model(self, model_dir: str | Path, name: str | None = None) -> None:
        """Store a saved model directory: always as an artifact ``model``; online also as a ClearML
        ``OutputModel`` (``model.safetensors`` when present, labels from ``config.json`` ``label2id``).

        Raises:
            FileNotFoundError: ``model_dir`` does not exist.
        """
        d = Path(model_dir)
        self.log_artifact(name or "model", d)
        if self.offline:
            return
        from clearml import OutputModel

        weights = d / "model.safetensors"
        output = OutputModel(task=self.task, name=name or d.name, framework="PyTorch")
        config = d / "config.json"
        if config.is_file():
            label2id = json.loads(config.read_text(encoding="utf-8")).get("label2id") or {}
            if label2id:
                output.update_labels({str(k): int(v) for k, v in label2id.items()})
        output.update_weights(weights_filename=str(weights if weights.is_file() else d))

    def close(self) -> None:
        """Flush and close the task (offline ~0.05 s; online with ClearML's reporting subprocess
        ~11 s). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.task.close()


def make_tracker(enabled: bool, project: str, task_name: str, offline: bool = True) -> NullTracker:
    """``Tracker(project, task_name, offline)`` when ``enabled`` else ``NullTracker()``."""
    return Tracker(project, task_name, offline=offline) if enabled else NullTracker()


class ClearMLCallback(TrainerCallback):
    """Forward ``Trainer`` logs to a tracker: eval metrics (``eval_*``) at each evaluation and
    training logs (``loss``, ``loss_{head}``, ``learning_rate``), at the current epoch.

    Args:
        tracker: a ``Tracker`` or ``NullTracker``.
    """

    def __init__(self, tracker: NullTracker) -> None:
        self.tracker = tracker

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Mapping[str, float] | None = None,
                    **kwargs: Any) -> None:
        if metrics:
            epoch = state.epoch or 0
            self.tracker.log_scalars(epoch, {f"eval/{k[5:] if k.startswith('eval_') else k}": v
                                             for k, v in metrics.items()})

    def on_log(self, args: Any, state: Any, control: Any, logs: Mapping[str, float] | None = None,
               **kwargs: Any) -> None:
        if logs and "loss" in logs:
            self.tracker.log_scalars(state.epoch or 0, {f"train/{k}": v for k, v in logs.items()
                                                        if k.startswith(("loss", "learning_rate", "grad_norm"))})


def enqueue_training(settings_dump: Mapping[str, Any], queue: str, project: str = "eno",
                     task_name: str = "train") -> None:
    """Send the current ``eno train`` command to a ClearML agent queue (``Task.execute_remotely``),
    as the original workflow did with ``clearml-task``.

    On the submitting machine this records the task (settings connected as parameters), enqueues
    it on ``queue`` and exits the process; on the agent that runs it, ``execute_remotely`` returns
    at once and the training goes on there. Needs a ClearML server: there is no offline queue.

    Raises:
        RuntimeError: ClearML is in offline mode (``CLEARML_OFFLINE_MODE``, eno's default); export
            ``CLEARML_OFFLINE_MODE=0`` and configure ``clearml.conf`` / ``CLEARML_API_HOST``.
    """
    from clearml import Task

    if Task.is_offline() or os.environ.get("CLEARML_OFFLINE_MODE", "0") not in ("", "0", "false", "False"):
        raise RuntimeError(f"eno train --remote {queue} needs a ClearML server: ClearML is offline "
                           "(CLEARML_OFFLINE_MODE is set, eno's default). Export CLEARML_OFFLINE_MODE=0 "
                           "and configure the server in clearml.conf or CLEARML_API_HOST/... first.")
    _forget_foreign_master()
    task = Task.init(project_name=project, task_name=task_name, task_type="training",
                     reuse_last_task_id=False, auto_connect_frameworks={k: False for k in _FRAMEWORKS},
                     auto_connect_arg_parser=False, auto_resource_monitoring=False)
    task.connect(_flatten(settings_dump), name="settings")
    task.execute_remotely(queue_name=queue, clone=False, exit_process=True)
