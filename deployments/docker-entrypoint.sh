#!/bin/sh
# Entrypoint of the eno image (deployments/Dockerfile): the container's arguments are an eno command
# (`docker run eno:cpu run --config small` runs `eno run --config small`), unless they start with one
# of the programs below, which run as given: a Prefect Docker worker starts its flow runs with
# `prefect flow-run execute`, and a shell or python is handy for debugging.
set -e
case "${1:-}" in
  eno|prefect|python|python3|pip|bash|sh|dask|uvicorn) exec "$@" ;;
  *) exec eno "$@" ;;
esac
