"""flows/workspace.py: the tasks run the library steps (``task.fn``; no Prefect server)."""

from __future__ import annotations


def test_flow_tasks_run_the_library_steps(make_settings):
    from flows.workspace import create_task, synthesize_task, validate_task

    s = make_settings("workspace.synth.per_category=1")
    out = create_task.fn(s)
    assert out["samples"] == 0
    assert synthesize_task.fn(s)["created"] == 4
    rep = validate_task.fn(s)
    assert rep["counts"]["by_origin"] == {"synthetic": 4}
    assert "features extracted" in {c["check"] for c in rep["checks"] if not c["passed"]}
