"""QC report pieces: summaries, label balance, non-finite counts, accounting invariant, output."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from rich.console import Console

from eno_hf.data.qc import (
    QC_ROWS_NAME, NonFiniteCounter, label_summary, make_qc_report, print_qc_table, read_qc_rows,
    summarize, write_qc_report, write_qc_rows,
)


def test_summarize_ignores_none_and_non_finite() -> None:
    s = summarize([1.0, None, 3.0, float("nan"), float("-inf"), 2.0])
    assert s["n"] == 3
    assert s["mean"] == 2.0 and s["min"] == 1.0 and s["max"] == 3.0 and s["median"] == 2.0
    empty = summarize([None, float("nan")])
    assert empty["n"] == 0 and empty["mean"] is None


def test_label_summary_multilabel_and_singlelabel() -> None:
    ml = label_summary([["a", "b"], ["a"], []], ["a", "b", "c"], multilabel=True)
    assert ml["frequencies"] == {"a": 2, "b": 1, "c": 0}
    assert ml["absent"] == ["c"]
    assert ml["n_distinct"] == 2 and ml["n_labelled"] == 2 and ml["n_recordings"] == 3
    assert ml["cardinality"]["mean"] == 1.0 and ml["cardinality"]["max"] == 2.0
    sl = label_summary(["x", "x", None, "y"], ["x", "y", "z"], multilabel=False)
    assert sl["frequencies"] == {"x": 2, "y": 1, "z": 0}
    assert sl["n_labelled"] == 3
    assert math.isclose(sl["max_share"], 2 / 3, abs_tol=1e-4)


def test_non_finite_counter() -> None:
    c = NonFiniteCounter()
    c.update("log_mel", np.array([[0.0, np.nan], [np.inf, -np.inf]], dtype=np.float16))
    c.update("log_mel", np.ones(3, dtype=np.float32))
    c.update("fingerprint", np.zeros(64, dtype=np.float32))
    d = c.to_dict()
    assert d["log_mel"] == {"nan": 1, "inf": 2, "n_values": 7}
    assert d["fingerprint"] == {"nan": 0, "inf": 0, "n_values": 64}


def _report(n_inputs: int) -> dict:
    split_recs = {
        "train": [{"recording_id": "r1", "group": "g1", "n_segments": 3,
                   "labels": {"mood": ["sad"], "q": "q1"}},
                  {"recording_id": "r2", "group": "g2", "n_segments": 2,
                   "labels": {"mood": ["happy", "sad"], "q": "q2"}}],
        "test": [{"recording_id": "r3", "group": "g2", "n_segments": 1,
                  "labels": {"mood": [], "q": None}}],
    }
    return make_qc_report(
        dataset="toy", version="v1", n_inputs=n_inputs,
        written=[{"recording_id": r, "n_segments": n, "split": s}
                 for r, n, s in (("r1", 3, "train"), ("r2", 2, "train"), ("r3", 1, "test"))],
        rejected=[{"path": "/x/bad.flac", "recording_id": "r4", "reason": "undecodable",
                   "detail": "not audio"}],
        split_recordings=split_recs,
        tasks={"mood": ("multilabel", ["happy", "sad"]), "q": ("singlelabel", ["q1", "q2"])},
        non_finite={"waveform": {"nan": 0, "inf": 0, "n_values": 10}},
        conditioning=[{"lufs_before": -30.0, "lufs_after": -18.0, "gain_db": 12.0,
                       "clipping_prevented": False},
                      {"lufs_before": -8.0, "lufs_after": -12.0, "gain_db": -4.0,
                       "clipping_prevented": True}],
    )


def test_make_qc_report_accounting_and_splits() -> None:
    rep = _report(4)
    acc = rep["accounting"]
    assert acc["invariant_holds"] is True
    assert acc["statement"] == "n_inputs (4) == n_written (3) + n_rejected (1)"
    assert rep["rejected_by_reason"] == {"undecodable": 1}
    assert rep["splits"]["train"] == {"n_recordings": 2, "n_segments": 5, "n_groups": 2}
    assert rep["group_overlap"] == {"train|test": ["g2"]}
    assert rep["labels"]["test"]["mood"]["absent"] == ["happy", "sad"]
    assert rep["labels"]["train"]["q"]["frequencies"] == {"q1": 1, "q2": 1}
    assert rep["loudness"]["clipping_prevented"] == 1
    assert rep["loudness"]["gain_db"]["n"] == 2

    bad = _report(5)
    assert bad["accounting"]["invariant_holds"] is False
    assert "!=" in bad["accounting"]["statement"]


def test_write_and_print(tmp_path) -> None:
    rep = _report(4)
    rep["extra"] = {"np_int": np.int64(3), "np_nan": np.float32("nan")}
    p = write_qc_report(rep, tmp_path / "sub" / "qc_report.json")
    back = json.loads(p.read_text())
    assert back["accounting"] == rep["accounting"]
    assert back["extra"] == {"np_int": 3, "np_nan": None}
    console = Console(record=True, width=200)
    print_qc_table(rep, console=console)
    text = console.export_text()
    assert "n_inputs (4) == n_written (3) + n_rejected (1)" in text
    assert "undecodable" in text and "train|test" in text


def test_report_keeps_no_per_input_rows() -> None:
    rep = _report(4)
    assert "written" not in rep and len(rep["rejected"]) == 1
    counted = make_qc_report(dataset="toy", version="v1", n_inputs=4, n_written=3,
                             rejected=rep["rejected"], split_recordings={}, tasks={},
                             non_finite={}, conditioning=[])
    assert counted["accounting"]["statement"] == rep["accounting"]["statement"]
    with pytest.raises(ValueError, match="written or n_written"):
        make_qc_report(dataset="toy", version="v1", n_inputs=4, rejected=[],
                       split_recordings={}, tasks={}, non_finite={}, conditioning=[])


def test_qc_rows_stream_round_trip(tmp_path) -> None:
    written = ({"recording_id": f"r{i}", "split": "train", "n_segments": i} for i in range(1000))
    rejected = [{"path": "/x/bad\udcff.flac", "recording_id": "r\u00e9", "reason": "undecodable",
                 "detail": "not audio"}]
    n = write_qc_rows(tmp_path / "v" / QC_ROWS_NAME, written, rejected)  # a generator: one pass
    assert n == 1001
    rows = list(read_qc_rows(tmp_path / "v"))  # the version folder names its file
    assert len(rows) == 1001 and rows[0] == {"status": "written", "recording_id": "r0",
                                             "split": "train", "n_segments": 0}
    assert [r["recording_id"] for r in read_qc_rows(tmp_path / "v", "rejected")] == ["r\u00e9"]
    assert sum(r["n_segments"] for r in read_qc_rows(tmp_path / "v" / QC_ROWS_NAME, "written")) \
        == sum(range(1000))
    assert len((tmp_path / "v" / QC_ROWS_NAME).read_text().splitlines()) == 1001
    with pytest.raises(FileNotFoundError):
        next(read_qc_rows(tmp_path / "elsewhere"))
