.PHONY: setup test demo bench
setup:
	@bash scripts/setup.sh
test: setup
	.venv/bin/python -m pytest tests -q
demo: setup
	.venv/bin/eno run --config configs/small.yaml
bench: setup
	.venv/bin/python benchmarks/ingest.py
	.venv/bin/python benchmarks/inference.py
