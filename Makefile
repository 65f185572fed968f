.PHONY: setup test test-fast demo bench
setup:
	@bash scripts/setup.sh
# two pytest-xdist workers, one per core; whole files per worker (module fixtures built once);
# files in conftest's order, longest first (--no-loadscope-reorder: xdist's own order put them last);
# no worker restarts: xdist 3.8 can deadlock at the end of a loadfile run after replacing a
# crashed worker (pytest-xdist#1378), so a crash ends the run at once with its report
test: setup
	.venv/bin/python -m pytest tests -q -n 2 --dist loadfile --no-loadscope-reorder --max-worker-restart=0 --durations=15
# the inner loop: everything but the tests marked slow, e2e or flow (real runs, servers, training)
test-fast: setup
	.venv/bin/python -m pytest tests -q -n 2 --dist loadfile --max-worker-restart=0 -m "not slow and not e2e and not flow"
demo: setup
	.venv/bin/eno run --config small
bench: setup
	.venv/bin/python benchmarks/ingest.py
	.venv/bin/python benchmarks/inference.py
