"""The encoder protocol every eno encoder follows.

An encoder maps a batch of mono waveforms at ``sample_rate`` to one embedding per example::

    emb = encoder(waveform)      # waveform: (batch, samples) float32 -> emb: (batch, output_dim)

Inputs are expected to be about ``native_input_s`` long (the window the encoder was trained on);
the model (``EnoForAudioTagging``) chunks longer inputs and averages, so encoders never see
full-length tracks (see REFERENCES: a 10-min track through MERT asked for 90 GB).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def flush_subnormals(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """``state`` with every subnormal float (``0 < |x| < torch.finfo(dtype).tiny``) set to 0.

    Published TensorFlow-trained taggers hold ~10^5 subnormal weights (msd-fcn: 77,517;
    jamendo-musicnn: 98,417). TensorFlow runs with flush-to-zero on x86, PyTorch does not, and
    x86 cores handle subnormal operands in microcode: on the 2-core Xeon here one 30-s clip
    through the default ensemble took 27 s instead of 0.76 s. Zeroing them changes no output
    measurably (each is below 1.2e-38).

    Args:
        state: a state dict (name -> tensor); non-float tensors pass through.

    Returns:
        a new dict; tensors without subnormals are the same objects.
    """
    out = {}
    for k, v in state.items():
        if v.is_floating_point():
            sub = (v != 0) & (v.abs() < torch.finfo(v.dtype).tiny)
            if bool(sub.any()):
                v = v.masked_fill(sub, 0.0)
        out[k] = v
    return out


class Encoder(nn.Module):
    """Base class for encoders. Subclasses set the attributes below and implement ``forward``.

    Attributes:
        sample_rate: expected input rate in Hz.
        output_dim: embedding size.
        native_input_s: input length in seconds the encoder was designed/trained for.
        default_lora_targets: module-name suffixes peft LoRA should wrap by default.
    """

    sample_rate: int = 16_000
    output_dim: int = 0
    native_input_s: float = 3.0
    default_lora_targets: list[str] = []

    def forward(self, waveform: Tensor) -> Tensor:  # pragma: no cover - interface
        """``(batch, samples)`` float32 -> ``(batch, output_dim)`` float32."""
        raise NotImplementedError
