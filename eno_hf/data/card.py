"""Dataset card (``README.md`` next to a built dataset version), in the Hugging Face card layout.

The card states the source, the config that decided the version, counts, label frequencies per
split, every column (with the 64 fingerprint dimension names) and how to load the data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eno_hf.config import Settings

__all__ = ["card_data", "render_card", "write_card", "COLUMN_DOCS"]

COLUMN_DOCS: dict[str, str] = {
    "segment_id": "`{recording_id}_seg{n:03d}`, unique per row",
    "recording_id": "id of the source recording (all its segments share a split)",
    "group": "split group (artist/album/...; the recording id when the source names none)",
    "path": "absolute path of the original audio file",
    "segment_start_s": "segment start in the source file, seconds (float32)",
    "segment_end_s": "segment end in the source file, seconds (float32)",
    "waveform": "conditioned mono waveform at `audio.sample_rate` Hz, LUFS-normalized, float16",
    "log_mel": "log-mel spectrogram `(n_mels, frames)` in dB, float16",
    "mfcc": "MFCC `(n_mfcc, frames)`, float32",
    "fingerprint": "64 hand-crafted descriptors, float32 (names below)",
    "audio": "path-based `datasets.Audio` of the original file (decoded on access)",
    "fold": "cross-validation fold 0..k-1 over train+validation (-1 for test)",
}


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _feature_type(feat: Any) -> str:
    from datasets import Audio, ClassLabel, List, Sequence, Value

    if isinstance(feat, ClassLabel):
        return f"ClassLabel ({feat.num_classes} names)"
    if isinstance(feat, (List, Sequence)):
        inner = _feature_type(feat.feature)
        length = getattr(feat, "length", -1)
        return f"list[{inner}]" + (f" (length {length})" if length not in (-1, None) else "")
    if isinstance(feat, Value):
        return feat.dtype
    if isinstance(feat, Audio):
        return "Audio (path-based)"
    return type(feat).__name__


def _size_category(n: int) -> str:
    """Hugging Face ``size_categories`` bucket of ``n`` examples."""
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < limit:
            return label
    return "n>10M"


def card_data(*, settings: Settings, version: str, report: Mapping[str, Any]) -> Any:
    """The card's metadata as a ``huggingface_hub.DatasetCardData``: ``pretty_name``,
    ``task_categories: [audio-classification]``, ``size_categories`` (segments), ``tags``,
    ``source_datasets`` (the metadata file / audio root it was built from), and ``dataset_info``
    (version, examples per split). No ``license``: the recordings' licence is the collection's
    owner's, which eno does not know."""
    from huggingface_hub import DatasetCardData

    splits = report["splits"]
    src = settings.dataset.source
    sources = [str(p) for p in (src.metadata, src.audio_root) if p]
    n = sum(int(v["n_segments"]) for v in splits.values())
    return DatasetCardData(
        pretty_name=f"eno {settings.dataset.name} {version}", task_categories=["audio-classification"],
        size_categories=[_size_category(n)], source_datasets=sources or None,
        tags=["music", "music-tagging", "eno"],
        dataset_info={"config_name": "default", "version": version,
                      "splits": [{"name": s, "num_examples": v["n_segments"]} for s, v in splits.items()]},
    )


def render_card(*, settings: Settings, version: str, report: Mapping[str, Any],
                features: Any) -> str:
    """Markdown dataset card: ``card_data`` as YAML front matter (``huggingface_hub.DatasetCard``
    reads it back), then source, counts, labels, columns, how to load, configuration.

    Args:
        settings: the settings the dataset was built with.
        version: dataset version.
        report: QC report (``eno_hf.data.qc.make_qc_report``).
        features: the dataset's ``datasets.Features``.
    """
    from datasets import ClassLabel, List, Sequence

    from eno_hf.features.fingerprint import FINGERPRINT_NAMES

    cfg = settings.dataset
    name = cfg.name
    acc = report["accounting"]
    splits = report["splits"]
    data = card_data(settings=settings, version=version, report=report)
    out: list[str] = ["---", data.to_yaml(), "---", ""]
    out += [f"# {name} (version `{version}`)", "",
            "Built by `eno_hf.data.build.build_dataset`: decoded, mixed to mono, resampled (soxr), "
            "loudness-normalized (ITU-R BS.1770-4, pyloudnorm), cut into fixed windows, with "
            "log-mel/MFCC/fingerprint features. One row per segment; all segments of a recording "
            "and all recordings of a group are in the same split.", ""]

    src = cfg.source
    out += ["## Source", "",
            f"- kind: `{src.kind}`",
            f"- metadata: `{src.metadata}`",
            f"- audio root: `{src.audio_root}`",
            f"- group column: `{src.group_column}`" + ("" if src.group_column else
                                                       " (each recording is its own group)"),
            f"- label tasks: multi-label {sorted(src.multilabel)}, single-label "
            f"{sorted(src.singlelabel)}, numeric {sorted(src.numeric)}", ""]
    if cfg.limit is not None:
        out += [f"Only the first {cfg.limit} recordings (sorted by id) were used (`dataset.limit`).", ""]

    out += ["## Counts", "",
            f"{acc['statement']} — every input is either written or listed with a reason in "
            "`qc_report.json`; `qc_rows.jsonl` holds one row per input.", "",
            _table(["split", "recordings", "segments", "groups"],
                   [[s, v["n_recordings"], v["n_segments"], v["n_groups"]] for s, v in splits.items()]),
            ""]
    if report.get("rejected_by_reason"):
        out += ["Rejected by reason: " + ", ".join(f"{k}: {v}" for k, v in
                                                   sorted(report["rejected_by_reason"].items())), ""]
    for w in report.get("warnings") or []:
        out += [f"**Note**: {w}", ""]
    if report.get("group_overlap"):
        out += [f"**Warning**: groups in more than one split: {report['group_overlap']}", ""]

    out += ["## Labels", ""]
    labels = report.get("labels", {})
    tasks = sorted({t for per in labels.values() for t in per})
    for task in tasks:
        vocab = next(iter(labels[s][task]["frequencies"] for s in labels if task in labels[s]))
        split_names = [s for s in labels if task in labels[s]]
        rows = [[tag] + [labels[s][task]["frequencies"].get(tag, 0) for s in split_names]
                for tag in vocab]
        out += [f"### {task} ({len(vocab)} labels; recordings per label)", "",
                _table(["label", *split_names], rows), ""]
        dropped = (report.get("labels_dropped") or {}).get(task)
        if dropped:
            out += [f"Dropped (fewer than min_count recordings): {len(dropped)} labels.", ""]

    out += ["## Columns", ""]
    rows = []
    for col, feat in features.items():
        doc = COLUMN_DOCS.get(col, "")
        if isinstance(feat, ClassLabel):
            doc = doc or "single-label task; -1 = missing"
        elif isinstance(feat, (List, Sequence)) and isinstance(feat.feature, ClassLabel):
            doc = doc or "multi-label task (label ids; names in the features)"
        elif not doc:
            doc = "numeric task (float32; null = missing)"
        rows.append([f"`{col}`", _feature_type(feat), doc])
    out += [_table(["column", "type", "description"], rows), ""]
    f = cfg.features
    out += [f"Audio: {cfg.audio.sample_rate} Hz mono, target {cfg.audio.target_lufs} LUFS, peak "
            f"ceiling {cfg.audio.peak_ceiling_dbfs} dBFS. Segments: {cfg.segment.segment_s} s every "
            f"{cfg.segment.hop_s} s (last kept if ≥ {cfg.segment.min_last_ratio:.0%}). "
            f"Log-mel: n_mels={f.n_mels}, n_fft={f.n_fft}, hop_length={f.hop_length}, "
            f"f_min={f.f_min} Hz, f_max={f.f_max} Hz; n_mfcc={f.n_mfcc}.", ""]
    if f.fingerprint:
        out += ["### Fingerprint dimensions (`eno_hf.features.fingerprint`)", "",
                ", ".join(f"{i}: `{n}`" for i, n in enumerate(FINGERPRINT_NAMES)), ""]

    out += ["## How to load", "", "```python",
            "from datasets import load_from_disk",
            "dsd = load_from_disk(\"<this folder>\")            # DatasetDict (memory-mapped)",
            "",
            "from eno_hf.data.build import open_dataset",
            f"dsd = open_dataset(\"<data_root>\", \"{name}\", \"{version}\")",
            "",
            "from datasets import load_dataset",
            "ds = load_dataset(\"arrow\", data_files={\"train\": \"<this folder>/train/*.arrow\"})",
            "",
            "# parquet export: eno_hf.data.build.export_parquet(\"<this folder>\", \"<out>\")",
            "ds = load_dataset(\"parquet\", data_files={\"train\": \"<out>/train.parquet\"})",
            "```", "",
            "Label names: `dsd['train'].features[task].feature.names` (multi-label) or "
            "`.features[task].names` (single-label).", ""]

    out += ["## Configuration", "", "Everything below decided this version (`num_workers` excluded):",
            "", "```json", json.dumps(cfg.model_dump(mode="json", exclude={"num_workers"}),
                                      indent=2, default=str), "```", ""]
    return "\n".join(out)


def write_card(path: str | Path, **kwargs: Any) -> Path:
    """Render the card (``render_card(**kwargs)``) as a ``huggingface_hub.DatasetCard`` and save it
    to ``path``. Returns the path."""
    from huggingface_hub import DatasetCard

    path = Path(path)
    DatasetCard(render_card(**kwargs)).save(path)
    return path
