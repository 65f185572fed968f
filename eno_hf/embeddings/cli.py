"""``eno embed``: frame embeddings of a folder of audio/MIDI files or of a dataset version."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

from eno_hf.cli_common import ConfigOpt, JsonOpt, SetOpt, load_settings, print_json_last

console = Console(stderr=True)

__all__ = ["embed_command"]


def embed_command(
    source: Annotated[Optional[Path], typer.Argument(help="Folder (or file) of audio/MIDI to embed.")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder: embeddings/{segment_id}.pt + metadata.jsonl.")] = Path("embeddings-out"),
    dataset: Annotated[Optional[str], typer.Option("--dataset", help="Embed a dataset version instead: NAME[@VERSION].")] = None,
    encoder: Annotated[str, typer.Option("--encoder", help="sota_tagger name (mtat-musicnn, msd-fcn, ...) or a label for hf_audio.")] = "mtat-musicnn",
    kind: Annotated[str, typer.Option("--kind", help="sota_tagger | hf_audio")] = "sota_tagger",
    features: Annotated[str, typer.Option("--features", help="embedding | prefix+embedding (sota_tagger)")] = "prefix+embedding",
    encoder_path: Annotated[Optional[Path], typer.Option("--encoder-path", help="hf_audio: local checkpoint dir.")] = None,
    hop_s: Annotated[Optional[float], typer.Option("--hop-s", help="Window hop in seconds (default: window).")] = None,
    data_root: Annotated[Path, typer.Option("--data-root")] = Path("eno-data"),
    shard_size: Annotated[int, typer.Option("--shard-size")] = 64,
    companion: Annotated[bool, typer.Option("--companion", help="Embed the config's dataset version into its companion "
                                            "Arrow dataset (settings.embed; --dataset @VERSION picks the version).")] = False,
    config: ConfigOpt = Path("small"),
    set_: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Embed every segment (one (frames, dim) tensor each), resumable by shard; every input ends in
    metadata.jsonl or rejections.jsonl. With --companion: the companion Arrow dataset of a dataset
    version (pooled embedding float32 [+ frames float16] by segment_id), see docs/deployments.md."""
    from eno_hf.embeddings.embed import EmbedItem, embed_items, items_from_dataset, items_from_folder
    from eno_hf.embeddings.frames import EmbedderSpec, build_frame_embedder

    if companion:
        from eno_hf.embeddings.companion import embed_dataset

        settings = load_settings(config, set_)
        res = embed_dataset(settings, (dataset or "@latest").partition("@")[2] or "latest",
                            progress=lambda a, b: console.print(f"shard {a}/{b}"))
        console.print(f"{len(res.dataset)} rows (embedded {res.embedded}, reused {res.reused}, rejected "
                      f"{len(res.rejected)}, dim {res.dim}) -> {res.path}")
        if json_out:
            print_json_last({"path": str(res.path), "rows": len(res.dataset), "embedded": res.embedded,
                             "reused": res.reused, "rejected": len(res.rejected), "dim": res.dim})
        return

    if (source is None) == (dataset is None):
        console.print("[red]give either SOURCE (a folder/file) or --dataset NAME[@VERSION][/red]")
        raise typer.Exit(2)
    if dataset is not None:
        name, _, version = dataset.partition("@")
        items = items_from_dataset(data_root, name, version or "latest")
    elif source.is_dir():
        items = items_from_folder(source)
    else:
        items = [EmbedItem(segment_id=source.stem, path=str(source))]
    spec = EmbedderSpec(kind=kind, name=encoder, features=features, path=str(encoder_path) if encoder_path else None, hop_s=hop_s)
    embedder = build_frame_embedder(spec)
    res = embed_items(items, embedder, out_dir, shard_size=shard_size, render_cache=data_root / "cache" / "midi-render",
                      progress=lambda a, b: console.print(f"shard {a}/{b}"))
    console.print(f"embedded {res.embedded} (reused {res.reused}), rejected {len(res.rejected)} -> {out_dir} "
                  f"(dim {embedder.dim}, {spec.key})")
    if json_out:
        print_json_last({"out": str(out_dir), "embedded": res.embedded, "reused": res.reused,
                         "rejected": len(res.rejected), "dim": embedder.dim, "embedder": spec.key})
