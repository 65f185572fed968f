#!/usr/bin/env bash
# Create eno's Prefect work pools and the global GPU concurrency limit (idempotent).
# Needs a running Prefect server (PREFECT_API_URL), e.g. `prefect server start`. See docs/deployments.md.
#   eno-local  process pool: this machine, CPU (the default base job template)
#   eno-gpu    process pool on a GPU host: deployments/process-gpu.json (CUDA_VISIBLE_DEVICES=0, offline env)
#   gpu        global concurrency limit: GPU stages (train, evaluate, tag) each hold one slot while they run
# Docker / Kubernetes GPU pools (need prefect-docker / prefect-kubernetes on the worker):
#   prefect work-pool create eno-gpu-docker --type docker --base-job-template deployments/docker-gpu.json
#   prefect work-pool create eno-gpu-k8s --type kubernetes --base-job-template deployments/kubernetes-gpu.json
set -euo pipefail
cd "$(dirname "$0")"
GPU_SLOTS="${ENO_GPU_SLOTS:-1}"   # one per GPU the workers of this server share
prefect --no-prompt work-pool create eno-local --type process --overwrite
prefect --no-prompt work-pool create eno-gpu --type process --base-job-template process-gpu.json --overwrite
prefect --no-prompt work-pool set-concurrency-limit eno-gpu "$GPU_SLOTS"
if prefect --no-prompt gcl inspect gpu >/dev/null 2>&1; then
  prefect --no-prompt gcl update gpu --limit "$GPU_SLOTS"
else
  prefect --no-prompt gcl create gpu --limit "$GPU_SLOTS"
fi
