"""``training.cache``: cached inputs are returned as data; the training view shares parameters and
leaves the real model (encoder, config) untouched."""

from __future__ import annotations

import datasets
import pytest
import numpy as np
import torch

from eno_hf.models import EnoForAudioTagging, EnoModelConfig
from eno_hf.training.cache import EMBEDDING_COLUMN, cache_inputs, training_view

HEADS = [{"name": "moods", "kind": "multilabel", "labels": ["a", "b"]}]


def _model() -> EnoForAudioTagging:
    torch.manual_seed(0)
    cfg = EnoModelConfig(encoder_type="mel_cnn", encoder_kwargs={"n_mels": 16, "channels": 2, "n_blocks": 1},
                         chunk_s=0.5, hidden_dim=4, heads=HEADS)
    return EnoForAudioTagging(cfg).eval()


def test_frozen_cache_returns_data_and_a_view_sharing_parameters(tmp_path):
    model = _model()
    rng = np.random.default_rng(0)
    split = datasets.Dataset.from_dict({"recording_id": ["r0", "r1"], "moods": [[0], [1]],
                                        "waveform": [rng.standard_normal(8_000).astype(np.float32),
                                                     rng.standard_normal(12_000).astype(np.float32)]})
    cached = cache_inputs(model, {"train": split}, ["recording_id", "moods"], tmp_path, "frozen", progress=False)
    train = cached.datasets["train"]
    assert list(train["recording_id"]) == ["r0", "r1", "r1"]  # one row per 0.5-s window (tail >= half kept)
    assert train[0][EMBEDDING_COLUMN].shape == (model.encoder.output_dim,)
    encoder, config = model.encoder, model.config.to_dict()
    view = training_view(model, cached)
    assert model.encoder is encoder and model.config.to_dict() == config  # not swapped in place
    assert view.encoder is cached.encoder and view.config.encoder_type == "embeddings"
    assert view.trunk is model.trunk and view.heads is model.heads
    out = view(torch.from_numpy(np.stack(train[:2][EMBEDDING_COLUMN])), labels={"moods": torch.tensor([[1.0, 0], [1, 0]])})
    out.loss.backward()
    assert model.heads["moods"].weight.grad is not None  # training the view trains the model
    with torch.no_grad():
        view.heads["moods"].bias.fill_(3.0)
    assert float(model.heads["moods"].bias.detach()[0]) == 3.0
    again = cache_inputs(model, {"train": split}, ["recording_id", "moods"], tmp_path, "frozen", progress=False)
    assert len(list(tmp_path.glob("train-*.features.npy"))) == 1  # reused from disk
    assert len(list(tmp_path.glob("train-*.arrow"))) == 1
    np.testing.assert_allclose(np.stack(again.datasets["train"][EMBEDDING_COLUMN]), np.stack(train[EMBEDDING_COLUMN]))


# --- memory-mapped caches == the in-memory computation they replaced -------------------------------

def _varied_split(n: int = 11, seed: int = 1) -> datasets.Dataset:
    """Rows of 1 to 4 windows of 0.5 s (some with a dropped short tail), with an indices mapping."""
    rng = np.random.default_rng(seed)
    lengths = [int(rng.integers(3_000, 32_000)) for _ in range(n)]
    feats = datasets.Features({"recording_id": datasets.Value("string"),
                               "moods": datasets.Sequence(datasets.ClassLabel(names=["a", "b"])),
                               "waveform": datasets.Sequence(datasets.Value("float16"))})
    split = datasets.Dataset.from_dict({"recording_id": [f"r{i}" for i in range(n)],
                                        "moods": [[i % 2] for i in range(n)],
                                        "waveform": [rng.standard_normal(m).astype(np.float16) for m in lengths]},
                                       features=feats)
    return split.shuffle(seed=3)  # rows reached through an indices mapping, as after a split


def _reference_encode(model, split, batch_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """The former in-memory ``encode_split``: every chunk kept, then concatenated."""
    from eno_hf.training.cache import _encode_rows

    waves = split.select_columns(["waveform"]).with_format("numpy")
    embed = getattr(model.encoder, "raw_features", model.encoder)
    parts = [_encode_rows(model, waves, embed, s, min(s + batch_rows, len(split)))
             for s in range(0, len(split), batch_rows)]
    return np.concatenate([f for f, _ in parts]), np.concatenate([r for _, r in parts])


def _reference_split(split, features, rows, columns) -> datasets.Dataset:
    """The former in-memory ``cached_split`` (a Python list of every vector)."""
    keep = [c for c in dict.fromkeys(columns) if c in split.column_names and c != "waveform"]
    base = split.select_columns(keep).select(rows.tolist()).flatten_indices()
    return base.add_column(EMBEDDING_COLUMN, [np.asarray(f, dtype=np.float32) for f in features]).with_format("numpy")


def test_encode_split_writes_memory_maps_equal_to_the_in_memory_result(tmp_path, monkeypatch):
    from eno_hf.training import cache

    model, split = _model(), _varied_split()
    with torch.no_grad():
        ref, ref_rows = _reference_encode(model, split, batch_rows=3)
        ref1, ref1_rows = _reference_encode(model, split, batch_rows=1)
    assert len(ref) > len(split)  # several windows per row somewhere
    feats, rows = cache.encode_split(model, split, batch_rows=3, workers=1, progress=False, out_dir=tmp_path / "a")
    assert isinstance(feats, np.memmap) and isinstance(rows, np.memmap)
    assert feats.dtype == np.float32 and rows.dtype == np.int64
    assert np.array_equal(rows, ref_rows) and np.array_equal(feats, ref)  # bit for bit
    assert (tmp_path / "a" / cache.FEATURES_FILE).is_file()

    if cache.cpu_workers(model) >= 2:  # forked workers, one chunk in flight per worker: results held back and reordered
        monkeypatch.setattr(cache, "IN_FLIGHT_PER_WORKER", 1)
        got, got_rows = cache.encode_split(model, split, batch_rows=1, workers=2, progress=False)
        assert isinstance(got, np.memmap)
        assert np.array_equal(got_rows, ref1_rows) and np.array_equal(got, ref1)


def test_in_order_writes_chunks_in_order_whatever_order_they_finish():
    from eno_hf.training.cache import _in_order

    written, advanced = [], []
    finished = [(2, (4, 6), "c"), (0, (0, 2), "a"), (3, (6, 7), "d"), (1, (2, 4), "b")]
    _in_order(iter(finished), written.append, advanced.append)
    assert written == ["a", "b", "c", "d"] and sum(advanced) == 7
    with pytest.raises(RuntimeError, match="chunk 1 missing"):
        _in_order(iter(finished[:3]), [].append, lambda k: None)


def test_npy_appender_grows_the_header_in_place(tmp_path):
    from eno_hf.training.cache import NpyAppender, open_npy

    out = NpyAppender(tmp_path / "x.npy", np.float32, (3,))
    blocks = [np.arange(6, dtype=np.float32).reshape(2, 3), np.zeros((0, 3), np.float32), np.ones((1, 3), np.float64)]
    for b in blocks:
        out.append(b)
    with pytest.raises(ValueError, match=r"expected rows of shape \(3,\), got a block of \(1, 4\)"):
        out.append(np.zeros((1, 4), np.float32))
    out.close()
    got = open_npy(tmp_path / "x.npy")
    assert isinstance(got, np.memmap) and got.dtype == np.float32
    assert np.array_equal(got, np.concatenate(blocks).astype(np.float32))
    empty = NpyAppender(tmp_path / "e.npy", np.int64)
    empty.close()
    assert open_npy(tmp_path / "e.npy").shape == (0,)


def test_cached_split_is_memory_mapped_and_equal_to_the_in_memory_dataset(tmp_path):
    from eno_hf.training.cache import cached_split

    split = _varied_split()
    rng = np.random.default_rng(5)
    rows = np.repeat(np.arange(len(split)), rng.integers(1, 4, len(split)))
    features = rng.standard_normal((len(rows), 7)).astype(np.float32)
    np.save(tmp_path / "f.npy", features)
    mapped = np.load(tmp_path / "f.npy", mmap_mode="r")
    columns = ["recording_id", "moods", "waveform", "absent"]
    ref = _reference_split(split, features, rows, columns)
    for path in (tmp_path / "train.arrow", None):
        got = cached_split(split, mapped, rows, columns, path=path)
        assert got.column_names == ref.column_names == ["recording_id", "moods", EMBEDDING_COLUMN]
        assert len(got) == len(ref) and got.format["type"] == "numpy"
        assert {c: got.features[c] for c in ("recording_id", "moods")} == {c: ref.features[c] for c in ("recording_id", "moods")}
        assert got.features[EMBEDDING_COLUMN].length == 7
        for key in (0, len(got) - 1, slice(2, 9)):
            a, b = got[key], ref[key]
            assert np.array_equal(a[EMBEDDING_COLUMN], b[EMBEDDING_COLUMN])
            assert a[EMBEDDING_COLUMN].shape == b[EMBEDDING_COLUMN].shape and a[EMBEDDING_COLUMN].dtype == np.float32
            assert np.array_equal(np.asarray(a["recording_id"]), np.asarray(b["recording_id"]))
        assert np.array_equal(np.stack(got[EMBEDDING_COLUMN]), features)
        assert [list(m) for m in got["moods"]] == [list(m) for m in ref["moods"]]
        assert bool(got.cache_files) == (path is not None)  # on disk: memory-mapped Arrow file
    doubled = cached_split(split, mapped, rows, ["recording_id"], path=tmp_path / "t2.arrow", transform=lambda b: 2 * b)
    assert np.array_equal(np.stack(doubled[EMBEDDING_COLUMN]), 2 * features)
    with pytest.raises(ValueError, match="22 feature rows but 21 row indices"):
        cached_split(split, mapped, rows[:-1], columns)
