.PHONY: setup test demo bench
setup:
	@bash scripts/setup.sh
# two pytest-xdist workers, one per core; whole files per worker (module fixtures built once)
test: setup
	.venv/bin/python -m pytest tests -q -n 2 --dist loadfile --durations=15
demo: setup
	.venv/bin/eno run --config configs/small.yaml
bench: setup
	.venv/bin/python benchmarks/ingest.py
	.venv/bin/python benchmarks/inference.py
