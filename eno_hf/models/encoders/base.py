"""The encoder protocol every eno encoder follows.

An encoder maps a batch of mono waveforms at ``sample_rate`` to one embedding per example::

    emb = encoder(waveform)      # waveform: (batch, samples) float32 -> emb: (batch, output_dim)

Inputs are expected to be about ``native_input_s`` long (the window the encoder was trained on);
the model (``EnoForAudioTagging``) chunks longer inputs and averages, so encoders never see
full-length tracks (see REFERENCES: a 10-min track through MERT asked for 90 GB).
"""

from __future__ import annotations

from torch import Tensor, nn


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
