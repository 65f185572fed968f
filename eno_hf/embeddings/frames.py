"""Frame-level embedders: a mono waveform -> ``(frames, dim)`` float32, one row per window.

An embedder wraps a pretrained encoder from ``eno_hf.models.encoders`` and cuts the clip into
consecutive windows of the encoder's native length (``hop_s`` apart; a clip shorter than one
window is zero-padded to one window; an incomplete tail window is zero-padded when it holds at
least half a window of audio, dropped otherwise). Each window becomes one row, so the output is
the ``{segment_id}.pt`` layout of the embeddings-only workflow (``(frames, dim)``; pooling over
frames is part of the downstream model).

Specs (``EmbedderSpec``):

* ``kind="sota_tagger"``, ``name`` = a published Won et al. (2020) tagger (``mtat-musicnn``,
  ``msd-fcn``, ...), ``features``: ``"embedding"`` (the penultimate layer, ``output_dim``) or
  ``"prefix+embedding"`` (for Musicnn the max+mean pooled front/mid-end features, 1,506 dims, then
  the 200-d embedding: the multi-layer transfer features of Choi et al. 2017, arXiv:1703.09179;
  for FCN/CRNN the ``layer4`` map mean- and max-pooled over frequency and time, 256 dims, then the
  embedding).
* ``kind="hf_audio"``, ``path`` = a local transformers checkpoint directory (no network), pooled
  per window by the encoder (``pooling``).
* ``kind="tagger_ensemble"``, ``name`` = tagger names joined by ``+`` (e.g.
  ``jamendo-fcn+msd-fcn+jamendo-musicnn``, the encoder of ``configs/small.yaml``): one row per
  30-s window, the unstandardized ``TaggerEnsembleEncoder.raw_features`` (each tagger's window
  embeddings mean+max pooled inside the 30-s window, concatenated).

On a GPU (``FrameEmbedder.to("cuda", autocast="bf16")``) the forward passes run under
``torch.autocast`` (bf16 or fp16); on CPU never (outputs are float32 either way).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["CPU_PASS_S", "GPU_PASS_WINDOWS", "EmbedderSpec", "FrameEmbedder", "build_frame_embedder", "cut_windows",
           "embedding_dim"]

CPU_PASS_S = 30.0
"""Seconds of audio per forward pass on CPU. Measured with ``benchmarks/embed.py``'s encoder
(the default ensemble, one torch thread, 16 4q-dev clips, medians of 3, 2026-12-04): time per clip
grows with the windows run together — 2, 4 and 8 30-s windows per pass were 3 %, 5 % and 23 %
slower than one (activations leave the caches) — so on CPU a pass holds at most ``CPU_PASS_S``
of windows (at least one window)."""

GPU_PASS_WINDOWS = 64
"""Windows per forward pass on CUDA (batching is what fills a GPU)."""


@dataclass(frozen=True)
class EmbedderSpec:
    """Which encoder makes the frame embeddings (see the module docstring).

    Attributes:
        kind: ``"sota_tagger"``, ``"hf_audio"`` or ``"tagger_ensemble"``.
        name: tagger name (``sota_tagger``), ``+``-joined names (``tagger_ensemble``) or a label (``hf_audio``).
        features: ``"embedding"`` or ``"prefix+embedding"`` (``sota_tagger`` only).
        path: checkpoint directory for ``hf_audio``; models directory for ``sota_tagger``
            (default ``../shared/models/sota-music-tagging`` resolution of ``load_sota_tagger``).
        hop_s: window hop in seconds (``None``: the window length, i.e. no overlap).
        pooling: ``hf_audio`` pooling inside a window.
    """

    kind: str = "sota_tagger"
    name: str = "mtat-musicnn"
    features: str = "prefix+embedding"
    path: str | None = None
    hop_s: float | None = None
    pooling: str = "mean"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def key(self) -> str:
        """Short stable identifier, e.g. ``sota_tagger-mtat-musicnn-prefix+embedding``."""
        hop = f"-hop{self.hop_s:g}" if self.hop_s else ""
        return f"{self.kind}-{self.name}-{self.features}{hop}"


def cut_windows(waveform: np.ndarray | Tensor, window: int, hop: int) -> Tensor:
    """``(samples,)`` -> ``(frames, window)`` float32 windows (see the module docstring).

    Raises:
        ValueError: not 1-D, empty, or ``window``/``hop`` not positive.
    """
    x = torch.as_tensor(np.asarray(waveform, dtype=np.float32))
    if x.ndim != 1 or x.numel() == 0:
        raise ValueError(f"expected a non-empty 1-D waveform, got shape {tuple(x.shape)}")
    if window <= 0 or hop <= 0:
        raise ValueError(f"window and hop must be > 0, got {window}, {hop}")
    n = x.numel()
    if n < window:
        return torch.nn.functional.pad(x, (0, window - n))[None]
    starts = list(range(0, n - window + 1, hop))
    tail = starts[-1] + hop
    if tail < n and n - tail >= window // 2:
        starts.append(tail)
    padded = torch.nn.functional.pad(x, (0, max(0, starts[-1] + window - n)))
    return torch.stack([padded[s: s + window] for s in starts])


class FrameEmbedder:
    """A frozen encoder that turns a waveform into ``(frames, dim)`` float32 embeddings.

    Attributes:
        spec: the ``EmbedderSpec``. sample_rate: input rate in Hz. window / hop: in samples.
        dim: embedding size per frame.
    """

    def __init__(self, spec: EmbedderSpec, module: torch.nn.Module, sample_rate: int, window: int, hop: int,
                 dim: int) -> None:
        self.spec, self.module = spec, module.eval()
        self.sample_rate, self.window, self.hop, self.dim = int(sample_rate), int(window), int(hop), int(dim)
        self.device = torch.device("cpu")
        self.autocast: torch.dtype | None = None

    def to(self, device: str | torch.device, autocast: str | None = None) -> FrameEmbedder:
        """Move the encoder to ``device``; ``autocast`` (``"bf16"``/``"fp16"``) applies on CUDA only.

        Raises:
            ValueError: unknown ``autocast``.
        """
        dtypes = {None: None, "none": None, "bf16": torch.bfloat16, "fp16": torch.float16}
        if autocast not in dtypes:
            raise ValueError(f"autocast must be bf16, fp16 or none, got {autocast!r}")
        self.device = torch.device(device)
        self.module.to(self.device)
        self.autocast = dtypes[autocast] if self.device.type == "cuda" else None
        return self

    def _rows(self, windows: Tensor) -> Tensor:
        m = self.module
        if self.spec.kind == "sota_tagger":
            pre = m.prefix(windows)
            emb = m.suffix(pre)
            if self.spec.features == "embedding":
                return emb
            if pre.ndim > 2:  # a (B, C, ...) map (FCN/CRNN layer4): mean ++ max over the other axes
                dims = tuple(range(2, pre.ndim))
                pre = torch.cat([pre.mean(dim=dims), pre.amax(dim=dims)], dim=1)
            return torch.cat([pre, emb], dim=1)
        if self.spec.kind == "tagger_ensemble":
            return m.raw_features(windows)
        return m(windows)

    def _forward(self, chunk: Tensor) -> Tensor:
        chunk = chunk.to(self.device)
        if self.autocast is None:
            return self._rows(chunk).float().cpu()
        with torch.autocast(self.device.type, dtype=self.autocast):
            return self._rows(chunk).float().cpu()

    def windows_per_pass(self) -> int:
        """Windows per forward pass on this device: ``GPU_PASS_WINDOWS`` on CUDA, else as many as
        fit in ``CPU_PASS_S`` seconds (at least 1)."""
        if self.device.type == "cuda":
            return GPU_PASS_WINDOWS
        return max(1, int(CPU_PASS_S * self.sample_rate) // self.window)

    @torch.inference_mode()
    def embed_batch(self, waveforms: list[np.ndarray], max_windows: int | None = None) -> list[Tensor]:
        """Embed several clips at once: their windows are cut, concatenated and run in passes of
        ``max_windows`` (default ``windows_per_pass()``: 64 on CUDA, ``CPU_PASS_S`` of audio on CPU).

        Args:
            waveforms: ``(samples,)`` float32 mono clips at ``sample_rate``.
            max_windows: windows per forward pass (``None``: the device default).

        Returns:
            one ``(frames_i, dim)`` float32 tensor per clip (the same rows, up to float rounding,
            whatever the pass size).

        Raises:
            ValueError: an empty or non-1-D waveform (``cut_windows``), ``max_windows`` < 1.
        """
        per_pass = self.windows_per_pass() if max_windows is None else int(max_windows)
        if per_pass < 1:
            raise ValueError(f"max_windows must be >= 1, got {max_windows}")
        # clips are cut one at a time and each pass is run as soon as it is full, so at most one
        # pass and one clip's windows are held (not every clip's windows at once)
        counts: list[int] = []
        pending: list[Tensor] = []
        n_pending = 0
        rows: list[Tensor] = []
        for w in waveforms:
            cut = cut_windows(w, self.window, self.hop)
            counts.append(cut.shape[0])
            pending.append(cut)
            n_pending += cut.shape[0]
            while n_pending >= per_pass:
                buf = pending[0] if len(pending) == 1 else torch.cat(pending)
                rows.append(self._forward(buf[:per_pass]))
                pending, n_pending = ([buf[per_pass:]] if buf.shape[0] > per_pass else []), buf.shape[0] - per_pass
        if n_pending:
            rows.append(self._forward(torch.cat(pending)))
        return [r.clone() for r in torch.cat(rows).split(counts)]

    def embed(self, waveform: np.ndarray) -> Tensor:
        """One clip -> ``(frames, dim)`` float32."""
        return self.embed_batch([waveform])[0]


def build_frame_embedder(spec: EmbedderSpec | dict[str, Any], models_dir: str | Path | None = None) -> FrameEmbedder:
    """Load the pretrained encoder of ``spec`` (local files only) as a ``FrameEmbedder``.

    Raises:
        ValueError: unknown ``kind``/``features``. FileNotFoundError: weights not found.
    """
    if isinstance(spec, dict):
        spec = EmbedderSpec(**spec)
    if spec.kind == "sota_tagger":
        from eno_hf.models.encoders.sota_taggers import load_sota_tagger

        if spec.features not in ("embedding", "prefix+embedding"):
            raise ValueError(f"unknown features {spec.features!r}")
        enc = load_sota_tagger(spec.name, spec.path or models_dir)
        window = enc.native_input_samples
        hop = int(round((spec.hop_s or enc.native_input_s) * enc.sample_rate))
        probe = FrameEmbedder(spec, enc, enc.sample_rate, window, hop, 0)
        with torch.inference_mode():
            dim = int(probe._rows(torch.zeros(1, window)).shape[1])
        return FrameEmbedder(spec, enc, enc.sample_rate, window, hop, dim)
    if spec.kind == "hf_audio":
        from eno_hf.models.encoders.hf_audio import HFAudioEncoder

        if not spec.path:
            raise ValueError("hf_audio embedder needs spec.path (a local checkpoint directory)")
        enc = HFAudioEncoder.from_pretrained_dir(spec.path, pooling=spec.pooling)
        window = int(round(enc.native_input_s * enc.sample_rate))
        hop = int(round((spec.hop_s or enc.native_input_s) * enc.sample_rate))
        return FrameEmbedder(spec, enc, enc.sample_rate, window, hop, enc.output_dim)
    if spec.kind == "tagger_ensemble":
        from eno_hf.models.encoders.tagger_ensemble import load_tagger_ensemble

        enc = load_tagger_ensemble([n for n in spec.name.split("+") if n], spec.path or models_dir)
        window = int(round(enc.native_input_s * enc.sample_rate))
        hop = int(round((spec.hop_s or enc.native_input_s) * enc.sample_rate))
        return FrameEmbedder(spec, enc, enc.sample_rate, window, hop, enc.output_dim)
    raise ValueError(f"unknown embedder kind {spec.kind!r}")


_DIMS: dict[str, int] = {}


def embedding_dim(spec: EmbedderSpec) -> int:
    """Width of one frame row of ``spec``'s embedder (``build_frame_embedder(spec).dim``), loaded
    once per process and spec: loading an encoder to read its width cost ~0.4 s a call, and the
    performance job's cross-validation asked ~40 times.

    Raises:
        as ``build_frame_embedder``.
    """
    import json

    key = json.dumps(spec.to_dict(), sort_keys=True, default=str)
    if key not in _DIMS:
        _DIMS[key] = build_frame_embedder(spec).dim
    return _DIMS[key]
