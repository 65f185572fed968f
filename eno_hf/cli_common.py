"""Pieces every ``eno`` command module shares: the ``--config`` / ``--set`` / ``--json`` options,
loading :class:`~eno_hf.config.Settings` with a one-line error, and the last-line JSON output.

Used by ``eno_hf/cli.py`` and the sub-apps (``eno dataset``, ``eno clarity``, ``eno serve``)::

    from eno_hf.cli_common import ConfigOpt, JsonOpt, SetOpt, load_settings, print_json_last

    @app.command()
    def build(config: ConfigOpt = Path("small"), set_: SetOpt = None, json_out: JsonOpt = False):
        settings = load_settings(config, set_)   # exit 2 with "config error: ..." on a bad file/override
        ...
        print_json_last({"dataset": ...})        # strict JSON (NaN -> null), the last stdout line
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Console

if TYPE_CHECKING:  # annotations only: the CLI loads eno_hf.config when a command runs (fast --help)
    from eno_hf.config import Settings

__all__ = ["ConfigOpt", "SetOpt", "JsonOpt", "console", "load_settings", "print_json_last", "compact"]

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Built-in config name (`eno config --list`) "
                                                                "or a YAML file.")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", "-s", help="Override: key.path=value (repeatable).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object as the last stdout line.")]

console = Console(stderr=True)
"""The CLI's messages (stderr; stdout carries only results and the ``--json`` line)."""
_BULKY = {"per_tag", "per_class", "single_class_tags", "thresholds"}


def load_settings(config: Path, sets: list[str] | None) -> Settings:
    """``load_config(config, sets)``; a :class:`~eno_hf.config.ConfigError` prints one line and exits 2."""
    from eno_hf.config import ConfigError, load_config

    try:
        return load_config(config, sets or [])
    except ConfigError as exc:
        console.print(f"[red]config error:[/red] {exc}")
        raise typer.Exit(2) from exc


def compact(obj: Any) -> Any:
    """Drop per-tag tables from nested metrics (they are in the evaluation directory)."""
    if isinstance(obj, dict):
        return {k: compact(v) for k, v in obj.items() if k not in _BULKY}
    return obj


def print_json_last(obj: Any, *, drop_bulky: bool = True) -> None:
    """Print ``obj`` as one strict-JSON line, the command's last stdout line.

    NaN/Inf become ``null``, numpy values plain numbers, paths and other objects strings. With
    ``drop_bulky`` (default) per-tag tables (``per_tag``, ``per_class``, ``single_class_tags``,
    ``thresholds``) are dropped: they are in the files the command wrote. Pass ``False`` for
    objects where such keys are data (a config, a registry listing).
    """
    from eno_hf.utils.io import to_jsonable  # lazy: keeps `eno --help` fast

    sys.stdout.flush()
    body = to_jsonable(compact(obj) if drop_bulky else obj)
    print(json.dumps(body, default=str, allow_nan=False), flush=True)
