"""Offline-by-default environment: the one place that sets HF, Prefect and ClearML defaults.

``apply_offline_defaults()`` runs when ``eno_hf`` is imported, before transformers/datasets/
huggingface_hub/prefect/clearml read their settings. Values already set in the environment win,
so a production deployment can point at a real Prefect/ClearML server by exporting variables.
"""

from __future__ import annotations

import os
from pathlib import Path

OFFLINE_DEFAULTS: dict[str, str] = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    # datasets' own tqdm bars ("Flattening the indices", "Map") would interleave with eno's progress
    # (eno_hf.utils.progress) and fill Prefect worker logs
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    # A first run creates and migrates the SQLite database: on a loaded 2-core machine (load ~19,
    # python imports alone ~95 s) that took longer than 120 s and `eno run` failed.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "600",
    # Prefect's own loggers only (task/flow state lines); eno's loggers are not under "prefect"
    "PREFECT_LOGGING_LEVEL": "WARNING",
    # eno's log lines (dataset size, metrics, where the model went) into the flow run's logs; the
    # flows set the "eno_hf" logger to INFO (eno_hf.flows.runner.route_eno_logs). Lines logged
    # outside a run (the CLI without Prefect) are not sent, and not warned about.
    "PREFECT_LOGGING_EXTRA_LOGGERS": "eno_hf",
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    "CLEARML_OFFLINE_MODE": "1",
    "CLEARML_SKIP_PIP_FREEZE": "1",
    "CLEARML_LOG_ENVIRONMENT": "",
}


def apply_offline_defaults(home: str | Path | None = None) -> None:
    """Set offline defaults with ``os.environ.setdefault`` (existing values win).

    Args:
        home: folder for ``PREFECT_HOME`` and the ClearML cache when not set
            (default ``~/.eno``).
    """
    for key, value in OFFLINE_DEFAULTS.items():
        os.environ.setdefault(key, value)
    base = Path(home) if home is not None else Path.home() / ".eno"
    os.environ.setdefault("PREFECT_HOME", str(base / "prefect"))
    os.environ.setdefault("CLEARML_CACHE_DIR", str(base / "clearml-cache"))
    # Prefect creates PREFECT_HOME with a parent-less mkdir: on a fresh machine (no ~/.eno) it only
    # warns, then its ephemeral server fails with "unable to open database file". Create both
    # state folders here, parents included, whether they are eno's defaults or the user's values.
    for key in ("PREFECT_HOME", "CLEARML_CACHE_DIR"):
        _ensure_dir(os.environ[key])


def _ensure_dir(path: str) -> None:
    """Create ``path`` (with parents, ``~`` expanded); an unwritable location is left for the tool
    that uses it to report."""
    try:
        Path(path).expanduser().mkdir(parents=True, exist_ok=True)
    except OSError:
        pass
