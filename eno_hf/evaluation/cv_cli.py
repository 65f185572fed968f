"""``eno cv``: repeated artist-grouped cross-validation of the model candidates (``evaluation.cv``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def cv_command(
    config: Annotated[Path, typer.Option("--config", "-c", help="YAML config (see configs/).")] = Path("small"),
    set_: Annotated[Optional[list[str]], typer.Option("--set", "-s", help="Override: key.path=value.")] = None,
    candidates: Annotated[Optional[str], typer.Option("--candidates", help="Comma-separated names (default: all; "
                                                      "see eno_hf.evaluation.cv.CANDIDATES).")] = None,
    folds: Annotated[int, typer.Option("--folds", help="Outer folds per repeat.")] = 5,
    repeats: Annotated[int, typer.Option("--repeats", help="Repeats with different fold seeds.")] = 3,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the first repeat's folds.")] = 0,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Report folder (default {data_root}/cv/...).")] = None,
    dataset: Annotated[Optional[Path], typer.Option("--dataset", help="A saved dataset to use as is "
                                                    "(default: build or reuse the config's).")] = None,
) -> None:
    """Cross-validate the model candidates and baselines on fixed saved folds; write cv_report.json/.md."""
    from eno_hf.cli import console
    from eno_hf.cli_common import load_settings as _settings
    from eno_hf.evaluation.cv import cross_validate

    settings = _settings(config, set_)
    names = [c.strip() for c in candidates.split(",") if c.strip()] if candidates else None
    try:
        report = cross_validate(settings, names, n_folds=folds, n_repeats=repeats, seed=seed, out_dir=out_dir,
                                dataset_path=dataset)
    except KeyError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    print(Path(report["markdown"]).read_text())
    console.print(f"wrote [bold]{report['json']}[/bold] and {report['markdown']}")
