"""Model card (``README.md`` with Hugging Face front matter) for a trained eno model directory.

Follows the Hugging Face model card layout (https://huggingface.co/docs/hub/model-cards): YAML
front matter (``library_name``, ``pipeline_tag``, ``tags``), then data, configuration, metrics
against baselines, intended use, limitations and how to use.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from eno_hf.evaluation.metrics import SUMMARY_KEYS

CARD_NAME = "README.md"
MAX_LABELS_SHOWN = 40


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _get(d: Mapping[str, Any] | None, *keys: str, default: Any = None) -> Any:
    node: Any = d
    for k in keys:
        if not isinstance(node, Mapping) or k not in node:
            return default
        node = node[k]
    return node


def metrics_table(metrics: Mapping[str, Any], baselines: Mapping[str, Mapping[str, Any]] | None) -> str:
    """Markdown table: rows ``head / metric``, columns model then each baseline."""
    baselines = baselines or {}
    names = list(baselines)
    lines = ["| " + " | ".join(["head", "metric", "model", *names]) + " |",
             "|---|---|" + "---:|" * (1 + len(names))]
    for head, m in metrics.items():
        if not isinstance(m, Mapping) or m.get("kind") not in SUMMARY_KEYS:
            continue
        for key in SUMMARY_KEYS[m["kind"]]:
            cells = [_fmt(m.get(key))] + [_fmt(_get(b, head, key)) for b in baselines.values()]
            lines.append(f"| {head} | {key} | " + " | ".join(cells) + " |")
    if "score" in metrics:
        cells = [_fmt(metrics.get("score"))] + [_fmt(b.get("score")) for b in baselines.values()]
        lines.append("| **score** | mean | " + " | ".join(f"**{c}**" for c in cells) + " |")
    return "\n".join(lines)


def _heads_section(heads: Sequence[Mapping[str, Any]], metrics: Mapping[str, Any]) -> str:
    rows = ["| head | kind | labels | test recordings |", "|---|---|---|---:|"]
    for h in heads:
        name, kind = h.get("name"), h.get("kind")
        labels = list(h.get("labels") or [])
        shown = ", ".join(labels[:MAX_LABELS_SHOWN]) + (f", … ({len(labels)} in all)"
                                                       if len(labels) > MAX_LABELS_SHOWN else "")
        n = _get(metrics, name, "n_samples", default="–")
        rows.append(f"| {name} | {kind} | {shown or '–'} | {n} |")
    return "\n".join(rows)


def write_model_card(
    model_dir: str | Path,
    settings_dict: Mapping[str, Any],
    metrics: Mapping[str, Any],
    baselines: Mapping[str, Mapping[str, Any]] | None,
    dataset_info: Mapping[str, Any],
    heads: Sequence[Mapping[str, Any]] | None = None,
    cv_report: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``{model_dir}/README.md``.

    Args:
        model_dir: trained model directory (``config.json`` is read, if present, for the heads).
        settings_dict: ``Settings.model_dump(mode="json")``.
        metrics: test metrics (``evaluate_heads`` output: ``{head: metrics, "score": float}``).
        baselines: ``{baseline_name: {head: metrics, "score": float}}`` (may be empty/None).
        dataset_info: ``{name, version, path, ...}`` (any further keys are listed).
        heads: head specs ``{name, kind, labels}``; default ``config.json`` ``heads``.
        cv_report: an ``eno cv`` report of the same dataset version (``evaluation.cv``): its
            cross-validated figures with intervals for every candidate and baseline it holds go
            into the card's "Cross-validated quality" section; None: the section says how to get one.

    Returns:
        Path of the card.
    """
    import json

    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {}
    if (model_dir / "config.json").is_file():
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    if heads is None:
        heads = list(config.get("heads") or settings_dict.get("model", {}).get("heads") or [])
    model_cfg = settings_dict.get("model", {}) or {}
    train_cfg = settings_dict.get("train", {}) or {}
    ds_cfg = settings_dict.get("dataset", {}) or {}
    name = _get(settings_dict, "registry", "model_name", default=model_dir.name)
    kinds = sorted({h.get("kind") for h in heads if h.get("kind")})
    tags = ["audio", "music", "music-tagging", "audio-classification", "eno",
            *(["multi-label-classification"] if "multilabel" in kinds else []),
            *(["mood"] if any("mood" in str(h.get("name")) or "descriptor" in str(h.get("name"))
                               for h in heads) else [])]
    front = {"library_name": "transformers", "pipeline_tag": "audio-classification", "tags": tags}
    if dataset_info.get("name"):
        front["datasets"] = [str(dataset_info["name"])]

    thresholds = config.get("thresholds") or {}
    ds_lines = [f"- **{k}**: {v}" for k, v in dataset_info.items()]
    seg = ds_cfg.get("segment", {}) or {}
    audio = ds_cfg.get("audio", {}) or {}
    split = ds_cfg.get("split", {}) or {}
    ds_lines += [
        f"- audio: mono, {audio.get('sample_rate', '?')} Hz, loudness-normalized to "
        f"{audio.get('target_lufs', '?')} LUFS (ITU-R BS.1770-4)",
        f"- segments: {seg.get('segment_s', '?')} s windows, hop {seg.get('hop_s', '?')} s; "
        "recording-level predictions average the segment probabilities",
        f"- splits: train/validation/test = {split.get('train', '?')}/{split.get('validation', '?')}/"
        f"{split.get('test', '?')}, grouped by `{_get(ds_cfg, 'source', 'group_column') or 'recording'}` "
        "(no group crosses splits), multi-label iterative stratification (seed "
        f"{split.get('seed', '?')})",
    ]
    cfg_lines = [
        f"- encoder: `{model_cfg.get('encoder', config.get('encoder_type', '?'))}`"
        + (f" (`{model_cfg.get('tagger')}`)" if model_cfg.get("encoder") == "sota_tagger" else ""),
        f"- fine-tuning: `{model_cfg.get('finetune', '?')}`"
        + (f" (rank {model_cfg.get('lora_rank')}, alpha {model_cfg.get('lora_alpha')})"
           if model_cfg.get("finetune") == "lora" else ""),
        f"- trunk: hidden_dim {model_cfg.get('hidden_dim', '?')}, dropout {model_cfg.get('dropout', '?')}; "
        "training crop " + (f"{model_cfg['crop_s']} s" if model_cfg.get("crop_s") else "= the encoder's native input length"),
        f"- training: {train_cfg.get('epochs', '?')} epochs max, batch {train_cfg.get('batch_size', '?')}, "
        f"learning rate {train_cfg.get('learning_rate', '?')}, weight decay {train_cfg.get('weight_decay', '?')}, "
        f"early stopping patience {train_cfg.get('early_stopping_patience', '?')} on "
        f"`{train_cfg.get('metric_for_best_model', '?')}`, seed {train_cfg.get('seed', '?')}",
        "- multi-label decision thresholds: " + ("tuned per tag for F1 on the validation split "
                                                 "(stored in `config.json` `thresholds`)"
                                                 if thresholds else "0.5"),
    ]
    if cv_report:
        from eno_hf.evaluation.cv import markdown_table as cv_table

        cv_section = (f"From `eno cv` on all recordings of this dataset version (`{cv_report.get('dataset', '?')}`, "
                      f"folds `{cv_report.get('folds_file', '?')}`); `default` is this configuration trained "
                      "afresh in every fold, the others are alternatives and baselines on the same folds "
                      "(docs/quality.md).\n\n" + cv_table(cv_report))
    else:
        cv_section = ("No cross-validation report for this dataset version. Run `eno cv --config <config>` "
                      "(5 artist-grouped folds x 3 repeats, 95 % intervals; docs/quality.md), then `eno run` again "
                      "(only the registration re-runs) or `eno register --model <run>/model`: the test-split figures below come from a few dozen recordings and are a "
                      "sanity check, not a quality estimate.")
    model_ref = f"path/to/{name}"
    body = f"""# {name}

A multi-task music tagger trained with **eno**: one audio encoder with a head per task
({", ".join(f"`{h.get('name')}` ({h.get('kind')})" for h in heads) or "no heads recorded"}).

## Heads

{_heads_section(heads, metrics)}

## Data

{chr(10).join(ds_lines)}

## Configuration

{chr(10).join(cfg_lines)}

## Cross-validated quality

{cv_section}

## Evaluation

Test split, recording level. Multi-label: macro/micro ROC-AUC, macro PR-AUC (average precision),
F1 at the decision thresholds; tags with a single class in the test split are left out of macro
averages. Single-label: accuracy, macro-F1, balanced accuracy. `score` = mean over heads of macro
ROC-AUC (multi-label) and macro-F1 (single-label). Baselines on the same recordings:
`label_prior` predicts the training label frequencies (ROC-AUC 0.5 by construction);
`feature_probe` is a logistic regression on fingerprint + MFCC statistics.

{metrics_table(metrics, baselines)}

For reference, published CNN taggers reach ROC-AUC ≈ 0.90–0.91 on MagnaTagATune top-50 and
≈ 0.82–0.83 on MTG-Jamendo top-50 (Won et al. 2020, arXiv:2006.00751); mood tags are harder
(MTG-Jamendo mood/theme ≈ 0.76–0.78). Numbers on a few hundred clips are not comparable to those
benchmarks and have wide confidence intervals.

## Intended use

Research and prototyping: tagging music recordings with moods/descriptors, genres and an emotion
quadrant, ranking or filtering a collection, and as a starting point for further fine-tuning.
Not for decisions about people, and not as ground truth for any catalogue.

## Limitations

- **Small data**: trained on a few hundred clips; many tags have only a handful of positives,
  so per-tag scores are noisy and rare tags are effectively unlearned.
- **AllMusic labels**: mood and genre tags are editorial AllMusic annotations (subjective,
  incomplete, applied per album/track by editors); a missing tag is not a negative.
- **30-s previews**: training clips are ~30-s previews; behaviour on full-length tracks is the
  average over windows and may miss changes within a song.
- The data are Western commercial popular music; other traditions are out of distribution.
- Single-label heads are exposed to `pipeline()` as probabilities through a sigmoid of
  `logit(softmax)`; read them per head (labels are `head/label`).

## How to use

```python
import eno_hf  # registers the eno model classes with transformers
from transformers import pipeline

tagger = pipeline("audio-classification", model="{model_ref}", function_to_apply="sigmoid", top_k=None)
for item in tagger("song.mp3"):
    print(item["label"], round(item["score"], 3))   # labels are "head/label"
```

Command line (JSON lines, one per file; folders are tagged recursively):

```bash
eno tag song.mp3 music_folder/ --model {name} --top-k 5 --json
```
"""
    card = "---\n" + yaml.safe_dump(front, sort_keys=False, allow_unicode=True) + "---\n\n" + body
    path = model_dir / CARD_NAME
    path.write_text(card, encoding="utf-8")
    return path
