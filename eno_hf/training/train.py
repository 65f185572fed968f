"""``train_model``: settings + ``DatasetDict`` -> trained, saved eno model.

Steps of ``train_model``:

1. typed heads (``HeadSpec``) from the dataset features (``dataset_heads``);
2. ``eno_hf.models.factory.create_model(settings, heads)`` and ``lora.apply_finetune`` (LoRA /
   frozen encoder / full fine-tuning, ``model.finetune``);
3. ``EnoTrainer`` with ``TrainingArguments``: evaluation and checkpoint each epoch, best checkpoint
   by ``train.metric_for_best_model`` (``eval_score`` = mean over heads of macro ROC-AUC
   (multi-label) and macro-F1 (single-label), on recording-level predictions = mean of segment
   probabilities), ``load_best_model_at_end``, ``EarlyStoppingCallback(patience)``; resumes from
   the last checkpoint in ``output_dir`` when ``train.resume`` and one exists;
4. LoRA merged into the weights, ``save_pretrained`` of model + ``EnoFeatureExtractor`` to
   ``{output_dir}/model`` (plus ``trainer_state.json`` with the log history);
5. recording-level predictions on validation and test (``eno_hf.inference.predict.predict_dataset``).

Cached encoder inputs (``model.finetune=frozen`` with an audio encoder, or ``lora`` with the
adapters in a ``TaggerEnsembleEncoder``'s top layers): ``eno_hf.training.cache`` computes the
encoder outputs (or frozen prefixes) once and returns them as datasets plus a stand-in encoder;
training runs on ``cache.training_view(model, cached)``, a view that shares the model's parameters,
so the real model is saved as is and takes raw audio. Random crops and ``train.augment`` do not
apply on this path (one fixed view per window; a warning is logged if augmentation was asked).
Validation/test predictions of ``TrainResult`` come from the cached vectors (same numbers as the
saved model on raw audio, up to float rounding).

Runs on CPU (no fp16); ``report_to=[]`` (ClearML is attached through a callback, see
``eno_hf.registry.clearml.ClearMLCallback``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
from datasets import Dataset, DatasetDict
from transformers import EarlyStoppingCallback, TrainerCallback, TrainingArguments
from transformers.trainer_callback import PrinterCallback
from transformers.trainer_utils import EvalPrediction, get_last_checkpoint

from eno_hf.config import Settings
from eno_hf.data.collate import EnoCollator, default_augmenter, label_key
from eno_hf.data.workers import torch_threads
from eno_hf.inference.predict import RecordingPredictions, predict_dataset, recording_predictions
from eno_hf.metrics import evaluate_heads, flatten_metrics
from eno_hf.models.factory import create_model
from eno_hf.models.head_kinds import head_kind
from eno_hf.models.heads import MULTILABEL, HeadSpec, head_specs_from_features
from eno_hf.training.cache import CACHE_SUBDIR, cache_inputs, cache_mode, training_view
from eno_hf.training.trainer import EnoTrainer
from eno_hf.utils.progress import trainer_progress_callback


log = logging.getLogger(__name__)

MODEL_SUBDIR = "model"
"""``train_model`` saves the final (merged) model in ``{output_dir}/model``."""


# ----------------------------------------------------------------------------- results
@dataclass
class TrainResult:
    """What ``train_model`` produced.

    Attributes:
        model_dir: ``{output_dir}/model`` (``from_pretrained``-loadable, LoRA merged).
        best_metric: best ``metric_for_best_model`` value seen (None if never evaluated).
        history: ``trainer.state.log_history`` (train logs incl. ``loss_{head}``, eval logs).
        val_predictions / test_predictions: ``predict_dataset`` on those splits (None if absent).
        metrics: recording-level ``evaluate_heads`` results on validation (``{}`` if absent).
        best_checkpoint: path of the best checkpoint, if any.
    """

    model_dir: Path
    best_metric: float | None
    history: list[dict[str, Any]]
    val_predictions: RecordingPredictions | None = None
    test_predictions: RecordingPredictions | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    best_checkpoint: str | None = None


# ----------------------------------------------------------------------------- heads
def dataset_heads(settings: Settings, split: Dataset) -> list[HeadSpec]:
    """``settings.model.heads`` as ``HeadSpec`` s with their label spaces read from
    ``split.features`` (``eno_hf.models.heads.head_specs_from_features``).

    Raises:
        ValueError: no heads configured, or a classification head's column is missing / not a
            ClassLabel column.
    """
    if not settings.model.heads:
        raise ValueError("model.heads is empty: configure at least one head")
    return head_specs_from_features(split.features, settings.model.heads)


def compute_pos_weight(split: Dataset, heads: Sequence[HeadSpec], max_weight: float = 100.0
                       ) -> dict[str, torch.Tensor]:
    """Per multi-label head with ``pos_weight``: ``negatives / positives`` per tag on ``split``.

    The BCE positive weighting of ``torch.nn.BCEWithLogitsLoss(pos_weight=...)``; tags without a
    positive get ``max_weight`` (also the upper clip). Rows whose labels are None are ignored.

    Returns:
        head name -> ``(n_tags,)`` float32 tensor.
    """
    out: dict[str, torch.Tensor] = {}
    for h in heads:
        if h.kind != MULTILABEL or not h.pos_weight:
            continue
        n = len(h.labels)
        pos = np.zeros(n, dtype=np.float64)
        rows = 0
        for ids in split[h.column]:
            if ids is None:
                continue
            rows += 1
            pos[np.asarray(ids, dtype=np.int64)] += 1
        weight = np.where(pos > 0, (rows - pos) / np.maximum(pos, 1), max_weight)
        out[h.name] = torch.tensor(np.clip(weight, 1e-3, max_weight), dtype=torch.float32)
    return out


# ----------------------------------------------------------------------------- metrics
def recording_metrics(
    heads: Sequence[HeadSpec],
    recording_ids: Sequence[str],
    probs: Mapping[str, np.ndarray],
    labels: Mapping[str, np.ndarray],
) -> tuple[dict[str, Any], RecordingPredictions]:
    """Average segment probabilities per recording (``inference.predict.recording_predictions``),
    then ``eno_hf.metrics.evaluate_heads``.

    Args:
        heads: head specs (``name, kind, labels``).
        recording_ids: ``(n_segments,)``.
        probs, labels: head -> segment-level arrays aligned with ``recording_ids``.

    Returns:
        ``(evaluate_heads results, RecordingPredictions)``.
    """
    preds = recording_predictions(heads, recording_ids, probs, labels)
    return evaluate_heads(heads, preds.probs, preds.labels), preds


def make_compute_metrics(heads: Sequence[HeadSpec], recording_ids: Sequence[str]):
    """``compute_metrics`` for ``EnoTrainer``: recording-level metrics on the eval split.

    ``EvalPrediction.predictions`` / ``label_ids`` are tuples in ``heads`` order (see
    ``EnoTrainer.prediction_step``); rows follow the eval dataset order (sequential sampler), so
    ``recording_ids`` (the eval split's column) maps them to recordings.

    Returns a function giving ``{"score": ..., "{head}/{metric}": ...}`` (the Trainer prefixes
    ``eval_``). A NaN ``score`` (no head with a defined metric) is reported as 0.0 so that
    best-model selection and early stopping keep working.
    """
    heads = list(heads)
    ids = [str(x) for x in recording_ids]

    def compute_metrics(pred: EvalPrediction) -> dict[str, float]:
        preds = pred.predictions if isinstance(pred.predictions, tuple) else (pred.predictions,)
        labs = pred.label_ids if isinstance(pred.label_ids, tuple) else (pred.label_ids,)
        if len(preds[0]) != len(ids):
            raise ValueError(f"compute_metrics: {len(preds[0])} predictions for {len(ids)} eval rows")
        probs = {h.name: np.asarray(p) for h, p in zip(heads, preds)}
        labels = {h.name: np.asarray(y) for h, y in zip(heads, labs)}
        results, _ = recording_metrics(heads, ids, probs, labels)
        flat = flatten_metrics(results)
        if math.isnan(flat["score"]):
            flat["score"] = 0.0
        return flat

    return compute_metrics


# ----------------------------------------------------------------------------- prediction
def _input_columns(settings: Settings) -> list[str]:
    if settings.model.encoder == "embeddings" and settings.model.embedding_columns:
        return list(settings.model.embedding_columns)
    return ["waveform"]


class LogCallback(TrainerCallback):
    """Trainer logs (losses, eval metrics) to this module's ``logging`` logger at DEBUG (``eno -v``)
    instead of stdout; at INFO the progress lines and the pipeline's summary say enough."""

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if state.is_local_process_zero and logs:
            log.debug("%s", {k: (round(v, 4) if isinstance(v, float) else v) for k, v in logs.items()})


# ----------------------------------------------------------------------------- training
def _finetune(model: torch.nn.Module, settings: Settings) -> torch.nn.Module:
    from eno_hf.models.lora import apply_finetune

    return apply_finetune(model, settings.model)


def _merge(model: torch.nn.Module) -> torch.nn.Module:
    from eno_hf.models.lora import merge_lora

    return merge_lora(model)


def _training_split(ds: Dataset, columns: Sequence[str]) -> Dataset:
    keep = [c for c in dict.fromkeys(columns) if c in ds.column_names]
    return ds.select_columns(keep).with_format("numpy")


def _greater_is_better(metric: str) -> bool:
    return "loss" not in metric


def training_arguments(settings: Settings, output_dir: Path, label_names: list[str], n_train: int | None = None,
                       evaluate: bool = True) -> TrainingArguments:
    """``TrainingArguments`` from ``settings.train``: eval/save/log each epoch (or, when
    ``max_steps`` ends training before the first epoch ends, once at ``max_steps``), best model at
    the end, CPU-friendly (no fp16, no pinned memory without CUDA), ``report_to=[]``.

    Args:
        n_train: training rows, to tell whether ``max_steps`` ends inside the first epoch.
        evaluate: False: no evaluation and no checkpoint (logs still each epoch / at ``max_steps``).
    """
    t = settings.train
    steps_per_epoch = math.ceil(n_train / t.batch_size) if n_train else None
    by_steps = bool(t.max_steps > 0 and steps_per_epoch and t.max_steps < steps_per_epoch)
    strategy = "steps" if by_steps else "epoch"
    kept = strategy if evaluate else "no"
    every = t.max_steps if by_steps else 500
    return TrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=float(t.epochs),
        max_steps=int(t.max_steps),
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.eval_batch_size,
        learning_rate=t.learning_rate,
        weight_decay=t.weight_decay,
        warmup_steps=float(t.warmup_ratio),
        eval_strategy=kept,
        save_strategy=kept,
        logging_strategy=strategy,
        eval_steps=every,
        save_steps=every,
        logging_steps=every,
        save_total_limit=2,
        load_best_model_at_end=evaluate,
        metric_for_best_model=t.metric_for_best_model if evaluate else None,
        greater_is_better=_greater_is_better(t.metric_for_best_model),
        seed=t.seed,
        data_seed=t.seed,
        report_to=[],
        dataloader_num_workers=t.num_workers,
        dataloader_pin_memory=torch.cuda.is_available(),
        remove_unused_columns=False,
        label_names=label_names,
        disable_tqdm=True,  # progress goes through eno_hf.utils.progress (trainer_progress_callback)
        save_only_model=False,
    )


class StopAfterEpochs(TrainerCallback):
    """Stop training once ``epochs`` epochs are done, the learning-rate schedule staying the one of
    ``train.epochs`` (a refit at an epoch chosen elsewhere, e.g. by cross-validation)."""

    def __init__(self, epochs: int) -> None:
        self.epochs = int(epochs)

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if state.epoch is not None and state.epoch >= self.epochs - 1e-6:
            control.should_training_stop = True
        return control


def best_epoch(trainer: EnoTrainer) -> int:
    """The epoch (1-based) of the best ``metric_for_best_model`` seen by ``trainer`` (the checkpoint
    ``load_best_model_at_end`` restored); the last epoch run when nothing was evaluated."""
    state = trainer.state
    key = trainer.args.metric_for_best_model or ""
    key = key if key.startswith("eval_") else f"eval_{key}"
    if state.best_metric is not None:
        for entry in state.log_history:
            if entry.get(key) == state.best_metric and entry.get("epoch") is not None:
                return max(1, int(round(entry["epoch"])))
    return max(1, int(round(state.epoch or 0)))


def fit(
    settings: Settings,
    model: torch.nn.Module,
    heads: Sequence[HeadSpec],
    train_ds: Dataset,
    val_ds: Dataset | None,
    output_dir: str | Path,
    input_columns: Sequence[str],
    pos_weight: Mapping[str, torch.Tensor] | None = None,
    callbacks: Sequence[TrainerCallback] | None = None,
    cached: bool = False,
    progress: str | None = "training",
) -> EnoTrainer:
    """The one training loop of eno: ``EnoTrainer`` with the recipe of ``settings.train`` on
    ``train_ds``, evaluated, checkpointed and early-stopped each epoch on ``val_ds`` (recording-level
    ``eval_score``, best checkpoint restored at the end). ``train_model`` (``eno train``) and the
    cross-validation of the default (``eno_hf.evaluation.cv.default``) both train through it.

    Args:
        settings: ``train`` (epochs, batch sizes, learning rates, weight decay, warm-up, seed,
            patience, resume, augment, num_workers) and ``model.crop_s``.
        model: the model to train (for cached inputs, a ``cache.training_view``); trained in place.
        heads: the trained heads (supervised kinds with a column in ``train_ds``).
        train_ds, val_ds: one row per segment (or cached window): ``recording_id``, the input
            columns, the heads' label columns. ``val_ds=None``: no evaluation, no checkpoint, no
            early stopping (stop with a ``StopAfterEpochs`` callback).
        output_dir: checkpoints (``train.resume`` resumes from the last one there).
        input_columns: the columns forming ``input_values`` (``["waveform"]`` or ``["embedding"]``).
        pos_weight: multi-label head -> ``(n_tags,)`` BCE positive weights (``compute_pos_weight``).
        callbacks: extra ``TrainerCallback`` s.
        cached: inputs are cached encoder vectors (one CPU thread; random crops and augmentation
            never apply to them).
        progress: description of the progress bar / log lines, or None for none.

    Returns:
        The ``EnoTrainer`` after ``train()`` (its ``model`` holds the best checkpoint when evaluated).
    """
    t = settings.train
    out = Path(output_dir)
    cfg = model.config
    sample_rate = int(cfg.sample_rate)
    crop_s = settings.model.crop_s or getattr(cfg, "chunk_s", None)
    crop_samples = int(round(crop_s * sample_rate)) if crop_s else None
    input_columns = list(input_columns)
    vocab = {h.name: list(h.labels) for h in heads if h.is_classification}
    label_names = [label_key(h.name) for h in heads]
    augmenter = default_augmenter(sample_rate, t.seed) if t.augment and input_columns == ["waveform"] else None
    train_collate = EnoCollator(heads, vocab, crop_samples, sample_rate, train=True,
                                augmenter=augmenter, seed=t.seed, input_columns=input_columns)
    eval_collate = EnoCollator(heads, vocab, None, sample_rate, train=False, input_columns=input_columns)

    args = training_arguments(settings, out, label_names, len(train_ds), evaluate=val_ds is not None)
    stopping = [EarlyStoppingCallback(early_stopping_patience=t.early_stopping_patience)] if val_ds is not None else []
    trainer = EnoTrainer(
        model=model,
        args=args,
        train_dataset=train_ds, eval_dataset=val_ds,
        data_collator=train_collate, eval_data_collator=eval_collate,
        compute_metrics=make_compute_metrics(heads, list(val_ds["recording_id"])) if val_ds is not None else None,
        callbacks=[*stopping, *(callbacks or [])],
        heads=heads,
        pos_weight=pos_weight,
        encoder_learning_rate=t.encoder_learning_rate,
    )
    # transformers' PrinterCallback print()s every log dict to stdout (breaks ``eno ... --json``)
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(LogCallback())
    if progress:
        trainer.add_callback(trainer_progress_callback(progress))  # a bar on a terminal, else log lines
    last = get_last_checkpoint(str(out)) if t.resume and out.is_dir() else None
    if last:
        log.info("resuming from %s", last)
    # on cached vectors every step is small: one CPU thread (a second one only spins: 6 epochs of
    # the default took 14 s with one thread vs 28 s with two on a busy 2-core machine, same result)
    with torch_threads(1) if cached and not torch.cuda.is_available() else nullcontext():
        trainer.train(resume_from_checkpoint=last)
    return trainer


def train_model(
    settings: Settings,
    dataset: DatasetDict,
    output_dir: str | Path | None = None,
    callbacks: Sequence[TrainerCallback] | None = None,
) -> TrainResult:
    """Train an eno model on ``dataset`` (splits ``train`` and ``validation``; ``test`` optional).

    Args:
        settings: ``model`` (encoder, heads, finetune, crop_s), ``train`` (epochs, batch sizes,
            learning rates, patience, seed, resume, num_workers).
        dataset: one row per segment: ``waveform`` (or ``model.embedding_columns`` for
            ``encoder=embeddings``), ``recording_id``, label columns.
        output_dir: checkpoints and ``model/``; default ``train.output_dir`` or
            ``{data_root}/runs/{registry.model_name}``.
        callbacks: extra ``TrainerCallback`` s (e.g. ``ClearMLCallback``).

    Returns:
        ``TrainResult``.

    Raises:
        ValueError: missing ``train``/``validation`` split or heads (see ``dataset_heads``).
    """
    from eno_hf.models.feature_extraction import EnoFeatureExtractor

    for split in ("train", "validation"):
        if split not in dataset:
            raise ValueError(f"train_model: dataset has no {split!r} split (splits: {list(dataset)})")
    t = settings.train
    out = Path(output_dir or t.output_dir or Path(settings.paths.data_root) / "runs" / settings.registry.model_name)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(t.seed)

    heads = dataset_heads(settings, dataset["train"])
    model = create_model(settings, heads)
    model = _finetune(model, settings)
    cfg = model.config
    sample_rate = int(cfg.sample_rate)
    input_columns = _input_columns(settings)

    train_heads = [h for h in heads if head_kind(h.kind).supervised and h.column in dataset["train"].column_names]
    columns = [*input_columns, "recording_id", *(h.column for h in train_heads)]
    mode = cache_mode(settings, model)
    cached = None  # trained on cached vectors (frozen outputs or prefixes) through a view of the model
    if mode is not None:
        if t.augment:
            log.warning("train.augment ignored: model.finetune=%s trains on cached encoder %s",
                        settings.model.finetune, "prefixes" if mode == "prefix" else "outputs")
        cached = cache_inputs(model, dataset, columns, out / CACHE_SUBDIR, mode)
        input_columns = cached.input_columns
        train_ds, val_ds = cached.datasets["train"], cached.datasets["validation"]
    else:
        train_ds = _training_split(dataset["train"], columns)
        val_ds = _training_split(dataset["validation"], columns)

    trainer = fit(settings, training_view(model, cached) if cached is not None else model, train_heads,
                  train_ds, val_ds, out, input_columns, pos_weight=compute_pos_weight(dataset["train"], train_heads),
                  callbacks=callbacks, cached=cached is not None)
    if cached is not None:  # the view shares its trained parameters with ``model``
        with torch_threads(1) if not torch.cuda.is_available() else nullcontext():
            val_pred = predict_dataset(trainer.model, cached.datasets["validation"], t.eval_batch_size, input_columns)
            test_pred = (predict_dataset(trainer.model, cached.datasets["test"], t.eval_batch_size, input_columns)
                         if "test" in cached.datasets else None)
    model = _merge(model if cached is not None else trainer.model)
    model_dir = out / MODEL_SUBDIR
    model.save_pretrained(model_dir)
    EnoFeatureExtractor(sampling_rate=sample_rate, target_lufs=getattr(cfg, "target_lufs", None)
                        ).save_pretrained(model_dir)
    trainer.state.save_to_json(str(model_dir / "trainer_state.json"))  # log history for reports

    if cached is None:
        val_pred = predict_dataset(model, dataset["validation"], t.eval_batch_size, input_columns)
        test_pred = (predict_dataset(model, dataset["test"], t.eval_batch_size, input_columns)
                     if "test" in dataset else None)
    metrics = evaluate_heads(train_heads, val_pred.probs, val_pred.labels)
    return TrainResult(
        model_dir=model_dir,
        best_metric=trainer.state.best_metric,
        history=list(trainer.state.log_history),
        val_predictions=val_pred,
        test_predictions=test_pred,
        metrics=metrics,
        best_checkpoint=trainer.state.best_model_checkpoint,
    )
