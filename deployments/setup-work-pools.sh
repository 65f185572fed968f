#!/usr/bin/env bash
# Create eno's Prefect work pools and the global GPU concurrency limit (idempotent).
# Needs a running Prefect server (PREFECT_API_URL) — `prefect server start` locally.
set -euo pipefail
prefect work-pool create eno-local --type process --overwrite
prefect work-pool create eno-gpu --type process --overwrite
# One flow run per GPU worker at a time; tasks that use the GPU also take the "gpu" slot.
prefect work-pool set-concurrency-limit eno-gpu 1
prefect gcl create gpu --limit 1 2>/dev/null || prefect gcl update gpu --limit 1
