"""One job model: every eno job is an ordered tuple of stages run through one runner seam.

A ``Job`` is a name, a tuple of ``Stage`` s, a factory of the job's state and a function that
turns the final state into the job's result. ``run_stages(job, settings, names, state, runner)``
walks the (enabled, selected) stages in order and hands each to a *runner*:

- ``run_directly`` (default; the CLI with ``--no-prefect``, the per-step CLI commands) calls
  ``stage.fn(settings, state)``;
- ``eno_hf.flows.runner.prefect_runner`` (every Prefect flow and deployment) wraps it in a Prefect
  task whose retries, timeout and GPU slot follow ``stage.resource``. This module never imports
  Prefect.

A stage function returns a dict of the state fields it sets; the state's ``update(changes)``
applies it (a state is any object with that method).

The jobs (``JOBS``, imported lazily so ``import eno_hf.jobs`` stays cheap)::

    tagging      eno_hf.tagging.TAGGING                 dataset → embed → baselines → train → evaluate → register → tag
    performance  eno_hf.performance.job.PERFORMANCE inputs → select → cross_validate → fit → register → tag
    clarity      eno_hf.clarity.job.CLARITY         init → generate → scan → normalize → verify → extract → analyze → train → export
    workspace    eno_hf.workspace.steps.WORKSPACE        create → import → annotate → extract → augment → synthesize → extract_new → split → validate

``job_of(settings)`` picks the job of a configuration (``Settings.job``; when unset:
``performance`` when ``settings.performance`` is set, else ``tagging``).

Stage markers (``read_marker`` / ``write_marker``): a small JSON file beside (or naming) a stage's
outputs holding the hash of the stage's inputs (``key``) and when it finished; a marker whose key
differs (other model, other data, other settings) is ignored and the stage runs again.
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from eno_hf.config import Settings
from eno_hf.utils.io import atomic_write_json

__all__ = ["JOBS", "FieldState", "Job", "Resource", "Stage", "StageRunner", "job_of", "read_marker", "run_directly", "run_stages",
           "write_marker"]

Resource = Literal["cpu", "gpu", "io"]
"""How a runner schedules a stage: ``gpu`` (model forward/backward: one GPU slot), ``io`` (copies,
network shares, trackers: worth retrying) or ``cpu``."""


def _always(settings: Settings) -> bool:
    return True


@dataclass(frozen=True)
class Stage:
    """One step of a job.

    Attributes:
        name: unique within its job; the Prefect task is ``eno-{name}``.
        fn: ``fn(settings, state) -> dict`` of the state fields it sets.
        resource: ``"gpu"``, ``"io"`` or ``"cpu"`` (see ``Resource``).
        enabled: ``enabled(settings) -> bool``; a disabled stage is skipped.
        task_name: the name of its orchestrator task (default ``eno-{name}``).
        retries: retries on any error by an orchestrator (``io`` stages have their own policy,
            retries on ``OSError`` only); ``run_directly`` never retries.
    """

    name: str
    fn: Callable[[Settings, Any], dict[str, Any]]
    resource: Resource = "cpu"
    enabled: Callable[[Settings], bool] = _always
    task_name: str | None = None
    retries: int = 0


class FieldState:
    """Base of a dataclass job state whose stages return its own fields (``PipelineState``,
    ``PerformanceState``): ``update`` sets them (``cached`` dicts are merged), ``require`` names the
    first one an earlier stage has not set. ``state_label`` names the state in errors."""

    state_label = "job state"

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a stage's returned fields (``cached`` dicts are merged).

        Raises:
            KeyError: a key that is not a field of the state.
        """
        names = {f.name for f in fields(self)}  # type: ignore[arg-type]
        for key, value in changes.items():
            if key not in names:
                raise KeyError(f"stage returned unknown {self.state_label} field {key!r}")
            if key == "cached":
                self.cached.update(value)  # type: ignore[attr-defined]
            else:
                setattr(self, key, value)

    def require(self, *names: str) -> None:
        """Raise ``RuntimeError`` naming the first of ``names`` an earlier stage has not set."""
        for name in names:
            if getattr(self, name) is None:
                raise RuntimeError(f"{self.state_label} has no {name!r}: run the stage that produces it first")


@dataclass(frozen=True)
class Job:
    """A job: ordered, uniquely named stages over one state type.

    Attributes:
        name: ``tagging``, ``performance``, ``clarity`` or ``workspace`` (``JOBS``' keys).
        stages: the stages, in the order they run.
        new_state: ``new_state(**options) -> state`` (run options such as ``progress``).
        result: ``result(settings, state)`` -> what the job returns to its caller (CLI, flow).
    """

    name: str
    stages: tuple[Stage, ...]
    new_state: Callable[..., Any]
    result: Callable[[Any, Any], Any]

    def __post_init__(self) -> None:
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"job {self.name!r}: stage names are not unique: {names}")

    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self.stages]

    def select(self, names: Sequence[str] | None = None) -> tuple[Stage, ...]:
        """The stages named in ``names`` (kept in job order); all of them for ``None``.

        Raises:
            ValueError: an unknown stage name.
        """
        if names is None:
            return self.stages
        unknown = [n for n in names if n not in self.stage_names]
        if unknown:
            raise ValueError(f"unknown stage(s) {unknown}; stages of the {self.name} job are {self.stage_names}")
        return tuple(s for s in self.stages if s.name in set(names))


StageRunner = Callable[[Stage, Settings, Any], dict[str, Any]]
"""``runner(stage, settings, state) -> dict`` of the state fields the stage sets."""


def run_directly(stage: Stage, settings: Settings, state: Any) -> dict[str, Any]:
    """The default runner: call the stage function in this process."""
    return stage.fn(settings, state)


def run_stages(job: Job, settings: Settings, names: Sequence[str] | None = None, state: Any = None,
               runner: StageRunner = run_directly) -> Any:
    """Run the enabled stages of ``job.select(names)`` in order through ``runner``.

    Args:
        job: the job (e.g. ``JOBS["tagging"]`` or ``job_of(settings)``).
        settings: the configuration (passed to every stage; never re-read from YAML).
        names: stage names to run (default: all).
        state: a (possibly preset) state to continue from; ``job.new_state()`` by default.
        runner: ``run_directly`` or ``eno_hf.flows.runner.prefect_runner``.

    Returns:
        The final state.

    Raises:
        ValueError: an unknown stage name. Whatever a stage raised.
    """
    state = state if state is not None else job.new_state()
    for stage in job.select(names):
        if stage.enabled(settings):
            state.update(runner(stage, settings, state))
    return state


# ----------------------------------------------------------------------------- stage markers
def read_marker(path: str | Path, key: str) -> dict[str, Any] | None:
    """The marker file ``path`` when it was written for inputs ``key``, else None (missing,
    unreadable, or another key).

    Returns:
        The marker's JSON object (``key``, ``finished`` and whatever ``write_marker`` got).
    """
    p = Path(path)
    if not p.is_file():
        return None
    try:
        info = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # a marker that cannot be read marks nothing
        return None
    return info if isinstance(info, dict) and info.get("key") == key else None


def write_marker(path: str | Path, key: str, info: Mapping[str, Any] | None = None, indent: int | None = 2) -> Path:
    """Atomically write the marker ``path``: ``{**info, "key": key, "finished": local time
    %Y-%m-%dT%H:%M:%S}`` as strict JSON (``eno_hf.utils.io.atomic_write_json``; NaN → null).
    Returns ``path``."""
    return atomic_write_json(path, {**dict(info or {}), "key": key, "finished": time.strftime("%Y-%m-%dT%H:%M:%S")},
                             indent=indent)


# ----------------------------------------------------------------------------- the jobs
_JOB_PATHS: dict[str, str] = {
    "tagging": "eno_hf.tagging:TAGGING",
    "performance": "eno_hf.performance.job:PERFORMANCE",
    "clarity": "eno_hf.clarity.job:CLARITY",
    "workspace": "eno_hf.workspace.steps:WORKSPACE",
}


class _LazyJobs(Mapping[str, Job]):
    """Job name -> ``Job``, each imported from its module on first access."""

    def __getitem__(self, name: str) -> Job:
        module, _, attr = _JOB_PATHS[name].partition(":")
        return getattr(importlib.import_module(module), attr)

    def __iter__(self) -> Iterator[str]:
        return iter(_JOB_PATHS)

    def __len__(self) -> int:
        return len(_JOB_PATHS)


JOBS: Mapping[str, Job] = _LazyJobs()
"""Every job by name (``tagging``, ``performance``, ``clarity``, ``workspace``); imported lazily."""


def job_name(settings: Settings) -> str:
    """``settings.job`` when set, else ``performance`` when ``settings.performance`` is set, else
    ``tagging``."""
    name = getattr(settings, "job", None)
    if name:
        return name
    return "performance" if getattr(settings, "performance", None) is not None else "tagging"


def job_of(settings: Settings) -> Job:
    """The ``Job`` a configuration runs (``job_name``).

    Raises:
        KeyError: an unknown job name (``Settings`` validation already refuses one).
    """
    return JOBS[job_name(settings)]
