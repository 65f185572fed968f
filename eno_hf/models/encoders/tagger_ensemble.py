"""Several pretrained music taggers (FCN / Musicnn / CRNN, Won et al. 2020) as one frozen encoder.

Each sub-tagger (``SotaTaggerEncoder``, or ``musicnn_msd.MusicnnMSDEncoder`` for ``msd-musicnn`` /
``msd-vgg``) cuts the clip into its own native windows (FCN/CRNN 29 s,
Musicnn 3 s, MSD Musicnn/VGG 2.992 s = 187 frames; hop = window), embeds every window (penultimate layer), and the window embeddings
are pooled by mean and max over time; the ensemble concatenates ``[mean_1, max_1, mean_2, ...]``.
This is the usual "pretrained embeddings + shallow classifier" transfer protocol for small
datasets (Choi et al. 2017, "Transfer learning for music classification and regression tasks",
arXiv:1703.09179: concatenated multi-layer/multi-model convnet features, mean/max-pooled over
time). A fixed per-dimension standardization (``feature_mean`` / ``feature_std`` buffers, set
from the training split by ``eno_hf.training.cache``; identity until then) is applied last so the
trainable trunk sees unit-scale inputs; the buffers are saved in the model's state dict.

Fine-tuning (``model.finetune=lora``): each sub-tagger splits into a frozen *prefix* and a
trainable *suffix* (``SotaTaggerEncoder.prefix`` / ``suffix``: FCN's last conv block ``layer5``,
Musicnn's ``dense1``); ``default_lora_targets`` are the LoRA targets inside the suffixes. Because
only the suffixes change, ``eno_hf.training.cache`` computes ``frozen_prefix`` once per window and
trains LoRA + trunk + heads on the cached prefixes through ``from_prefix`` (``forward(w) ==
from_prefix(frozen_prefix(w))``). Fine-tuning the top layers of a pretrained CNN on a small
target set is the classic transfer recipe (Yosinski et al. 2014, "How transferable are features in
deep neural networks?"); here it is done with LoRA (Hu et al. 2021) on those layers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from eno_hf.models.encoders.base import Encoder
from eno_hf.models.encoders.sota_taggers import (
    SAMPLE_RATE, SotaTaggerEncoder, build_tagger, load_sota_tagger, tagger_arch,
)

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
        default_lora_targets: the sub-taggers' suffix LoRA targets, e.g.
        ``["taggers.0.layer5.conv", "taggers.2.dense1"]`` (see the module docstring).

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
            arch = str(t.get("arch") or tagger_arch(name))
            specs.append({"name": name, "arch": arch, "n_tags": int(t.get("n_tags", 50))})
        self.tagger_specs = specs
        self.tagger_names = [s["name"] for s in specs]
        self.taggers = nn.ModuleList([build_tagger(s["arch"], n_tags=s["n_tags"]) for s in specs])
        self.sample_rate = SAMPLE_RATE
        self.native_input_s = float(native_input_s)
        self.output_dim = sum(2 * int(t.output_dim) for t in self.taggers)
        self.default_lora_targets = [f"taggers.{i}.{t}" for i, tagger in enumerate(self.taggers)
                                     for t in tagger.suffix_lora_targets]
        self.suffix_modules = [f"taggers.{i}.{m}" for i, tagger in enumerate(self.taggers)
                               for m in tagger.SUFFIX_MODULES[tagger.arch]]
        self._layouts: dict[int, list[tuple[int, tuple[int, ...]]]] = {}
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

    def prefix_layout(self, n_samples: int) -> list[tuple[int, tuple[int, ...]]]:
        """Per sub-tagger ``(n_windows, prefix shape of one window)`` for inputs of ``n_samples``
        (computed once per length with a zero window; no grad)."""
        if n_samples not in self._layouts:
            layout = []
            for tagger in self.taggers:
                win = tagger.native_input_samples
                k = max(1, n_samples // win)
                with torch.no_grad():
                    was = tagger.training
                    shape = tuple(tagger.eval().prefix(torch.zeros(1, win)).shape[1:])
                    tagger.train(was)
                layout.append((k, shape))
            self._layouts[n_samples] = layout
        return self._layouts[n_samples]

    def prefix_dim(self, n_samples: int) -> int:
        """Length of one ``frozen_prefix`` row for inputs of ``n_samples``: per sub-tagger
        ``n_windows * (prod(prefix shape) + 1)`` (the ``+ 1`` is the window's validity flag)."""
        return sum(k * (math.prod(shape) + 1) for k, shape in self.prefix_layout(n_samples))

    @torch.no_grad()
    def frozen_prefix(self, waveform: Tensor) -> Tensor:
        """The frozen bottoms of all sub-taggers, flattened (no grad); see ``_prefix``."""
        return self._prefix(waveform)

    def _prefix(self, waveform: Tensor) -> Tensor:
        """The bottoms of all sub-taggers, flattened: ``(B, samples)`` float32 16 kHz ->
        ``(B, prefix_dim(samples))`` float32 (``frozen_prefix``: the same without grad).

        Per sub-tagger, in order: the ``(B, K, *shape)`` window prefixes (``SotaTaggerEncoder.prefix``;
        zeros for windows that are pure zero padding, which are not computed), flattened, then the
        ``(B, K)`` validity flags (1.0 / 0.0). ``from_prefix`` undoes the layout for the same
        ``samples``.

        Raises:
            ValueError: input not 2-D.
        """
        if waveform.ndim != 2:
            raise ValueError(f"expected waveform of shape (batch, samples), got {tuple(waveform.shape)}")
        waveform = waveform.to(torch.float32)
        batch = waveform.shape[0]
        parts: list[Tensor] = []
        for tagger, (k, shape) in zip(self.taggers, self.prefix_layout(waveform.shape[1])):
            windows, valid = self._windows(tagger, waveform)
            flat_valid = valid.reshape(-1)
            flat = windows.reshape(batch * k, -1)
            if bool(flat_valid.all()):
                pre = tagger.prefix(flat)
            else:  # skip pure-padding windows
                rows = tagger.prefix(flat[flat_valid])
                pre = rows.new_zeros(batch * k, *shape)
                pre[flat_valid] = rows
            parts.extend([pre.reshape(batch, -1), valid.to(torch.float32)])
        return torch.cat(parts, dim=1)

    def raw_from_prefix(self, prefix: Tensor, n_samples: int | None = None) -> Tensor:
        """Unstandardized features from ``frozen_prefix`` rows: ``(B, prefix_dim)`` ->
        ``(B, output_dim)``; gradients flow into the suffixes (and their LoRA adapters).

        Per sub-tagger: ``suffix`` of every window, then mean and max over the valid windows.

        Args:
            n_samples: input length the prefix was computed for; default: the only length
                ``frozen_prefix`` has seen, or ``native_input_s``.

        Raises:
            ValueError: ``prefix`` has the wrong width.
        """
        if n_samples is None:
            n_samples = (next(iter(self._layouts)) if len(self._layouts) == 1
                         else int(round(self.native_input_s * self.sample_rate)))
        layout = self.prefix_layout(n_samples)
        expected = self.prefix_dim(n_samples)
        if prefix.ndim != 2 or prefix.shape[1] != expected:
            raise ValueError(f"expected prefix of shape (batch, {expected}) for {n_samples} samples, "
                             f"got {tuple(prefix.shape)}")
        batch = prefix.shape[0]
        parts: list[Tensor] = []
        offset = 0
        for tagger, (k, shape) in zip(self.taggers, layout):
            size = k * math.prod(shape)
            pre = prefix[:, offset: offset + size].reshape(batch * k, *shape)
            valid = prefix[:, offset + size: offset + size + k] > 0.5
            offset += size + k
            emb = tagger.suffix(pre).reshape(batch, k, -1)
            w = valid.to(emb.dtype)[..., None]
            mean = (emb * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)
            peak = emb.masked_fill(~valid[..., None], float("-inf")).amax(dim=1)
            parts.extend([mean, peak])
        return torch.cat(parts, dim=1)

    def from_prefix(self, prefix: Tensor, n_samples: int | None = None) -> Tensor:
        """Standardized features from ``frozen_prefix`` rows (``standardize(raw_from_prefix(...))``)."""
        return self.standardize(self.raw_from_prefix(prefix, n_samples))

    def raw_features(self, waveform: Tensor) -> Tensor:
        """Unstandardized features: ``(B, samples)`` float32 at 16 kHz -> ``(B, output_dim)``.

        ``raw_from_prefix(frozen_prefix(waveform))`` without detaching: per tagger, window
        embeddings, then mean and max over the windows that are not pure zero padding (so a clip
        padded by the model's chunking is pooled over its real audio only).

        Raises:
            ValueError: input not 2-D.
        """
        if waveform.ndim != 2:
            raise ValueError(f"expected waveform of shape (batch, samples), got {tuple(waveform.shape)}")
        return self.raw_from_prefix(self._prefix(waveform), waveform.shape[1])

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
    loaded = [load_sota_tagger(n, models_dir) for n in names]
    specs = [{"name": str(n), "arch": t.arch, "n_tags": t.n_tags} for n, t in zip(names, loaded)]
    ensemble = TaggerEnsembleEncoder(specs, native_input_s=native_input_s)
    for sub, tagger in zip(ensemble.taggers, loaded):
        sub.load_state_dict(tagger.state_dict(), strict=True)
    return ensemble.eval()
