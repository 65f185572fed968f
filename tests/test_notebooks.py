"""notebooks/01-04 execute top to bottom (nbclient) on a small eno-style dataset; outputs are stripped in git."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NAMES = ["01_data_exploration", "02_feature_engineering", "03_model_prototyping", "04_evaluation"]


def _small_dataset(path: Path, n: int = 48) -> Path:
    """A DatasetDict with the columns ``eno build`` writes for 4Q (random features, 16 artists)."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Value

    rng = np.random.default_rng(0)
    moods, genres = [f"mood{i}" for i in range(8)], ["pop/rock", "jazz", "electronic"]
    feats = Features({
        "segment_id": Value("string"), "recording_id": Value("string"), "group": Value("string"),
        "segment_start_s": Value("float32"), "segment_end_s": Value("float32"),
        "quadrant": ClassLabel(names=["q1", "q2", "q3", "q4"]),
        "descriptors": List(ClassLabel(names=moods)), "genres": List(ClassLabel(names=genres)),
        "fingerprint": List(Value("float32"), length=64), "mfcc": List(List(Value("float32"))),
        "log_mel": List(List(Value("float16"))),
    })
    quadrant = np.arange(n) % 4
    rows = {
        "segment_id": [f"r{i:03d}-0" for i in range(n)], "recording_id": [f"r{i:03d}" for i in range(n)],
        "group": [f"artist{i % 16}" for i in range(n)], "segment_start_s": [0.0] * n, "segment_end_s": [30.0] * n,
        "quadrant": quadrant.tolist(),
        "descriptors": [sorted({int(q), int(rng.integers(0, 8))}) for q in quadrant],
        "genres": [[int(rng.integers(0, 3))] for _ in range(n)],
        "fingerprint": (rng.standard_normal((n, 64)) + quadrant[:, None]).astype(np.float32).tolist(),
        "mfcc": rng.standard_normal((n, 20, 30)).astype(np.float32).tolist(),
        "log_mel": rng.standard_normal((n, 16, 30)).astype(np.float16).tolist(),
    }
    full = Dataset.from_dict(rows, features=feats)
    split = {"train": range(0, 32), "validation": range(32, 40), "test": range(40, n)}
    DatasetDict({k: full.select(v) for k, v in split.items()}).save_to_disk(str(path))
    return path


@pytest.fixture(scope="module")
def dataset_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _small_dataset(tmp_path_factory.mktemp("nb") / "4q" / "v1")


def test_outputs_are_stripped() -> None:
    for name in NAMES:
        nb = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert cell.get("outputs") == [] and cell.get("execution_count") is None, name


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.slow
def test_notebook_executes(name: str, dataset_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    root = Path(__file__).resolve().parent.parent
    monkeypatch.setenv("ENO_DATASET", str(dataset_path))
    monkeypatch.setenv("ENO_DATA_ROOT", str(tmp_path))
    monkeypatch.setenv("ENO_FOLDS", "2")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert str(dataset_path) in text  # the parameter cell read the dataset it was given
