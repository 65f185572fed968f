"""eno_hf.jobs: every job an ordered tuple of uniquely named stages behind one runner seam; markers;
which job a config runs. The stages run on tiny fakes here (the real work is faked where each
stage calls it), so what is checked is the order, the hand-over between stages and the reuse."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from eno_hf.config import builtin_configs, load_config
from eno_hf.jobs import JOBS, Job, Stage, job_name, job_of, read_marker, run_directly, run_stages, write_marker

EXPECTED_STAGES = {
    "tagging": ["dataset", "embed", "baselines", "train", "evaluate", "register", "tag"],
    "performance": ["inputs", "transcribe", "select", "cross_validate", "fit", "register", "tag"],
    "clarity": ["init", "generate", "scan", "normalize", "verify", "extract", "analyze", "train", "export"],
    "workspace": ["create", "import", "annotate", "extract", "augment", "synthesize", "extract_new", "split",
                  "validate"],
}


def recording(seen: list[str]):
    """A runner that records each stage's name, then runs it in this process."""

    def runner(stage, settings, state):
        seen.append(stage.name)
        return run_directly(stage, settings, state)

    return runner


def test_every_job_is_a_tuple_of_uniquely_named_stages() -> None:
    assert set(JOBS) == set(EXPECTED_STAGES)
    for name, job in JOBS.items():
        assert isinstance(job, Job) and job.name == name
        assert isinstance(job.stages, tuple) and all(isinstance(s, Stage) for s in job.stages)
        assert job.stage_names == EXPECTED_STAGES[name]
        assert len(set(job.stage_names)) == len(job.stage_names)
        assert all(s.resource in {"cpu", "gpu", "io"} for s in job.stages)
    with pytest.raises(ValueError, match="not unique"):
        Job("twice", (Stage("a", run_directly), Stage("a", run_directly)), dict, lambda s, st: st)
    with pytest.raises(ValueError, match="unknown stage"):
        JOBS["clarity"].select(["trian"])
    assert [s.name for s in JOBS["clarity"].select(["export", "scan"])] == ["scan", "export"]  # job order


def test_marker_with_another_key_is_ignored(tmp_path: Path) -> None:
    marker = tmp_path / "deep" / "stage.json"
    write_marker(marker, "key-a", {"x": 1, "ratio": float("nan")})
    info = read_marker(marker, "key-a")
    assert info["x"] == 1 and info["key"] == "key-a" and info["finished"] and info["ratio"] is None  # strict JSON
    assert read_marker(marker, "key-b") is None
    assert read_marker(tmp_path / "missing.json", "key-a") is None
    marker.write_text("{not json")
    assert read_marker(marker, "key-a") is None


@pytest.mark.parametrize("name", sorted(builtin_configs()))
def test_job_of_each_builtin_config(name: str) -> None:
    expected = {"percepiano": "performance", "clarity": "clarity", "workspace": "workspace"}.get(name, "tagging")
    s = load_config(name)
    assert job_of(s).name == expected
    if name in ("percepiano", "clarity", "workspace"):
        assert s.job == expected  # set explicitly in the config


def test_job_is_inferred_when_unset() -> None:
    s = load_config("percepiano", ["job=null"])
    assert s.job is None and job_name(s) == "performance"  # a performance section
    assert job_name(load_config("small")) == "tagging"
    assert job_name(load_config("small", ["job=clarity"])) == "clarity"
    from eno_hf.config import ConfigError

    with pytest.raises(ConfigError, match="job"):
        load_config("small", ["job=mixing"])


def test_tagging_stages_in_order_through_the_runner() -> None:
    seen: list[str] = []

    def runner(stage, settings, state):
        seen.append(stage.name)
        return {}

    s = load_config("small", ["embed.use_for_training=true", "run.tag_files=[a.mp3]"])
    run_stages(JOBS["tagging"], s, runner=runner)
    assert seen == EXPECTED_STAGES["tagging"]


# ----------------------------------------------------------------------------- clarity
def test_clarity_stages_hand_over_results(monkeypatch, tmp_path: Path) -> None:
    from eno_hf.clarity import job as C

    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"families": {"rf": {"test": {"acc": 0.5}, "cv": {"mean": {}, "ci95": {}}}}}))
    calls: list[tuple[str, object]] = []

    def fake(name, out):
        def step(s, *args):
            calls.append((name, args))
            return {**out, "elapsed_s": 0.0, "cache_hit": False}
        return step

    monkeypatch.setattr(C, "step_init", fake("init", {}))
    monkeypatch.setattr(C, "step_generate", fake("generate", {}))
    monkeypatch.setattr(C, "step_scan", lambda s: {"files": 2, "rejected": [{"file": "x", "reason": "bad_name"}],
                                                   "counts": {}, "validation_ok": True, "manifest": "m",
                                                   "validation": "v", "_entries": ["e1", "e2"],
                                                   "elapsed_s": 0.0, "cache_hit": False})
    monkeypatch.setattr(C, "step_normalize", fake("normalize", {"normalization_log": "n", "counts": {}}))
    monkeypatch.setattr(C, "step_verify", fake("verify", {"report": "r", "checked": 1, "passed": 1,
                                                          "max_abs_error_lu": 0.1, "failures": [], "unverifiable": []}))
    monkeypatch.setattr(C, "step_extract", fake("extract", {"features_csv": "c", "features_parquet": "p",
                                                            "feature_columns": [], "target_columns": [],
                                                            "feature_metadata": "fm", "rows": 1, "rejected": []}))
    monkeypatch.setattr(C, "step_analyze", fake("analyze", {"report": "a", "plots": {}, "nonfinite_total": 0}))
    monkeypatch.setattr(C, "step_train", fake("train", {"metrics": str(metrics)}))
    monkeypatch.setattr(C, "step_export", fake("export", {"hub_dir": "h", "model_card": "mc", "clearml": None,
                                                          "onnx": {}, "parity": {}}))
    seen: list[str] = []
    progress: list[str] = []
    s = load_config("clarity", [f"paths.data_root={tmp_path}"])
    res = C.run_clarity(s, skip_generate=True, runner=recording(seen), progress=lambda n, r: progress.append(n))
    assert seen == progress == [n for n in EXPECTED_STAGES["clarity"] if n != "generate"]
    by_name = dict(calls)
    assert by_name["normalize"] == (["e1", "e2"],)  # scan's entries handed over
    assert by_name["verify"][0]["normalization_log"] == "n" and by_name["extract"][0] == ["e1", "e2"]
    assert by_name["export"][0]["metrics"] == str(metrics)
    assert list(res["steps"]) == seen and res["model"] == "h" and res["files"] == 2
    assert res["rejected"] == [{"stage": "scan", "file": "x", "reason": "bad_name"}]
    assert res["metrics"]["rf"]["test"] == {"acc": 0.5}


def test_clarity_step_marker_reuse_and_key(tmp_path: Path) -> None:
    """``.cache/{step}.json``: a result is reused only under the same key (and existing outputs);
    a cache written before the job model (``{key, result}``) still counts."""
    from eno_hf.clarity import job as C

    p = C.paths(load_config("clarity", [f"paths.data_root={tmp_path}"]))
    out = tmp_path / "out.txt"
    out.write_text("x")
    runs = []

    def compute():
        runs.append(1)
        return {"file": str(out)}

    first = C._cached(p, "step", "k1", compute, lambda r: [r["file"]])
    again = C._cached(p, "step", "k1", compute, lambda r: [r["file"]])
    assert (first["cache_hit"], again["cache_hit"], len(runs)) == (False, True, 1)
    assert C._cached(p, "step", "k2", compute, lambda r: [r["file"]])["cache_hit"] is False and len(runs) == 2
    (p.cache / "old.json").write_text(json.dumps({"key": "k0", "result": {"file": str(out), "elapsed_s": 1.0}}))
    assert C._cached(p, "old", "k0", compute, lambda r: [r["file"]])["cache_hit"] is True and len(runs) == 2


# ----------------------------------------------------------------------------- workspace
def test_workspace_stages_in_order_on_fakes(monkeypatch, tmp_path: Path) -> None:
    from eno_hf.workspace import steps as W

    for name in ("create", "import", "annotate", "extract", "augment", "synthesize", "split"):
        monkeypatch.setattr(W, f"step_{name}", lambda s, *a, _n=name, **k: {"step": _n})
    report = SimpleNamespace(to_dict=lambda: {"passed": True, "scores": {}})
    monkeypatch.setattr(W, "step_validate", lambda s: report)
    seen: list[str] = []
    s = load_config("workspace", [f"paths.data_root={tmp_path}"])
    state = run_stages(JOBS["workspace"], s, state=W.WorkspaceState(), runner=recording(seen))
    assert seen == EXPECTED_STAGES["workspace"]
    assert state.validation is report and list(state.summary) == EXPECTED_STAGES["workspace"][:-1]
    assert state.summary["extract_new"] == {"step": "extract"}
    out = W.workspace_result(s, state)
    assert out["validate"] == {"passed": True, "scores": {}}
    tasks = {st.name: st.task_name for st in W.WORKSPACE.stages}
    assert tasks["extract_new"] == tasks["extract"] == "workspace-extract"


# ----------------------------------------------------------------------------- performance
def _perf_fakes(monkeypatch, calls: dict[str, int]):
    from eno_hf.embeddings.frames import EmbedderSpec
    from eno_hf.performance import job as PP
    from eno_hf.performance import trainer
    from eno_hf.performance.selection import EmbedderInputs, Selection

    rows = [SimpleNamespace(segment_id=f"s{i}", piece=f"p{i % 2}", performer=f"a{i % 3}", passage=f"q{i % 2}",
                            labels=np.full(19, i / 10)) for i in range(6)]
    spec = EmbedderSpec(name="fake", features="embedding")
    inp = EmbedderInputs(spec, SimpleNamespace(dim=4))

    def count(name):
        calls[name] = calls.get(name, 0) + 1

    def inputs(cfg, rows_, work):
        count("embed")
        return {spec.key: inp}, rows

    def select(cfg, inputs_, rows_, stats, idx, tiers=None):
        count("select")
        return Selection(inputs_[spec.key], cfg.tiers, {"embedder": {"chosen": spec.key, "n": len(rows_)}, "tiers": {}})

    def cv(cfg, data, rows_, stats, protocol, tiers=None, transcription=None):
        count("cv")
        assert transcription is not None and transcription.shape == (len(rows_), 3)
        return {"protocol": protocol, "folds": 2, "n": len(rows_),
                "model": {"mean_r2": 0.2, "mean_pairwise_accuracy": 0.6, "interval": {"low": 0.1, "high": 0.3}},
                "baseline_ridge_midi": {"mean_r2": 0.1}, "baseline_mean": {"mean_r2": float("nan")},
                "counts": {np.int64(3): np.float32(0.5)}}

    class Model:
        config = SimpleNamespace(ridge_selection={"ridge": {"alpha": 1.0}})

        def save_pretrained(self, d):
            Path(d).mkdir(parents=True, exist_ok=True)
            (Path(d) / "config.json").write_text("{}")
            (Path(d) / "model.safetensors").write_bytes(b"w")

    def fit(*a, **k):
        count("fit")
        return Model()

    def tag(paths, model, render_cache=None):
        count("tag")
        return [{"path": str(p), "model": str(model)} for p in paths]

    import eno_hf.inference.performance as inference

    monkeypatch.setattr(PP, "select_rows", lambda cfg: rows)
    monkeypatch.setattr(PP, "embedder_inputs", inputs)
    monkeypatch.setattr(PP, "midi_stats", lambda rows_, work: np.zeros((len(rows_), 3)))
    monkeypatch.setattr(PP, "unavailable_reason", lambda: None)
    monkeypatch.setattr(PP, "model_id", lambda: "fake-transcriber")

    def transcription_stats(rows_, work, soundfont, workers=1):
        count("transcribe")  # the real one reads its transcription_statistics.json on a re-run
        return np.ones((len(rows_), 3)), []

    monkeypatch.setattr(PP, "transcription_stats", transcription_stats)
    monkeypatch.setattr(PP, "select_procedure", select)
    monkeypatch.setattr(PP, "cross_validate", cv)
    monkeypatch.setattr(PP, "build_model_config", lambda *a, **k: SimpleNamespace(midi_statistics=[]))
    monkeypatch.setattr(trainer, "fit_tiers", fit)
    monkeypatch.setattr(inference, "tag_performance_paths", tag)


def test_performance_stages_in_order_and_reused_when_unchanged(monkeypatch, tmp_path: Path) -> None:
    from eno_hf.performance import job as PP

    calls: dict[str, int] = {}
    _perf_fakes(monkeypatch, calls)
    s = load_config("percepiano", [f"paths.data_root={tmp_path}", f"performance.tag_files=[{tmp_path / 'a.mid'}]"])
    seen: list[str] = []
    res = PP.run_performance(s, runner=recording(seen))
    assert seen == EXPECTED_STAGES["performance"]
    assert calls == {"embed": 1, "transcribe": 1, "select": 1, "cv": 2, "fit": 1, "tag": 1}  # cv: performer, piece
    report = res.report
    assert list(report["protocols"]) == ["performer", "piece"]
    assert report["embedder"] == report["selection"]["chosen"] and report["n"] == 6
    assert report["ridge_selection"] == {"ridge": {"alpha": 1.0}} and "runtime_s" in report
    work = tmp_path / "performance" / "percepiano"
    on_disk = json.loads((work / "report.json").read_text())  # strict JSON: NaN as null
    assert on_disk["protocols"]["piece"]["baseline_mean"]["mean_r2"] is None
    assert (res.model_dir / "README.md").read_text().startswith("# eno-piano")
    info = json.loads((res.registered / "registry.json").read_text())
    assert info["name"] == "eno-piano" and res.registered.name == "v1"
    assert res.tags == [{"path": str(tmp_path / "a.mid"), "model": str(res.registered)}]

    seen.clear()
    again = PP.run_performance(s, runner=recording(seen))
    assert seen == EXPECTED_STAGES["performance"]
    assert calls == {"embed": 2, "transcribe": 2, "select": 1, "cv": 2, "fit": 1, "tag": 2}  # inputs, transcribe, tag
    assert again.registered == res.registered  # the unchanged model is not registered twice
    assert math.isnan(again.report["protocols"]["piece"]["baseline_mean"]["mean_r2"])  # NaN kept in the stage cache
    assert again.report["protocols"]["performer"]["model"] == report["protocols"]["performer"]["model"]
    assert again.report["protocols"]["performer"]["counts"] == {"3": 0.5}  # numpy keys/values stored as JSON
    assert again.report["ridge_selection"] == report["ridge_selection"]
    assert again.report["transcription"] == {"model": "fake-transcriber", "soundfont": "fluidr3", "without_notes": []}

    # other transcription statistics (another transcriber, say): the CV and the final model run again
    monkeypatch.setattr(PP, "transcription_stats", lambda rows_, *a, **k: (np.full((len(rows_), 3), 2.0), []))
    PP.run_performance(s)
    assert calls["select"] == 1 and calls["cv"] == 4 and calls["fit"] == 2

    # a setting every stage's result depends on: select, CV and the final model run again
    s2 = load_config("percepiano", [f"paths.data_root={tmp_path}", "performance.n_boot=7",
                                    f"performance.tag_files=[{tmp_path / 'a.mid'}]"])
    third = PP.run_performance(s2)
    assert calls["select"] == 2 and calls["cv"] == 6 and calls["fit"] == 3  # n_boot is part of every key
    assert third.registered.name == "v3"


def test_performance_stage_marker_with_another_key_is_ignored(monkeypatch, tmp_path: Path) -> None:
    from eno_hf.performance import job as PP

    calls: dict[str, int] = {}
    _perf_fakes(monkeypatch, calls)
    s = load_config("percepiano", [f"paths.data_root={tmp_path}", "performance.tag_files=[]"])
    PP.run_performance(s)
    marker = tmp_path / "performance" / "percepiano" / "stages" / "select.json"
    info = json.loads(marker.read_text())
    info["key"] = "another"
    marker.write_text(json.dumps(info))
    PP.run_performance(s)
    # select ran again; the nested CV does not build on its choice, and the same choice came out
    assert calls["select"] == 2 and calls["cv"] == 2 and calls["fit"] == 1
    assert "tag" not in calls  # the tag stage is off without files


@pytest.mark.parametrize("config, job", [("percepiano", "performance"), ("clarity", "clarity"),
                                         ("workspace", "workspace")])
def test_eno_run_runs_the_configs_job(monkeypatch, config: str, job: str) -> None:
    """``eno run`` dispatches on ``job_of(settings)`` and passes ``--prefect/--no-prefect`` on."""
    from typer.testing import CliRunner

    import eno_hf.clarity.cli
    import eno_hf.performance.cli
    import eno_hf.workspace.cli
    from eno_hf.cli import app

    seen: list[tuple[str, str, bool, bool]] = []
    for name, module, attr in (("performance", eno_hf.performance.cli, "run_performance_command"),
                               ("clarity", eno_hf.clarity.cli, "run_clarity_command"),
                               ("workspace", eno_hf.workspace.cli, "run_workspace_command")):
        monkeypatch.setattr(module, attr, lambda s, json_out=False, prefect=False, _n=name:
                            seen.append((_n, job_name(s), json_out, prefect)))
    for flag, prefect in (("--prefect", True), ("--no-prefect", False)):
        res = CliRunner().invoke(app, ["run", "--config", config, "--json", flag])
        assert res.exit_code == 0, res.output
        assert seen.pop() == (job, job, True, prefect)
    res = CliRunner().invoke(app, ["run", "--config", "small", "--set", f"job={job}", "--no-prefect"])
    assert res.exit_code == 0 and seen == [(job, job, False, False)]
