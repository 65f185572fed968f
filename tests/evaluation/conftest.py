"""Fixtures for evaluation tests: a tiny synthetic DatasetDict whose features are correlated with labels."""

from __future__ import annotations

import numpy as np
import pytest

MOODS = ["calm", "dark", "happy", "rare_never_in_train"]
QUADRANTS = ["Q1", "Q2", "Q3", "Q4"]


def make_split(n_rec: int, seed: int, segs: int = 2, n_mfcc: int = 4, signal: float = 2.0,
               absent_tag: bool = True, missing_first: bool = True):
    """``n_rec`` recordings × ``segs`` segments. Tag j is on when latent z_j > 0; fingerprint dims
    0..2 and the MFCC mean carry z (times ``signal``) plus noise. The quadrant is argmax of z[:4]."""
    from datasets import ClassLabel, Dataset, Features, List, Value

    rng = np.random.default_rng(seed)
    rows = {"segment_id": [], "recording_id": [], "moods": [], "quadrant": [], "valence": [],
            "fingerprint": [], "mfcc": []}
    for r in range(n_rec):
        z = rng.normal(size=4)
        tags = [j for j in range(3) if z[j] > 0]
        if not absent_tag:
            tags += [3] if z[3] > 1.0 else []
        quadrant = int(np.argmax(z))
        for s in range(segs):
            fp = rng.normal(size=64).astype(np.float32)
            fp[:4] += signal * z
            frames = 5 + s  # ragged frame counts across segments
            mf = rng.normal(size=(n_mfcc, frames)).astype(np.float32) + signal * z[:n_mfcc, None]
            rows["segment_id"].append(f"r{seed}_{r:03d}_seg{s:03d}")
            rows["recording_id"].append(f"r{seed}_{r:03d}")
            rows["moods"].append(None if r == 0 and missing_first else tags)  # missing moods
            rows["quadrant"].append(quadrant)
            rows["valence"].append(float(z[0]))
            rows["fingerprint"].append(fp.tolist())
            rows["mfcc"].append(mf.tolist())
    features = Features({
        "segment_id": Value("string"), "recording_id": Value("string"),
        "moods": List(ClassLabel(names=MOODS)), "quadrant": ClassLabel(names=QUADRANTS),
        "valence": Value("float32"),
        "fingerprint": List(Value("float32")), "mfcc": List(List(Value("float32"))),
    })
    return Dataset.from_dict(rows, features=features)


def make_dataset_dict(n_train: int = 60, n_val: int = 30, n_test: int = 40, missing_first: bool = True):
    from datasets import DatasetDict

    return DatasetDict({
        "train": make_split(n_train, 1, missing_first=missing_first),
        "validation": make_split(n_val, 2, absent_tag=False, missing_first=missing_first),
        "test": make_split(n_test, 3, absent_tag=False, missing_first=missing_first),
    })


HEADS = [
    {"name": "moods", "kind": "multilabel"},
    {"name": "quadrant", "kind": "singlelabel"},
    {"name": "valence", "kind": "regression"},
    {"name": "emb", "kind": "projection"},
]


@pytest.fixture(scope="module")
def synthetic_dd():
    """Train 60 / validation 30 / test 40 recordings, 2 segments each (see ``make_split``)."""
    return make_dataset_dict()


@pytest.fixture()
def heads():
    """Head specs over the synthetic columns (the projection head must be ignored)."""
    return [dict(h) for h in HEADS]


@pytest.fixture()
def vocab():
    """``{"moods": MOODS, "quadrant": QUADRANTS}`` of the synthetic dataset."""
    return {"moods": list(MOODS), "quadrant": list(QUADRANTS)}


@pytest.fixture()
def make_dd():
    """The ``make_dataset_dict`` factory (for tests that need other sizes)."""
    return make_dataset_dict
