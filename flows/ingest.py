"""Prefect flow ``eno-ingest``: read + clean metadata into a manifest JSON (no audio decoding).

    python -m flows.ingest --config configs/small.yaml

Writes ``{data_root}/manifests/{dataset.name}.json``: ``{"dataset", "n_recordings", "recordings":
[Recording.to_dict()], "rejected": [{path, recording_id, reason, detail}], "vocab", "dropped"}``.
Thin wrapper over ``eno_hf.data.sources.load_recordings`` and ``eno_hf.data.labels.clean_labels``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import eno_hf  # noqa: F401  (offline env defaults, PREFECT_HOME, before Prefect reads settings)
from prefect import flow, get_run_logger, task

from eno_hf.config import Settings, load_config
from eno_hf.data.qc import write_qc_report


@task(name="eno-ingest-metadata", retries=2, retry_delay_seconds=1)
def ingest_manifest(settings: Settings) -> str:
    """Load and clean the metadata of ``settings.dataset``; write the manifest; return its path."""
    from eno_hf.data.labels import clean_labels
    from eno_hf.data.sources import load_recordings

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
    out = Path(settings.paths.data_root) / "manifests" / f"{cfg.name}.json"
    return str(write_qc_report(manifest, out))  # same atomic JSON writer


@flow(name="eno-ingest", log_prints=True)
def ingest(config: str = "configs/small.yaml", overrides: list[str] | None = None) -> str:
    """Metadata → cleaned manifest JSON under ``{data_root}/manifests``. Returns the path."""
    settings = load_config(config, list(overrides or []))
    path = ingest_manifest(settings)
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    get_run_logger().info("%s: %d recordings, %d rejected -> %s", data["dataset"],
                          data["n_recordings"], len(data["rejected"]), path)
    return path


if __name__ == "__main__":  # pragma: no cover
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default="configs/small.yaml")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    print(ingest(args.config, args.overrides))
