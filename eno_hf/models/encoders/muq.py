"""MuQ (Zhu et al. 2025, "MuQ: Self-Supervised Music Representation Learning with Mel Residual
Vector Quantization", github.com/tencent-ailab/MuQ) as an eno ``Encoder``, through the ``muq`` package.

The ``muq`` package is optional and not installed by eno; building this encoder without it raises
an ``ImportError`` saying so. MuQ takes 24 kHz mono audio; its MARBLE probes use ~10-30 s inputs,
eno's default window is 10 s.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from eno_hf.models.encoders.base import Encoder

POOLINGS = ("mean", "attention", "weighted_layers")


def _import_muq():  # noqa: ANN202
    try:
        from muq import MuQ
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "encoder 'muq' needs the optional 'muq' package (github.com/tencent-ailab/MuQ), which eno does not "
            "install: `pip install muq`, then point model.encoder_path at a local MuQ checkpoint directory"
        ) from exc
    return MuQ


class MuQEncoder(Encoder):
    """MuQ encoder loaded from a local checkpoint directory (no network).

    Args:
        encoder_path: local directory of a MuQ checkpoint (``MuQ.from_pretrained`` layout).
        pooling: ``"mean"`` over time of the last (or ``layer``-th) hidden state, ``"attention"``,
            or ``"weighted_layers"`` (learned softmax weights over the mean-pooled layers, MARBLE).
        layer: hidden-state index to pool; None = last.
        output_dim: MuQ hidden size (1024 for MuQ-large).
        n_layers: number of hidden states returned with ``output_hidden_states`` (13 for MuQ-large).
        native_input_s: window in seconds (default 10).

    ``forward(waveform (batch, samples) float32 at 24 kHz) -> (batch, output_dim)``.

    Raises:
        ImportError: the ``muq`` package is not installed.
        FileNotFoundError: ``encoder_path`` does not exist.
    """

    def __init__(
        self,
        encoder_path: str,
        pooling: str = "mean",
        layer: int | None = None,
        output_dim: int = 1024,
        n_layers: int = 13,
        native_input_s: float = 10.0,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        muq_cls = _import_muq()
        if not Path(encoder_path).exists():
            raise FileNotFoundError(f"{encoder_path}: MuQ checkpoint directory not found")
        self.model = muq_cls.from_pretrained(str(encoder_path))
        self.sample_rate = 24_000
        self.output_dim = int(output_dim)
        self.native_input_s = float(native_input_s)
        self.pooling, self.layer = pooling, layer
        self.default_lora_targets = ["q_proj", "k_proj", "v_proj", "out_proj", "linear_q", "linear_k", "linear_v"]
        if pooling == "attention":
            self.attention = nn.Linear(self.output_dim, 1)
        if pooling == "weighted_layers":
            self.layer_weights = nn.Parameter(torch.zeros(int(n_layers)))

    def forward(self, waveform: Tensor) -> Tensor:
        """``(batch, samples)`` float32 at 24 kHz -> ``(batch, output_dim)``."""
        need_layers = self.pooling == "weighted_layers" or self.layer is not None
        out = self.model(waveform.float(), output_hidden_states=need_layers)
        if self.pooling == "weighted_layers":
            pooled = torch.stack([h.mean(dim=1) for h in out.hidden_states], dim=1)
            return (pooled * torch.softmax(self.layer_weights, dim=0)[None, :, None]).sum(dim=1)
        hidden = out.hidden_states[self.layer] if self.layer is not None else out.last_hidden_state
        if self.pooling == "attention":
            scores = torch.softmax(self.attention(hidden).squeeze(-1), dim=1)
            return (hidden * scores[..., None]).sum(dim=1)
        return hidden.mean(dim=1)
