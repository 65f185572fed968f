"""``eno init PATH``: look at a music collection and write a commented ``eno.yaml`` for it.

The detection lives in ``eno_hf.data.init`` (imported when the command runs, so ``eno --help``
stays fast)::

    eno init ~/music/moods                # folders by label -> ~/music/moods/eno.yaml
    eno init meta.csv --out eno.yaml      # a CSV/TSV, JSON album dump or JSONL of segments
    eno init . --json                     # the summary as one JSON object on the last stdout line

Exit status: 0 written; 2 unusable input (one line on stderr naming the file, and the line/column
where it applies), or ``eno.yaml`` exists without ``--force``; nothing is written then.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from eno_hf.cli_common import print_json_last

__all__ = ["init_command"]


def init_command(
    path: Annotated[Path, typer.Argument(help="A folder of audio/MIDI files (one sub-folder per label, "
                                              "or beside a metadata file), or a CSV/TSV, JSON album "
                                              "dump or JSONL segment file.")],
    base: Annotated[str, typer.Option("--base", help="Built-in config (recipe) the file starts from: "
                                                     "`defaults: [BASE]` (`eno config --list`).")] = "tagger",
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="File to write (default: "
                                                                    "PATH/eno.yaml).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    max_rows: Annotated[int, typer.Option("--max-rows", min=1, help="Metadata rows read to decide "
                                                                    "the columns.")] = 2000,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object as the last "
                                                          "stdout line.")] = False,
) -> None:
    """Look at a collection and write a commented eno.yaml for it (guide: docs/own-collection.md).

    Detects the source kind (folders, csv, json_dump, jsonl_segments) and the id, path, label and group fields; prints the files, labels per task, groups, rejects, open questions (also `# QUESTION:` comments in the file) and the next commands.

    Exit 2 on unusable input (a missing path, an empty folder, no audio, a CSV without an id column, a JSON that is not an album list) or an existing file without --force; nothing is written then.
    """
    from rich.console import Console
    from rich.markup import escape

    from eno_hf.config import ConfigError
    from eno_hf.data.init import init_collection  # lazy: keeps `eno --help` fast
    from eno_hf.errors import MetadataError  # lazy: keeps `eno --help` fast

    err = Console(stderr=True, soft_wrap=True)
    try:
        res = init_collection(path, out=out, base=base, force=force, max_rows=max_rows)
    except MetadataError as exc:
        err.print(f"[red]init error:[/red] {escape(exc.one_line())}")
        raise typer.Exit(2) from exc
    except ConfigError as exc:
        err.print(f"[red]init error:[/red] {escape(' '.join(str(exc).split()))}")
        raise typer.Exit(2) from exc
    _print_summary(res.summary)
    if json_out:
        print_json_last(res.summary)


def _print_summary(s: dict[str, Any]) -> None:
    """The human report of ``eno init`` on stdout (plain lines; the file holds the details)."""
    p = print
    p(f"wrote {s['config']}  (source kind: {s['kind']})")
    p("files: " + (", ".join(f"{n} {ext}" for ext, n in s["files"].items()) or "none"))
    where = s["metadata"] or s["audio_root"]
    p(f"recordings: {s['recordings']} from {where}")
    tasks = list(s["tasks"].items())
    for name, t in tasks[:12]:
        if t["kind"] == "regression":
            p(f"  task {name} (regression, column {t['column']}): {t['values']} values, "
              f"{t['min']:g}..{t['max']:g}" if t["values"] else f"  task {name}: no values")
            continue
        top = ", ".join(f"{label} {n}" for label, n in t["top"])
        col = f", column {t['column']}" + (f" split on {t['separator']!r}" if t.get("separator") else "") \
            if t["column"] else ""
        dropped = f" ({t['dropped']} rarer dropped by labels.min_count)" if t["dropped"] else ""
        p(f"  task {name} ({t['kind']}{col}): {t['labels']} labels{dropped}; top: {top}")
    if len(tasks) > 12:
        p(f"  ... and {len(tasks) - 12} more tasks (see the file)")
    g = s["groups"]
    p(f"groups: {g['count']} by {g['column'] or 'none (each recording its own)'}, "
      f"largest {g['largest']} recordings")
    r = s["rejected"]
    if r["count"]:
        p(f"rejects: {r['count']} (" + ", ".join(f"{k} {n}" for k, n in r["by_reason"].items()) + ")")
        for item in r["first"][:5]:
            p(f"  {item['reason']}: {item['path']} {item.get('detail') or ''}".rstrip())
        if r["count"] > 5:
            p(f"  ... (`eno ingest --config {Path(s['config']).name}` lists them all)")
    else:
        p("rejects: none")
    if s["questions"]:
        p(f"questions ({len(s['questions'])}, marked QUESTION in {Path(s['config']).name}):")
        for q in s["questions"]:
            p(f"  - {q}")
    p("next:")
    for cmd in s["next"]:
        p(f"  {cmd}")
