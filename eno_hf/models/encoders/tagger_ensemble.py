"""Several pretrained music taggers (FCN / Musicnn / CRNN, Won et al. 2020) as one frozen encoder.

Each sub-tagger (``SotaTaggerEncoder``) cuts the clip into its own native windows (FCN/CRNN 29 s,
Musicnn 3 s; hop = window), embeds every window (penultimate layer), and the window embeddings
are pooled by mean and max over time; the ensemble concatenates ``[mean_1, max_1, mean_2, ...]``.
This is the usual "pretrained embeddings + shallow classifier" transfer protocol for small
datasets (Choi et al. 2017, "Transfer learning for music classification and regression tasks",
arXiv:1703.09179: concatenated multi-layer/multi-model convnet features, mean/max-pooled over
time). A fixed per-dimension standardization (``feature_mean`` / ``feature_std`` buffers, set
from the training split by ``eno_hf.training.train``; identity until then) is applied last so the
trainable trunk sees unit-scale inputs; the buffers are saved in the model's state dict.

The ensemble is meant to be frozen (``model.finetune=frozen``): it has no LoRA targets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from eno_hf.models.encoders.base import Encoder
from eno_hf.models.encoders.sota_taggers import SAMPLE_RATE, SotaTaggerEncoder

DEFAULT_NATIVE_INPUT_S = 30.0
"""Window the model (``EnoForAudioTagging``) feeds the ensemble: one ~30-s clip per window."""

STD_FLOOR = 1e-6
"""Standard deviations at or below this (constant dimensions) are replaced by 1."""


class TaggerEnsembleEncoder(Encoder):
    """Concatenated mean+max-pooled window embeddings of several ``SotaTaggerEncoder`` s.

    Args:
        taggers: one dict per sub-tagger, ``{"name": "jamendo-fcn", "arch": "fcn", "n_tags": 50}``
            (``arch`` defaults to the suffix of ``name``, ``n_tags`` to 50). Only ``arch`` and
            ``n_tags`` shape the network; ``name`` says which published weights
            ``models.factory.create_model`` loads. Random weights until then.
        native_input_s: clip length in seconds the ensemble is designed for (the model's chunk
            length), default 30 s.

    Attributes:
        sample_rate: 16000 Hz. output_dim: ``sum(2 * tagger.output_dim)`` (fcn 64, musicnn 200,
        crnn 32 per tagger, times 2 for mean and max). tagger_names: the names, in order.
        default_lora_targets: ``[]`` (frozen use only).

    ``forward`` works in any mode but is meant for ``eval()`` (BatchNorm with running statistics).

    Raises:
        ValueError: no tagger, or an unknown ``arch``.
    """

    def __init__(self, taggers: Sequence[Mapping[str, Any]], native_input_s: float = DEFAULT_NATIVE_INPUT_S) -> None:
        super().__init__()
        if not taggers:
            raise ValueError("TaggerEnsembleEncoder needs at least one tagger")
        specs = []
        for t in taggers:
            name = str(t.get("name", ""))
            arch = str(t.get("arch") or name.rsplit("-", 1)[-1])
            specs.append({"name": name, "arch": arch, "n_tags": int(t.get("n_tags", 50))})
        self.tagger_specs = specs
        self.tagger_names = [s["name"] for s in specs]
        self.taggers = nn.ModuleList([SotaTaggerEncoder(s["arch"], n_tags=s["n_tags"]) for s in specs])
        self.sample_rate = SAMPLE_RATE
        self.native_input_s = float(native_input_s)
        self.output_dim = sum(2 * int(t.output_dim) for t in self.taggers)
        self.default_lora_targets = []
        self.register_buffer("feature_mean", torch.zeros(self.output_dim))
        self.register_buffer("feature_std", torch.ones(self.output_dim))

    def init_kwargs(self) -> dict[str, Any]:
        """``encoder_kwargs`` that rebuild this encoder (random weights) via ``build_encoder``."""
        return {"taggers": [dict(s) for s in self.tagger_specs], "native_input_s": self.native_input_s}

    @staticmethod
    def _windows(tagger: SotaTaggerEncoder, waveform: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, samples)`` -> windows ``(B, K, W)`` (W = the tagger's native length; the input is
        zero-padded to one window if shorter, an incomplete tail is dropped) and a ``(B, K)`` bool
        mask of windows that are not pure zero padding (window 0 always counts)."""
        batch, n = waveform.shape
        win = tagger.native_input_samples
        if n < win:
            waveform = F.pad(waveform, (0, win - n))
            n = win
        k = n // win
        windows = waveform[:, : k * win].reshape(batch, k, win)
        valid = windows.abs().amax(dim=2) > 0
        valid[:, 0] = True
        return windows, valid

    def raw_features(self, waveform: Tensor) -> Tensor:
        """Unstandardized features: ``(B, samples)`` float32 at 16 kHz -> ``(B, output_dim)``.

        Per tagger: window embeddings, then mean and max over the windows that are not pure zero
        padding (so a clip padded by the model's chunking is pooled over its real audio only).

        Raises:
            ValueError: input not 2-D.
        """
        if waveform.ndim != 2:
            raise ValueError(f"expected waveform of shape (batch, samples), got {tuple(waveform.shape)}")
        waveform = waveform.to(torch.float32)
        batch = waveform.shape[0]
        parts: list[Tensor] = []
        for tagger in self.taggers:
            windows, valid = self._windows(tagger, waveform)
            k = windows.shape[1]
            flat_valid = valid.reshape(-1)
            if bool(flat_valid.all()):
                emb = tagger(windows.reshape(batch * k, -1)).reshape(batch, k, -1)
            else:  # skip pure-padding windows (eval-mode BatchNorm: per-window results unchanged)
                rows = tagger(windows.reshape(batch * k, -1)[flat_valid])
                emb = rows.new_zeros(batch * k, rows.shape[1])
                emb[flat_valid] = rows
                emb = emb.reshape(batch, k, -1)
            w = valid.to(emb.dtype)[..., None]
            mean = (emb * w).sum(dim=1) / w.sum(dim=1)
            peak = emb.masked_fill(~valid[..., None], float("-inf")).amax(dim=1)
            parts.extend([mean, peak])
        return torch.cat(parts, dim=1)

    def standardize(self, features: Tensor) -> Tensor:
        """``(features - feature_mean) / feature_std`` (the buffers; identity until set)."""
        return (features - self.feature_mean) / self.feature_std.clamp_min(STD_FLOOR)

    @torch.no_grad()
    def set_standardization(self, mean: Tensor, std: Tensor) -> None:
        """Set the ``(output_dim,)`` standardization buffers (e.g. training-split statistics of
        ``raw_features``). Constant or undefined (NaN) dimensions get std 1 (centered only).
        Raises ``ValueError`` on a shape mismatch."""
        mean, std = torch.as_tensor(mean, dtype=torch.float32), torch.as_tensor(std, dtype=torch.float32)
        if mean.shape != (self.output_dim,) or std.shape != (self.output_dim,):
            raise ValueError(f"expected mean/std of shape ({self.output_dim},), got {tuple(mean.shape)}, {tuple(std.shape)}")
        std = torch.where(torch.isfinite(std) & (std > STD_FLOOR), std, torch.ones_like(std))
        self.feature_mean.copy_(torch.nan_to_num(mean))
        self.feature_std.copy_(std)

    def forward(self, waveform: Tensor) -> Tensor:
        """``(batch, samples)`` float32 mono 16 kHz -> ``(batch, output_dim)`` float32 standardized
        features (``standardize(raw_features(waveform))``)."""
        return self.standardize(self.raw_features(waveform))


def load_tagger_ensemble(
    names: Sequence[str], models_dir: Any = None, native_input_s: float = DEFAULT_NATIVE_INPUT_S
) -> TaggerEnsembleEncoder:
    """A ``TaggerEnsembleEncoder`` with the published weights of ``names`` (``load_sota_tagger``), in
    eval mode.

    Raises:
        FileNotFoundError / ValueError / RuntimeError: as ``load_sota_tagger``.
    """
    from eno_hf.models.encoders.sota_taggers import load_sota_tagger

    loaded = [load_sota_tagger(n, models_dir) for n in names]
    specs = [{"name": str(n), "arch": t.arch, "n_tags": t.n_tags} for n, t in zip(names, loaded)]
    ensemble = TaggerEnsembleEncoder(specs, native_input_s=native_input_s)
    for sub, tagger in zip(ensemble.taggers, loaded):
        sub.load_state_dict(tagger.state_dict(), strict=True)
    return ensemble.eval()
