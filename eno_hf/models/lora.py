"""Fine-tuning modes for ``EnoForAudioTagging``: LoRA on the encoder (peft), frozen encoder, or full.

LoRA (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models") is injected into the
*encoder only* with ``peft.inject_adapter_in_model``: the model stays a plain
``EnoForAudioTagging`` (no ``PeftModel`` wrapper), its ``save_pretrained`` saves everything
(adapter tensors under ``...base_layer`` / ``...lora_A.default``), and ``merge_lora`` folds the
adapters back into the base weights so the final model loads with ``from_pretrained`` and
``pipeline()`` without peft. Trunk and heads are always trainable.
"""

from __future__ import annotations

from typing import Any

from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.tuners_utils import BaseTunerLayer
from torch import nn

from eno_hf.models.modeling import EnoForAudioTagging

DEFAULT_TARGETS: dict[str, list[str]] = {
    "wav2vec2": ["q_proj", "k_proj", "v_proj", "out_proj"],
    "hubert": ["q_proj", "k_proj", "v_proj", "out_proj"],
    "wavlm": ["q_proj", "k_proj", "v_proj", "out_proj"],
    "audio-spectrogram-transformer": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "clap_audio_model": ["query", "key", "value"],
    "clap": ["query", "key", "value"],
}
"""peft target module-name suffixes per HF encoder ``model_type`` (module names of transformers 5.23).
Other encoders (``sota_tagger``, ``mel_cnn``, ``muq``) use their ``encoder.default_lora_targets``."""

FAMILIES_WITH_TRAINABLE_NORMS = ("clap_audio_model", "clap")
"""Encoders whose BatchNorm layers stay trainable under LoRA (CLAP's input BatchNorm over mel bins
adapts the tower to a new input distribution; saved with the model like every other weight)."""

MODES = ("lora", "frozen", "full")


def default_targets(model: EnoForAudioTagging) -> list[str]:
    """LoRA target module-name suffixes for ``model.encoder`` (see ``DEFAULT_TARGETS``)."""
    model_type = getattr(model.encoder, "model_type", None)
    if model_type in DEFAULT_TARGETS:
        return list(DEFAULT_TARGETS[model_type])
    return list(getattr(model.encoder, "default_lora_targets", []) or [])


def apply_finetune(
    model: EnoForAudioTagging,
    mode: Any = "lora",
    rank: int = 8,
    alpha: int = 16,
    dropout: float = 0.05,
    targets: list[str] | None = None,
) -> EnoForAudioTagging:
    """Prepare ``model`` for training in place and return it.

    Args:
        model: an ``EnoForAudioTagging``.
        mode: ``"lora"`` (adapters on the encoder, other encoder weights frozen), ``"frozen"``
            (encoder frozen and kept in eval mode: fixed BatchNorm statistics, no dropout) or
            ``"full"`` (everything trainable). An ``eno_hf.config.ModelConfig`` is also accepted:
            its ``finetune``, ``lora_rank``, ``lora_alpha``, ``lora_dropout`` and
            ``lora_target_modules`` are used.
        rank, alpha, dropout: LoRA ``r``, ``lora_alpha``, ``lora_dropout``.
        targets: module-name suffixes to adapt; default ``default_targets(model)``.

    Returns:
        ``model`` (same object).

    Raises:
        ValueError: unknown mode, LoRA asked for an encoder without targets (e.g. ``embeddings``).
    """
    if not isinstance(mode, str):  # eno_hf.config.ModelConfig
        cfg = mode
        mode, rank, alpha, dropout = cfg.finetune, cfg.lora_rank, cfg.lora_alpha, cfg.lora_dropout
        targets = cfg.lora_target_modules
    if mode not in MODES:
        raise ValueError(f"finetune mode must be one of {MODES}, got {mode!r}")
    for p in model.parameters():
        p.requires_grad_(True)
    model._encoder_eval = False
    if mode == "full":
        return model
    if mode == "frozen" or not list(model.encoder.parameters()):
        for p in model.encoder.parameters():
            p.requires_grad_(False)
        model._encoder_eval = True
        model.train(model.training)
        return model
    targets = list(targets or default_targets(model))
    if not targets:
        raise ValueError(f"no LoRA target modules known for encoder {type(model.encoder).__name__}; pass targets=")
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets, bias="none")
    inject_adapter_in_model(config, model.encoder)
    for name, p in model.encoder.named_parameters():
        p.requires_grad_("lora_" in name)
    if getattr(model.encoder, "model_type", None) in FAMILIES_WITH_TRAINABLE_NORMS:
        for module in model.encoder.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                for p in module.parameters():
                    p.requires_grad_(True)
    # encoder-level extras that are not part of the pretrained network stay trainable
    for extra in ("attention", "layer_weights"):
        obj = getattr(model.encoder, extra, None)
        for p in (obj.parameters() if isinstance(obj, nn.Module) else [obj] if obj is not None else []):
            p.requires_grad_(True)
    return model


def has_lora(model: nn.Module) -> bool:
    """True if ``model`` contains peft adapter layers."""
    return any(isinstance(m, BaseTunerLayer) for m in model.modules())


def merge_lora(model: EnoForAudioTagging) -> EnoForAudioTagging:
    """Fold LoRA adapters into the base weights and remove them (peft ``merge`` + unwrap), in place.

    The result is a plain ``EnoForAudioTagging`` whose state dict has the original parameter names,
    so ``save_pretrained`` output loads with ``from_pretrained`` / ``pipeline()`` without peft.
    A model without adapters is returned unchanged. All parameters are trainable afterwards and
    the encoder follows ``model.train()`` again.
    """
    replacements = [(name, m) for name, m in model.named_modules() if isinstance(m, BaseTunerLayer)]
    for name, layer in replacements:
        layer.merge()
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, layer.get_base_layer())
    for p in model.parameters():
        p.requires_grad_(True)
    model._encoder_eval = False
    return model
