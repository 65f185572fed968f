"""The frozen-prefix cache computed by forked worker processes (one torch thread each, one row per
call, freed memory reused) is bit-identical to one process computing batches of four rows with
torch's default threads, on real 4Q clips and the published tagger weights (the default config's
three-tagger ensemble with LoRA on the top layers)."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
import torch

from eno_hf.config import Settings
from eno_hf.models.factory import create_model
from eno_hf.training.cache import cpu_workers, encode_split
from eno_hf.training.train import _finetune

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ensemble_and_clips(fourq_clips, sota_models_dir):
    from eno_hf.audio.io import load_audio

    s = Settings()
    s.model.encoder, s.model.taggers, s.model.finetune = "tagger_ensemble", ["jamendo-fcn", "msd-fcn", "jamendo-musicnn"], "lora"
    s.model.encoder_path = sota_models_dir
    s.model.heads = [{"name": "quadrant", "kind": "singlelabel"}]
    model = _finetune(create_model(s, {"quadrant": ["Q1", "Q2", "Q3", "Q4"]}), s)
    waves, ids = [], []
    for path in fourq_clips[::3][:3]:  # three quadrants
        wave, _ = load_audio(path, 16_000)
        n = 30 * 16_000
        waves.append(np.pad(wave[:n], (0, max(0, n - len(wave)))).astype(np.float16))
        ids.append(path.stem)
    waves[-1] = waves[-1][: 24 * 16_000]  # a shorter row: FCN window zero-padded, fewer Musicnn windows
    split = datasets.Dataset.from_dict({"recording_id": ids, "waveform": waves})
    return model, split


def test_worker_processes_give_identical_prefixes(ensemble_and_clips):
    model, split = ensemble_and_clips
    if cpu_workers(model) < 2:
        pytest.skip("needs 2 usable CPU cores and fork()")
    model.encoder.train()
    threads = torch.get_num_threads()
    ref, ref_rows = encode_split(model, split, batch_rows=4, workers=1, prefix=True, progress=False)
    got, rows = encode_split(model, split, batch_rows=1, workers=2, prefix=True, progress=False)
    assert torch.get_num_threads() == threads and model.encoder.training  # this process left as it was
    assert ref.shape == got.shape and ref.shape[0] == len(split) and ref.dtype == np.float32
    assert isinstance(got, np.memmap) and isinstance(rows, np.memmap)  # on disk, not in memory
    assert np.array_equal(rows, ref_rows) and rows.tolist() == [0, 1, 2]
    assert np.array_equal(got, ref)  # bit for bit
    assert np.isfinite(got).all() and np.abs(got).sum() > 0
