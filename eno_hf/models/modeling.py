"""``EnoForAudioTagging``: encoder + shared trunk + one head per task, as a transformers model.

``forward(input_values (batch, samples), labels=...)`` returns ``EnoOutput`` (with the multi-task
``loss`` when labels are given, as transformers models do); ``save_pretrained`` /
``from_pretrained`` (safetensors) and ``pipeline("audio-classification")`` work as for any
transformers audio classifier once ``eno_hf`` is imported (Auto-class registration).

Long inputs are split into windows of ``config.chunk_s`` (hop = window), every window goes
through the encoder, and the per-window *probabilities* are averaged per head (sigmoid for
multi-label heads, softmax for single-label heads; the clip-level protocol of Won et al. 2020,
"Evaluation of CNN-based automatic music tagging models"). The model then returns the logit of
the mean probability, so a sigmoid (or, for single-label ``head_logits``, a softmax) of the output
gives back exactly the averaged probabilities.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from eno_hf.models.configuration import EnoModelConfig
from eno_hf.models.encoders import build_encoder
from eno_hf.models.head_kinds import LOGIT_EPS, head_kind, head_probabilities
from eno_hf.models.losses import multitask_loss

__all__ = ["LOGIT_EPS", "EnoForAudioTagging", "EnoOutput", "EnoPreTrainedModel", "head_probabilities"]


@dataclass
class EnoOutput(ModelOutput):
    """Output of ``EnoForAudioTagging.forward``.

    Attributes:
        logits: ``(batch, n_labels)`` float32, columns in ``config.id2label`` order: multi-label heads
            as logits, single-label heads as ``logit(softmax)`` (a sigmoid gives their softmax
            probabilities). ``n_labels`` may be 0 when the model has no classification head.
        head_logits: per head name: multilabel/singlelabel ``(batch, n_labels_head)`` raw logits
            (for inputs of several windows: ``logit(mean p)`` resp. ``log(mean p)``), regression
            / ranking ``(batch,)``, projection ``(batch, dim)``.
        embedding: ``(batch, dim)``: the first projection head's output if any, else the trunk output.
        regression: per regression head ``(batch,)`` predictions.
        loss: scalar ``multitask_loss`` (weighted sum over the heads that had labels), when
            ``labels`` were given. head_losses: head name -> its unweighted scalar loss.
    """

    loss: Tensor | None = None
    head_losses: dict[str, Tensor] | None = None
    logits: Tensor | None = None
    head_logits: dict[str, Tensor] | None = None
    embedding: Tensor | None = None
    regression: dict[str, Tensor] | None = None


class EnoPreTrainedModel(PreTrainedModel):
    """Base class tying ``EnoModelConfig`` to transformers' loading/saving machinery."""

    config: EnoModelConfig
    config_class = EnoModelConfig
    base_model_prefix = "eno"
    main_input_name = "input_values"
    input_modalities = "audio"
    supports_gradient_checkpointing = False
    _no_split_modules: list[str] = []

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """PyTorch's default init for linear/conv/recurrent layers (not transformers' N(0, 0.02)):
        eno's CNN encoders and heads are trained from this init. Norm layers and everything else:
        transformers' default. Parameters loaded from a checkpoint are never re-initialized
        (the ``torch.nn.init`` calls are guarded by transformers during loading)."""
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.GRU, nn.LSTM)):
            module.reset_parameters()
        else:
            super()._init_weights(module)


class EnoForAudioTagging(EnoPreTrainedModel):
    """Multi-task audio tagger: ``encoder -> trunk (Linear, ReLU, Dropout) -> heads``.

    Args:
        config: ``EnoModelConfig``; the encoder is built by ``encoders.build_encoder(config)``
            with random weights (``from_pretrained`` or ``models.factory`` load real ones).

    ``config.chunk_s`` defaults to the encoder's ``native_input_s`` and is written back to the config.
    """

    def __init__(self, config: EnoModelConfig) -> None:
        super().__init__(config)
        # ``from_pretrained`` builds models under ``torch.device("meta")``; torchaudio front ends
        # (mel filterbanks computed in __init__) cannot be built there, so the encoder is built on
        # the CPU and its tensors are then overwritten by the loaded checkpoint.
        if torch.get_default_device().type == "meta":
            with torch.device("cpu"):
                self.encoder = build_encoder(config)
        else:
            self.encoder = build_encoder(config)
        if config.encoder_type != "embeddings":
            if config.chunk_s is None:
                config.chunk_s = float(self.encoder.native_input_s)
            if int(self.encoder.sample_rate) != int(config.sample_rate):
                raise ValueError(
                    f"config.sample_rate={config.sample_rate} but the {config.encoder_type} encoder "
                    f"expects {self.encoder.sample_rate} Hz"
                )
        enc_dim = int(self.encoder.output_dim)
        if config.hidden_dim and config.hidden_dim > 0:
            self.trunk: nn.Module = nn.Sequential(
                nn.Linear(enc_dim, config.hidden_dim), nn.ReLU(), nn.Dropout(config.dropout)
            )
            trunk_dim = config.hidden_dim
        else:
            self.trunk = nn.Identity()
            trunk_dim = enc_dim
        self.trunk_dim = trunk_dim
        self.heads = nn.ModuleDict({h.name: nn.Linear(trunk_dim, h.dim) for h in config.head_specs})
        self._encoder_eval = False
        self.post_init()

    # ------------------------------------------------------------------ helpers
    @property
    def window_samples(self) -> int:
        """Inference window length in samples (``chunk_s * sample_rate``)."""
        return int(round(float(self.config.chunk_s) * int(self.config.sample_rate)))

    def train(self, mode: bool = True) -> EnoForAudioTagging:
        """As ``nn.Module.train``; keeps the encoder in eval mode when it is frozen
        (``lora.apply_finetune(mode="frozen")``), so BatchNorm statistics and dropout stay fixed."""
        super().train(mode)
        if mode and self._encoder_eval:
            self.encoder.eval()
        return self

    def split_windows(self, input_values: Tensor, attention_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Split ``(batch, samples)`` into ``(batch, n_windows, window_samples)`` and window weights.

        Hop = window. The last partial window is zero-padded and kept when it holds at least
        ``config.chunk_tail_min_ratio`` of a window, else dropped; every example keeps >= 1 window
        (inputs shorter than a window are zero-padded). With an ``attention_mask`` (1 = real
        sample, padded batches) the rule is applied per example to its real length.

        Returns:
            windows ``(B, K, W)`` and weights ``(B, K)`` float (1 = window used, 0 = ignored).
        """
        batch, n = input_values.shape
        win = self.window_samples
        ratio = float(self.config.chunk_tail_min_ratio)
        n_full, rem = divmod(n, win)
        k = max(1, n_full + int(rem > 0 and rem >= ratio * win))
        total = k * win
        x = F.pad(input_values, (0, total - n)) if total > n else input_values[:, :total]
        windows = x.reshape(batch, k, win)
        if attention_mask is None:
            lengths = torch.full((batch,), n, device=x.device)
        else:
            lengths = attention_mask.to(x.device).long().sum(dim=1)
        starts = torch.arange(k, device=x.device) * win
        remaining = lengths[:, None] - starts[None, :]
        valid = (remaining > 0) & (remaining >= ratio * win)
        valid[:, 0] = True
        return windows, valid.to(x.dtype if x.is_floating_point() else torch.float32)

    def _encode(self, flat: Tensor) -> Tensor:
        size = int(self.config.chunk_batch_size)
        if flat.shape[0] <= size or self.training:
            return self.encoder(flat)
        return torch.cat([self.encoder(part) for part in flat.split(size)], dim=0)

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        input_values: Tensor,
        attention_mask: Tensor | None = None,
        labels: Mapping[str, Tensor] | None = None,
        pos_weight: Mapping[str, Tensor] | None = None,
        return_dict: bool | None = None,
        **kwargs: object,
    ) -> EnoOutput:
        """Tag a batch (and compute the multi-task loss when ``labels`` are given).

        Args:
            input_values: ``(batch, samples)`` float32 mono at ``config.sample_rate``
                (``encoder_type="embeddings"``: ``(batch, input_dim)`` features).
            attention_mask: optional ``(batch, samples)``, 1 for real samples (padded batches).
            labels: head name -> labels in the batch conventions of ``eno_hf.models.losses``
                (multi-label ``(B, n)`` multi-hot, row of -1 = missing; single-label ``(B,)``,
                -100 = missing; regression ``(B,)``, NaN = missing). Heads without an entry get no
                loss; each head's loss is weighted by its ``weight``.
            pos_weight: optional head name -> ``(n,)`` BCE positive weights (multi-label heads).
            **kwargs: ignored.

        Raises:
            ValueError: ``labels`` given but no head has both outputs and labels.

        Returns:
            ``EnoOutput`` (see its attributes). A tuple if ``return_dict=False``.
        """
        cfg = self.config
        if input_values.ndim == 1:
            input_values = input_values[None]
        if input_values.ndim != 2:
            raise ValueError(f"input_values must be (batch, samples), got {tuple(input_values.shape)}")
        batch = input_values.shape[0]
        if cfg.encoder_type == "embeddings":
            windows = input_values[:, None, :]
            weights = torch.ones(batch, 1, device=input_values.device, dtype=input_values.dtype)
        else:
            windows, weights = self.split_windows(input_values, attention_mask)
        k = windows.shape[1]
        emb = self._encode(windows.reshape(batch * k, windows.shape[2]))
        hidden = self.trunk(emb)
        raw = {name: head(hidden) for name, head in self.heads.items()}

        mean = None
        if k > 1:
            w = (weights / weights.sum(dim=1, keepdim=True))[..., None]  # (B, K, 1)
            mean = lambda t: (t.reshape(batch, k, -1) * w).sum(dim=1)  # noqa: E731

        head_logits: dict[str, Tensor] = {}
        columns: list[Tensor] = []
        regression: dict[str, Tensor] = {}
        embedding: Tensor | None = None
        for spec in cfg.head_specs:
            behaviour = head_kind(spec.kind)
            pooled = behaviour.pool(raw[spec.name], mean)
            head_logits[spec.name] = pooled.logits
            if pooled.column is not None:
                columns.append(pooled.column)
            if behaviour.scalar:
                regression[spec.name] = pooled.logits
            if behaviour.embedding and embedding is None:
                embedding = pooled.logits
        if embedding is None:
            embedding = hidden if mean is None else mean(hidden)
        logits = torch.cat(columns, dim=-1) if columns else hidden.new_zeros(batch, 0)
        loss = head_losses = None
        if labels is not None:
            loss, head_losses = multitask_loss(head_logits, labels, cfg.head_specs, pos_weight)
        output = EnoOutput(loss=loss, head_losses=head_losses, logits=logits, head_logits=head_logits,
                           embedding=embedding, regression=regression)
        if return_dict is False:
            return output.to_tuple()
        return output
