"""``evaluate_model``: predict validation and test, tune thresholds, score, write the report.

Steps:

1. load the model (``EnoForAudioTagging.from_pretrained(model_dir)``);
2. recording-level predictions on ``evaluate.tune_thresholds_on`` (validation) with
   ``eno_hf.inference.predict.predict_dataset`` (segment probabilities averaged per recording);
3. per-tag F1-optimal thresholds on validation (``thresholds.tune_thresholds``);
4. predictions on ``evaluate.split`` (test) and ``metrics.evaluate_heads`` with those thresholds;
5. ``report.write_report`` (``metrics.json``, ``per_tag_{head}.csv``, PNGs, training curves when a
   ``trainer_state.json`` is found), ``thresholds.json``, ``validation_metrics.json``;
6. the thresholds are written into the model's ``config.json`` (``thresholds``, read by
   ``EnoModelConfig`` and the tagging code).

The model and prediction code is imported lazily, so this module imports without torch.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from eno_hf.evaluation.report import to_jsonable, write_json, write_report
from eno_hf.evaluation.thresholds import tune_thresholds
from eno_hf.metrics import evaluate_heads
from eno_hf.models import EnoForAudioTagging
from eno_hf.models.head_kinds import head_kind
from eno_hf.models.heads import HeadSpec
from eno_hf.models.weights import require_safetensors
from eno_hf.utils.io import atomic_write_json

if TYPE_CHECKING:  # pragma: no cover
    from eno_hf.config import Settings

log = logging.getLogger(__name__)


def load_model(model_dir: str | Path) -> Any:
    """``EnoForAudioTagging.from_pretrained(model_dir)`` in eval mode on CPU.

    Raises:
        FileNotFoundError: ``model_dir`` has no ``config.json``.
    """
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir}: not a model directory (no config.json)")
    require_safetensors(model_dir)  # never unpickles a pytorch_model.bin
    return EnoForAudioTagging.from_pretrained(str(model_dir), use_safetensors=True).eval()


def predict_split(model: Any, split: Any, batch_size: int, progress: str | None = None
                  ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Recording-level ``(probs, labels)`` of ``model`` on a dataset split (head name -> array),
    via ``eno_hf.inference.predict.predict_dataset`` (progress shown under the description
    ``progress`` when given)."""
    from eno_hf.inference.predict import predict_dataset

    pred = predict_dataset(model, split, batch_size=batch_size, progress=progress)
    return dict(pred.probs), dict(pred.labels)


def find_history(model_dir: str | Path) -> list[dict[str, Any]] | None:
    """The training log history (``trainer_state.json`` ``log_history``) of a model, if found.

    Looks in ``model_dir``, then the latest ``checkpoint-*`` beside it or under a sibling
    ``checkpoints/`` folder (the layouts of ``train_model`` and ``eno_hf.tagging``).
    """
    model_dir = Path(model_dir)
    candidates = [model_dir / "trainer_state.json"]
    for base in (model_dir.parent, model_dir.parent / "checkpoints"):
        ckpts = sorted(base.glob("checkpoint-*/trainer_state.json"),
                       key=lambda p: int(p.parent.name.split("-")[-1])
                       if p.parent.name.split("-")[-1].isdigit() else -1)
        candidates += ckpts[::-1]
    for path in candidates:
        if path.is_file():
            try:
                return list(json.loads(path.read_text(encoding="utf-8")).get("log_history") or [])
            except (OSError, ValueError):
                continue
    return None


def save_thresholds(model_dir: str | Path, thresholds: Mapping[str, Sequence[float]]) -> Path:
    """Write ``thresholds`` (head -> per-label list) into ``{model_dir}/config.json`` (merged with
    any thresholds already there). Returns the config path."""
    path = Path(model_dir) / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    merged = dict(config.get("thresholds") or {})
    merged.update({k: [float(x) for x in v] for k, v in thresholds.items()})
    config["thresholds"] = merged
    return atomic_write_json(path, config, sort_keys=True)


def model_heads(model: Any) -> list[HeadSpec]:
    """The heads of a model's config (``EnoModelConfig.head_specs``) whose kind has metrics
    (``HeadKind.metrics``: multilabel, singlelabel, regression)."""
    heads = getattr(getattr(model, "config", None), "head_specs", None) or []
    return [h for h in heads if head_kind(h.kind).metrics is not None]


def evaluate_model(
    model_dir: str | Path,
    dataset: Mapping[str, Any],
    out_dir: str | Path,
    settings: Settings | None = None,
    baselines: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Evaluate a trained model on ``dataset[settings.evaluate.split]`` (see module docstring).

    Args:
        model_dir: ``save_pretrained`` directory of an ``EnoForAudioTagging``.
        dataset: ``DatasetDict`` with the evaluation split (and ideally the validation split).
        out_dir: report folder (created).
        settings: ``eno_hf.config.Settings`` (default: ``Settings()``).
        baselines: optional ``{name: {head: metrics}}`` written to ``baselines.json`` beside the
            report.

    Returns:
        The test results (``evaluate_heads`` output) as JSON-safe values (NaN -> None), equal to
        the content of ``{out_dir}/metrics.json``.

    Raises:
        KeyError: the evaluation split is missing from ``dataset``.
        FileNotFoundError: ``model_dir`` is not a model directory.
    """
    if settings is None:
        from eno_hf.config import Settings

        settings = Settings()
    ev = settings.evaluate
    if ev.split not in dataset:
        raise KeyError(f"evaluate_model: the dataset has no {ev.split!r} split (has {list(dataset)})")
    batch_size = int(ev.batch_size or settings.train.eval_batch_size)
    out_dir = Path(out_dir)
    model = load_model(model_dir)
    heads = model_heads(model)
    multilabel = [h.name for h in heads if head_kind(h.kind).uses_thresholds]

    thresholds: dict[str, np.ndarray] = {}
    tune_split = ev.tune_thresholds_on
    if multilabel and tune_split and tune_split in dataset and len(dataset[tune_split]):
        v_probs, v_labels = predict_split(model, dataset[tune_split], batch_size,
                                           progress=f"evaluate: predicting {tune_split}")
        for name in multilabel:
            if name in v_probs and name in v_labels:
                thresholds[name] = tune_thresholds(v_labels[name], v_probs[name])
        val_results = evaluate_heads(heads, v_probs, v_labels, thresholds)
        write_json(out_dir / f"{tune_split}_metrics.json", val_results)
    elif multilabel:
        log.warning("evaluate_model: no %r split to tune thresholds on; using 0.5", tune_split)

    probs, labels = predict_split(model, dataset[ev.split], batch_size,
                                   progress=f"evaluate: predicting {ev.split}")
    results = evaluate_heads(heads, probs, labels, thresholds)
    arrays = {n: (labels[n], probs[n]) for n in multilabel if n in labels and n in probs}
    write_report(out_dir, results, heads, plots=ev.plots, arrays=arrays,
                 history=find_history(model_dir) if ev.plots else None,
                 baselines=baselines, top_k=ev.pr_top_k)
    write_json(out_dir / "thresholds.json", thresholds)
    if thresholds and ev.save_thresholds:
        save_thresholds(model_dir, {k: v.tolist() for k, v in thresholds.items()})
    return to_jsonable(results)
