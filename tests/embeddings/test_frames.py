"""FrameEmbedder pass sizes: CPU passes hold CPU_PASS_S of audio, rows do not depend on the pass size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eno_hf.embeddings.frames import CPU_PASS_S, GPU_PASS_WINDOWS, EmbedderSpec, FrameEmbedder


class _Recorder(torch.nn.Module):
    """(B, window) -> (B, 3): a fixed random projection; records each pass's batch size."""

    def __init__(self, window: int) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(window, 3)
        self.passes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.passes.append(int(x.shape[0]))
        return self.proj(x)


def _embedder(window_s: float, sr: int = 100) -> FrameEmbedder:
    torch.manual_seed(0)
    window = int(window_s * sr)
    return FrameEmbedder(EmbedderSpec("hf_audio", "toy"), _Recorder(window), sr, window, window, 3)


def test_cpu_passes_hold_cpu_pass_s_of_audio_and_rows_do_not_depend_on_pass_size() -> None:
    emb = _embedder(window_s=1.0)
    rng = np.random.default_rng(0)
    waves = [rng.standard_normal(int(s * 100)).astype(np.float32) for s in (20.0, 25.0, 7.0)]
    rows = emb.embed_batch(waves)
    assert emb.windows_per_pass() == int(CPU_PASS_S)
    assert max(emb.module.passes) == int(CPU_PASS_S) and sum(emb.module.passes) == 52
    assert [r.shape for r in rows] == [(20, 3), (25, 3), (7, 3)]
    for per_pass in (1, 7):
        emb.module.passes.clear()
        other = emb.embed_batch(waves, max_windows=per_pass)
        assert max(emb.module.passes) == per_pass and sum(emb.module.passes) == 52
        for a, b in zip(rows, other, strict=True):
            torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="max_windows"):
        emb.embed_batch(waves, max_windows=0)


def test_a_window_longer_than_cpu_pass_s_runs_one_per_pass_on_cpu() -> None:
    emb = _embedder(window_s=CPU_PASS_S * 1.5, sr=10)
    assert emb.windows_per_pass() == 1
    emb.device = torch.device("cuda")  # the choice only; nothing runs
    assert emb.windows_per_pass() == GPU_PASS_WINDOWS


def test_embedding_dim_loads_each_encoder_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """``embedding_dim``: the width ``build_frame_embedder`` reports, the encoder loaded once per spec."""
    from eno_hf.embeddings import frames

    calls: list[str] = []

    class _Stub:
        def __init__(self, dim: int) -> None:
            self.dim = dim

    monkeypatch.setattr(frames, "_DIMS", {})
    monkeypatch.setattr(frames, "build_frame_embedder",
                        lambda spec: calls.append(spec.name) or _Stub(200 if spec.name == "mtat-musicnn" else 64))
    a, b = EmbedderSpec(name="mtat-musicnn", features="embedding"), EmbedderSpec(name="mtat-fcn", features="embedding")
    assert [frames.embedding_dim(s) for s in (a, b, a, b, a)] == [200, 64, 200, 64, 200]
    assert calls == ["mtat-musicnn", "mtat-fcn"]
    assert frames.embedding_dim(EmbedderSpec(name="mtat-musicnn", features="embedding", hop_s=1.5)) == 200
    assert len(calls) == 3  # another spec: loaded again
