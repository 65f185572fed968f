"""Prefect flow ``eno-ingest``: metadata → cleaned manifest JSON (no audio decoding)."""

from __future__ import annotations

from eno_hf.flows.runner import IO_POLICY, flow_run_name, settings_of
from prefect import flow, task

from eno_hf.config import Settings
from eno_hf.tagging import write_manifest


@flow(name="eno-ingest", log_prints=True, flow_run_name=flow_run_name)
def eno_ingest(config: str = "small", overrides: list[str] | None = None,
               settings: Settings | None = None) -> str:
    """``eno_hf.tagging.write_manifest`` as an ``io`` task. Returns the manifest path."""
    s = settings_of(config, overrides, settings)
    return str(task(write_manifest, name="eno-ingest-metadata", **IO_POLICY)(s))
