"""``EnoTrainer``: a ``transformers.Trainer`` for multi-task audio tagging.

- ``compute_loss`` runs ``model(input_values=..., attention_mask=..., labels={head: labels_{head}})``:
  the model computes ``models.losses.multitask_loss`` over the heads that have labels; the mean
  per-head losses since the last log are logged as ``loss_{head}`` next to ``loss``.
- ``prediction_step`` returns per-head *probabilities* (sigmoid for multi-label, softmax for
  single-label, the raw value for regression) as a tuple in ``eval_heads`` order, and the labels as a
  tuple in ``label_names`` order, so ``compute_metrics`` can average segments per recording.
- With ``encoder_learning_rate`` set, the optimizer gets separate parameter groups for the encoder
  (``encoder.*`` parameters) and everything else (trunk + heads, at ``args.learning_rate``) —
  the usual discriminative fine-tuning split (Howard & Ruder 2018, ULMFiT).

Create it with ``TrainingArguments(remove_unused_columns=False, label_names=[...])``: the collator
needs the raw dataset columns, and ``label_names`` tells the Trainer which batch keys are labels.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from transformers import Trainer

from eno_hf.data.collate import LABEL_PREFIX, label_key
from eno_hf.models.head_kinds import head_kind, head_probabilities
from eno_hf.models.heads import HeadSpec

__all__ = ["EnoTrainer", "head_probabilities", "is_encoder_parameter"]



def _model_inputs(inputs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: inputs[k] for k in ("input_values", "attention_mask") if inputs.get(k) is not None}


def is_encoder_parameter(name: str) -> bool:
    """True for parameters of the model's ``encoder`` submodule (also under a peft wrapper)."""
    return "encoder" in name.split(".")


class EnoTrainer(Trainer):
    """``transformers.Trainer`` with the multi-task loss and per-head probability predictions.

    Args:
        heads: the model's ``HeadSpec`` s (other forms are read through ``HeadSpec.coerce``).
            Heads whose ``labels_{name}`` key appears in ``args.label_names`` are trained and
            evaluated (``eval_heads``); others (e.g. projection heads) are ignored by the loss.
        pos_weight: optional head name -> ``(n,)`` positive weights for multi-label BCE.
        encoder_learning_rate: learning rate of encoder parameters; None = one group at
            ``args.learning_rate``.
        eval_data_collator: collator for evaluation/prediction dataloaders (whole segments);
            default the training ``data_collator``.
        **kwargs: passed to ``transformers.Trainer`` (model, args, datasets, data_collator,
            compute_metrics, callbacks, ...).

    Raises:
        ValueError: no head is both a loss kind and listed in ``args.label_names``.
    """

    def __init__(
        self,
        *args: Any,
        heads: Sequence[HeadSpec | Mapping[str, Any]],
        pos_weight: Mapping[str, Tensor] | None = None,
        encoder_learning_rate: float | None = None,
        eval_data_collator: Callable[[list[dict[str, Any]]], dict[str, Tensor]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.eval_data_collator = eval_data_collator
        self.heads = [HeadSpec.coerce(h) for h in heads]
        self.pos_weight = dict(pos_weight or {})
        self.encoder_learning_rate = encoder_learning_rate
        label_names = list(self.args.label_names or [])
        self.eval_heads = [h for h in self.heads if head_kind(h.kind).supervised and label_key(h.name) in label_names]
        if not self.eval_heads:
            raise ValueError(f"EnoTrainer: no trainable head among label_names={label_names}")
        # Labels tuple order in predictions = eval_heads order.
        self.label_names = [label_key(h.name) for h in self.eval_heads]
        self.loss_is_scaled_for_ga = False
        self._head_loss_sums: dict[str, float] = {}
        self._head_loss_count = 0

    # ------------------------------------------------------------------ loss
    def _batch_labels(self, inputs: Mapping[str, Any]) -> dict[str, Tensor]:
        return {k[len(LABEL_PREFIX):]: v for k, v in inputs.items()
                if k.startswith(LABEL_PREFIX) and isinstance(v, Tensor)}

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Tensor | int | None = None,
    ) -> Tensor | tuple[Tensor, Any]:
        """``model(input_values, labels=..., pos_weight=...)``: the model computes the multi-task
        loss (``EnoOutput.loss``, per head ``head_losses``); returns ``loss`` (and outputs)."""
        labels = self._batch_labels(inputs)
        outputs = model(**_model_inputs(inputs), labels=labels, pos_weight=self.pos_weight or None)
        loss, per_head = outputs["loss"], outputs["head_losses"]
        if model.training:
            for name, value in per_head.items():
                self._head_loss_sums[name] = self._head_loss_sums.get(name, 0.0) + float(value.detach())
            self._head_loss_count += 1
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add ``loss_{head}`` (mean since the last training log) to training logs."""
        if "loss" in logs and self._head_loss_count:
            for name, total in self._head_loss_sums.items():
                logs[f"loss_{name}"] = round(total / self._head_loss_count, 6)
            self._head_loss_sums, self._head_loss_count = {}, 0
        super().log(logs, start_time)

    # ------------------------------------------------------------------ predictions
    def prediction_step(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        prediction_loss_only: bool,
        ignore_keys: list[str] | None = None,
    ) -> tuple[Tensor | None, tuple[Tensor, ...] | None, tuple[Tensor, ...] | None]:
        """Returns ``(loss, per-head probabilities tuple, per-head labels tuple)``.

        Probabilities follow ``head_probabilities`` in ``eval_heads`` order; labels are the batch
        tensors ``labels_{head}`` in the same order (None when the batch has no labels).
        """
        inputs = self._prepare_inputs(inputs)
        labels = self._batch_labels(inputs)
        has_labels = all(h.name in labels for h in self.eval_heads)
        with torch.no_grad():
            if has_labels:
                loss, outputs = self.compute_loss(model, inputs, return_outputs=True)
                loss = loss.detach().mean()
            else:
                loss, outputs = None, model(**_model_inputs(inputs))
        if prediction_loss_only:
            return loss, None, None
        head_logits = outputs["head_logits"] if isinstance(outputs, Mapping) else outputs.head_logits
        probs = tuple(p.detach() for p in head_probabilities(head_logits, self.eval_heads))
        label_tuple = (tuple(labels[h.name].detach() for h in self.eval_heads)
                       if has_labels else None)
        return loss, probs, label_tuple

    # ------------------------------------------------------------------ dataloaders
    def _with_eval_collator(self, make: Callable[[], Any]) -> Any:
        if self.eval_data_collator is None:
            return make()
        train_collator, self.data_collator = self.data_collator, self.eval_data_collator
        try:
            return make()
        finally:
            self.data_collator = train_collator

    def get_eval_dataloader(self, eval_dataset: Any = None) -> torch.utils.data.DataLoader:
        """As ``Trainer.get_eval_dataloader``, with ``eval_data_collator``."""
        return self._with_eval_collator(lambda: super(EnoTrainer, self).get_eval_dataloader(eval_dataset))

    def get_test_dataloader(self, test_dataset: Any) -> torch.utils.data.DataLoader:
        """As ``Trainer.get_test_dataloader``, with ``eval_data_collator``."""
        return self._with_eval_collator(lambda: super(EnoTrainer, self).get_test_dataloader(test_dataset))

    # ------------------------------------------------------------------ optimizer
    def create_optimizer(self, model: nn.Module | None = None) -> torch.optim.Optimizer:
        """AdamW (per ``args.optim``) with encoder/non-encoder x decay/no-decay parameter groups.

        Without ``encoder_learning_rate`` this is the Trainer default.
        """
        if self.encoder_learning_rate is None or self.optimizer is not None:
            return super().create_optimizer(model)
        opt_model = self.model if model is None else model
        decay = set(self.get_decay_parameter_names(opt_model))
        groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
        for name, p in opt_model.named_parameters():
            if p.requires_grad:
                groups.setdefault((is_encoder_parameter(name), name in decay), []).append(p)
        param_groups = [
            {"params": params,
             "weight_decay": self.args.weight_decay if use_decay else 0.0,
             "lr": self.encoder_learning_rate if is_enc else self.args.learning_rate}
            for (is_enc, use_decay), params in sorted(groups.items()) if params
        ]
        optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
        self.optimizer = optimizer_cls(param_groups, **optimizer_kwargs)
        return self.optimizer
