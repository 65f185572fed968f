"""``HFAudioEncoder``: any transformers audio encoder as an eno ``Encoder``.

Families (chosen by the HF config's ``model_type``):

* waveform models (wav2vec2, HuBERT, WavLM, data2vec-audio, MERT-style): ``input_values`` is the
  raw waveform, optionally zero-mean/unit-variance per example (``Wav2Vec2FeatureExtractor``'s
  ``do_normalize``). Built with ``AutoModel.from_config``.
* AST (``audio-spectrogram-transformer``, Gong et al. 2021): Kaldi fbank computed in torch with
  ``torchaudio.compliance.kaldi.fbank`` exactly as ``ASTFeatureExtractor`` does (Hanning window,
  25 ms / 10 ms, ``num_mel_bins``), padded/truncated to ``max_length`` frames, normalized with the
  AudioSet mean/std as ``(x - mean) / (2 * std)``.
* CLAP audio tower (``clap`` / ``clap_audio_model``, Wu et al. 2023): log-mel in dB computed with
  torchaudio exactly as ``ClapFeatureExtractor`` does for the single-channel (non-fused,
  ``truncation="rand_trunc"``) input: 48 kHz, n_fft 1024, hop 480, 64 Slaney mels 0-14 kHz,
  power -> dB. Non-fused models only; eno's fixed windows replace CLAP's random crops.

Pooling (``pooling``): ``mean`` over time of the last (or ``layer``-th) hidden state,
``attention`` (learned softmax attention over time), or ``weighted_layers``: mean-pool every hidden
layer and take a learned softmax-weighted sum (the MARBLE probe protocol, Yuan et al. 2023). The
CLAP tower only supports ``mean`` (its own pooled output).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torchaudio
from torch import Tensor, nn
from transformers import AutoConfig, AutoModel, PreTrainedConfig, PreTrainedModel

from eno_hf.models.encoders.base import Encoder

AST_TYPES = ("audio-spectrogram-transformer",)
CLAP_TYPES = ("clap", "clap_audio_model")
POOLINGS = ("mean", "attention", "weighted_layers")

DEFAULT_TARGETS: dict[str, list[str]] = {
    "waveform": ["q_proj", "k_proj", "v_proj", "out_proj"],
    "ast": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "clap": ["query", "key", "value"],
}
"""peft LoRA target module-name suffixes per family (checked against transformers 5.23 modules)."""

_DROP_CONFIG_KEYS = ("architectures", "transformers_version", "dtype", "torch_dtype", "_name_or_path",
                     "id2label", "label2id", "model_type")


def family_of(model_type: str) -> str:
    """``"ast" | "clap" | "waveform"`` for an HF ``model_type``."""
    if model_type in AST_TYPES:
        return "ast"
    if model_type in CLAP_TYPES:
        return "clap"
    return "waveform"


def _make_config(model_type: str, hf_config: dict[str, Any]) -> PreTrainedConfig:
    if model_type in CLAP_TYPES:
        from transformers import ClapAudioConfig

        return ClapAudioConfig(**hf_config)
    return AutoConfig.for_model(model_type, **hf_config)


def _make_model(config: PreTrainedConfig) -> PreTrainedModel:
    if family_of(config.model_type) == "clap":
        from transformers import ClapAudioModel

        return ClapAudioModel(config)
    return AutoModel.from_config(config)


def _default_frontend(model_type: str, config: PreTrainedConfig) -> dict[str, Any]:
    family = family_of(model_type)
    if family == "ast":
        return {"sample_rate": 16_000, "num_mel_bins": int(config.num_mel_bins), "max_length": int(config.max_length),
                "mean": -4.2677393, "std": 4.5689974, "do_normalize": True}
    if family == "clap":
        # the Swin input holds spec_size * (spec_size // num_mel_bins) frames (reshape_mel2img)
        max_frames = int(config.spec_size) * (int(config.spec_size) // int(config.num_mel_bins))
        return {"sample_rate": 48_000, "n_fft": 1024, "hop_length": 480, "f_min": 0.0, "f_max": 14_000.0,
                "n_mels": int(config.num_mel_bins), "max_frames": max_frames}
    return {"sample_rate": 16_000, "do_normalize": False}


def _default_native_s(family: str, frontend: dict[str, Any]) -> float:
    if family == "ast":
        return frontend["max_length"] * 0.01  # 10 ms frame shift
    if family == "clap":  # 10 s (the CLAP training crop) if the Swin input holds it
        return min(10.0, (frontend["max_frames"] - 1) * frontend["hop_length"] / frontend["sample_rate"])
    return 5.0  # MERT's training context (REFERENCES.md)


class HFAudioEncoder(Encoder):
    """Wrap a transformers audio model (random weights from its config dict; see ``from_pretrained_dir``).

    Args:
        model_type: HF ``model_type`` (``"wav2vec2"``, ``"hubert"``, ``"audio-spectrogram-transformer"``,
            ``"clap_audio_model"``...).
        hf_config: the HF config as a dict (``config.to_dict()``), enough to rebuild the model.
        pooling: ``"mean" | "attention" | "weighted_layers"``.
        layer: hidden-state index to pool (0 = embeddings output); None = last layer. Ignored by
            ``weighted_layers``.
        frontend: input preparation parameters (see module docstring); default per family.
        native_input_s: window length in seconds (default: wav2vec2-style 5 s, AST
            ``max_length`` x 10 ms, CLAP 10 s or what its Swin input holds).

    ``forward(waveform (batch, samples) float32 at sample_rate) -> (batch, output_dim)``.

    Raises:
        ValueError: unknown pooling, or a pooling the family does not support.
    """

    def __init__(
        self,
        model_type: str,
        hf_config: dict[str, Any],
        pooling: str = "mean",
        layer: int | None = None,
        frontend: dict[str, Any] | None = None,
        native_input_s: float | None = None,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        config = _make_config(model_type, {k: v for k, v in hf_config.items() if k not in _DROP_CONFIG_KEYS})
        self.model_type = model_type
        self.family = family_of(model_type)
        if self.family == "clap" and pooling != "mean":
            raise ValueError("the CLAP audio tower supports pooling='mean' only (its pooled output)")
        self.model = _make_model(config)
        self.frontend = dict(frontend or _default_frontend(model_type, config))
        self.sample_rate = int(self.frontend["sample_rate"])
        self.native_input_s = float(native_input_s or _default_native_s(self.family, self.frontend))
        self.pooling = pooling
        self.layer = layer
        self.default_lora_targets = list(DEFAULT_TARGETS[self.family])
        if self.family == "clap":
            self.output_dim = int(self.model.audio_encoder.num_features)
            self.mel = torchaudio.transforms.MelSpectrogram(
                sample_rate=self.sample_rate, n_fft=self.frontend["n_fft"], hop_length=self.frontend["hop_length"],
                f_min=self.frontend["f_min"], f_max=self.frontend["f_max"], n_mels=self.frontend["n_mels"],
                power=2.0, norm="slaney", mel_scale="slaney",
            )
        else:
            self.output_dim = int(config.hidden_size)
        if pooling == "attention":
            self.attention = nn.Linear(self.output_dim, 1)
        if pooling == "weighted_layers":
            self.layer_weights = nn.Parameter(torch.zeros(int(config.num_hidden_layers) + 1))
        self._n_special_tokens = 2 if self.family == "ast" else 0  # AST: CLS + distillation tokens

    # ------------------------------------------------------------------ construction helpers
    def init_kwargs(self) -> dict[str, Any]:
        """JSON-serializable kwargs that rebuild this encoder (``EnoModelConfig.encoder_kwargs``)."""
        hf = {k: v for k, v in self.model.config.to_dict().items() if k not in _DROP_CONFIG_KEYS}
        return {"model_type": self.model_type, "hf_config": hf, "pooling": self.pooling, "layer": self.layer,
                "frontend": self.frontend, "native_input_s": self.native_input_s}

    @classmethod
    def from_pretrained_dir(
        cls, path: str | Path, pooling: str = "mean", layer: int | None = None, native_input_s: float | None = None
    ) -> HFAudioEncoder:
        """Load real weights from a local checkpoint directory (``config.json`` + safetensors; no network).

        A full CLAP checkpoint (``ClapModel``) contributes its audio tower. The frontend takes
        ``sampling_rate`` / ``do_normalize`` / ``mean`` / ``std`` from ``preprocessor_config.json``
        when present.

        Raises:
            FileNotFoundError: ``path`` has no ``config.json``.
        """
        path = Path(path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path}: no config.json (expected a transformers checkpoint directory)")
        config = AutoConfig.from_pretrained(path, local_files_only=True)
        model_type = config.model_type
        if model_type == "clap":
            from transformers import ClapModel

            loaded: PreTrainedModel = ClapModel.from_pretrained(path, local_files_only=True).audio_model
            model_type = "clap_audio_model"
        else:
            loaded = AutoModel.from_pretrained(path, local_files_only=True)
        frontend = _default_frontend(model_type, loaded.config)
        pre = path / "preprocessor_config.json"
        if pre.is_file():
            data = json.loads(pre.read_text(encoding="utf-8"))
            frontend["sample_rate"] = int(data.get("sampling_rate", frontend["sample_rate"]))
            for key in ("do_normalize", "mean", "std"):
                if key in data and key in frontend:
                    frontend[key] = data[key]
        enc = cls(model_type, loaded.config.to_dict(), pooling=pooling, layer=layer, frontend=frontend,
                  native_input_s=native_input_s)
        enc.model.load_state_dict(loaded.state_dict())
        return enc

    # ------------------------------------------------------------------ forward
    def _inputs(self, waveform: Tensor) -> dict[str, Tensor]:
        fe = self.frontend
        if self.family == "ast":
            feats = [
                torchaudio.compliance.kaldi.fbank(
                    w[None], sample_frequency=self.sample_rate, window_type="hanning", num_mel_bins=fe["num_mel_bins"]
                )
                for w in waveform
            ]
            x = torch.stack([nn.functional.pad(f, (0, 0, 0, max(0, fe["max_length"] - f.shape[0])))[: fe["max_length"]]
                             for f in feats])
            if fe.get("do_normalize", True):
                x = (x - fe["mean"]) / (fe["std"] * 2)
            return {"input_values": x}
        if self.family == "clap":
            mel = self.mel(waveform)  # (B, n_mels, frames)
            db = 10.0 * torch.log10(mel.clamp_min(1e-10))
            return {"input_features": db.transpose(1, 2)[:, None]}  # (B, 1, frames, n_mels)
        x = waveform
        if fe.get("do_normalize", False):
            x = (x - x.mean(dim=1, keepdim=True)) / torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + 1e-7)
        return {"input_values": x}

    def forward(self, waveform: Tensor) -> Tensor:
        """``(batch, samples)`` float32 at ``sample_rate`` -> ``(batch, output_dim)`` float32."""
        if waveform.ndim != 2:
            raise ValueError(f"expected waveform of shape (batch, samples), got {tuple(waveform.shape)}")
        inputs = self._inputs(waveform.float())
        if self.family == "clap":
            return self.model(**inputs).pooler_output
        need_layers = self.pooling == "weighted_layers" or self.layer is not None
        out = self.model(**inputs, output_hidden_states=need_layers, return_dict=True)
        s = self._n_special_tokens
        if self.pooling == "weighted_layers":
            pooled = torch.stack([h[:, s:].mean(dim=1) for h in out.hidden_states], dim=1)  # (B, L, D)
            weights = torch.softmax(self.layer_weights, dim=0)
            return (pooled * weights[None, :, None]).sum(dim=1)
        hidden = (out.hidden_states[self.layer] if self.layer is not None else out.last_hidden_state)[:, s:]
        if self.pooling == "attention":
            scores = torch.softmax(self.attention(hidden).squeeze(-1), dim=1)
            return (hidden * scores[..., None]).sum(dim=1)
        return hidden.mean(dim=1)
