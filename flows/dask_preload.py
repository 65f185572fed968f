"""Dask preload for the scheduler and workers of a long-lived cluster that runs eno's builds.

    dask scheduler --preload eno_hf.flows.dask_preload
    dask worker tcp://HOST:8786 --nworkers 2 --nthreads 1 --preload eno_hf.flows.dask_preload

A Dask scheduler unpickles every graph it receives (``Scheduler.update_graph``), and eno's tasks
(``eno_hf.flows.runner.process_files_task`` wrapped by prefect-dask) pickle by reference to eno's
modules, so the scheduler imports ``eno_hf`` (which registers eno's models with transformers:
torch, transformers) and Prefect when the first flow run submits work — on its event loop, so
the whole cluster stalls meanwhile: ~15-20 s on the 2-core reference machine, once per scheduler
process (measured with py-spy; ``benchmarks/embed.py``). This preload does that import when the
scheduler or worker starts instead, and on workers also the imports a first task would make
(``datasets``, ``pandas``: ~3 s). Nothing else: the numba cache is warmed per host by
``eno_hf.flows.runner.warm_dask_workers`` (workers warming at once could corrupt it, numba#10128).

The flow's own ``LocalCluster`` (``run.dask_address`` unset) needs no preload: its scheduler
runs in the flow's process, which has imported all of this already.
"""

from __future__ import annotations

import datasets  # noqa: F401  (the per-file code's Arrow types)
import pandas  # noqa: F401  (pyarrow imports it when a task first builds a table)

import eno_hf.flows.runner  # noqa: F401  (eno_hf, Prefect, prefect-dask's task wrapper, eno's per-file code)
