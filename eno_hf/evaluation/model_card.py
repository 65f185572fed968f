"""Model cards (``README.md`` with Hugging Face metadata) for eno model directories.

Built with ``huggingface_hub``'s ``ModelCard`` / ``ModelCardData`` / ``EvalResult`` (no network:
the content is composed here, never fetched from a template on the Hub), in the Hugging Face
model card layout (https://huggingface.co/docs/hub/model-cards):

- ``write_model_card``: a model eno trained. Metadata: ``license: apache-2.0``, ``library_name``,
  ``pipeline_tag``, ``tags``, ``datasets``, ``base_model`` (the pretrained weights its encoder
  starts from, ``pretrained_weights``), and ``model-index`` with every test metric of
  ``metrics.json`` as an ``EvalResult`` (``eval_results_from_metrics``). Body: heads, data,
  configuration, cross-validated quality, metrics against baselines, intended use, limitations,
  how to use.
- ``write_imported_card``: a pretrained tagger converted by ``eno import-weights``, naming the
  source paper, code and the weights' licence (``WEIGHT_SOURCES``).

``huggingface_hub.ModelCard.load(path)`` reads either back; ``card.data.eval_results`` holds one
``EvalResult`` per metric, ``metric_name`` = ``"{head}/{metric}"`` (or ``"score"``), as
``eno_hf.metrics.flatten_metrics`` names them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from eno_hf.metrics import SUMMARY_KEYS
from eno_hf.models.heads import MULTILABEL

CARD_NAME = "README.md"
MAX_LABELS_SHOWN = 40
ENO_LICENSE = "apache-2.0"
"""Licence of models eno trains (the project's licence)."""
TASK_TYPE = "audio-classification"

WEIGHT_SOURCES: dict[str, dict[str, str]] = {
    "sota-music-tagging": {
        "license": "mit",
        "paper": 'Minz Won, Andres Ferraro, Dmitry Bogdanov, Xavier Serra, "Evaluation of CNN-based '
                 'automatic music tagging models", Sound and Music Computing Conference (SMC) 2020, '
                 "arXiv:2006.00751",
        "code": "https://github.com/minzwon/sota-music-tagging-models",
        "copyright": "Copyright (c) 2020 Music Technology Group, Universitat Pompeu Fabra (MIT License)",
    },
    "musicnn": {
        "license": "isc",
        "paper": 'Jordi Pons, Xavier Serra, "musicnn: pre-trained convolutional neural networks for music '
                 'audio tagging", ISMIR 2019 Late-Breaking/Demo, arXiv:1909.06654',
        "code": "https://github.com/jordipons/musicnn (PyPI package musicnn 0.1.0)",
        "copyright": "Copyright (c) Music Technology Group, Universitat Pompeu Fabra 2019 (ISC License)",
    },
}
"""Where eno's pretrained tagger weights come from, by folder of ``paths.models_dir``: licence (a
Hugging Face licence id), paper, code and copyright line (from the folders' ``LICENSE`` files)."""

ARCHITECTURES = {
    "fcn": "FCN (Choi et al. 2016, arXiv:1606.00298)",
    "crnn": "CRNN (Choi et al. 2016, arXiv:1609.04243)",
    "musicnn": "Musicnn (Pons et al. 2018, arXiv:1711.02520)",
    "vgg": "VGG-like 5-layer CNN (Pons & Serra 2019)",
}
TRAINED_ON = {"msd": "Million Song Dataset", "mtat": "MagnaTagATune", "jamendo": "MTG-Jamendo"}


def weight_source(name: str) -> str:
    """The ``WEIGHT_SOURCES`` key of a tagger weights name (file stem, e.g. ``msd-fcn``):
    ``musicnn`` for ``msd-musicnn`` / ``msd-vgg`` (Pons & Serra), else ``sota-music-tagging``."""
    stem = Path(str(name)).name.removesuffix(".safetensors")
    return "musicnn" if stem in ("msd-musicnn", "msd-vgg") else "sota-music-tagging"


def base_model_id(name: str) -> str:
    """``{source folder}/{weights stem}``, e.g. ``sota-music-tagging/msd-fcn``: where the weights
    live under ``paths.models_dir`` (there is no Hub repository of these weights)."""
    stem = Path(str(name)).name.removesuffix(".safetensors")
    return f"{weight_source(stem)}/{stem}"


def pretrained_weights(model_cfg: Mapping[str, Any]) -> list[str]:
    """Tagger weight names the encoder of ``model_cfg`` (``Settings.model`` as a dict) starts from:
    ``[tagger]`` for ``sota_tagger``, ``taggers`` for ``tagger_ensemble``, else ``[]``."""
    encoder = model_cfg.get("encoder")
    if encoder == "sota_tagger":
        path = model_cfg.get("encoder_path")
        return [Path(path).stem if path and str(path).endswith(".safetensors") else str(model_cfg.get("tagger"))]
    if encoder == "tagger_ensemble":
        return [str(t) for t in model_cfg.get("taggers") or []]
    return []


def _defined(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(float(value))


def eval_results_from_metrics(metrics: Mapping[str, Any], dataset_info: Mapping[str, Any],
                              split: str = "test") -> list[Any]:
    """One ``huggingface_hub.EvalResult`` per defined scalar metric of ``metrics``.

    Args:
        metrics: ``evaluate_heads`` output / ``metrics.json`` (``{head: {kind, ...}, "score": float}``);
            undefined values (None, NaN: e.g. ROC-AUC on a split without positives) are left out.
        dataset_info: ``{name, version, ...}`` of the evaluated dataset.
        split: the evaluated split.

    Returns:
        ``EvalResult(task_type="audio-classification", dataset_type=name, dataset_name="name version",
        dataset_split=split, dataset_revision=version, metric_type=metric, metric_name="head/metric",
        metric_value=float)``, in ``SUMMARY_KEYS`` order, ``score`` last.
    """
    from huggingface_hub import EvalResult

    name = str(dataset_info.get("name") or "dataset")
    version = dataset_info.get("version")
    common = {"task_type": TASK_TYPE, "task_name": "Music tagging", "dataset_type": name,
              "dataset_name": f"{name} {version}" if version else name, "dataset_split": split,
              "dataset_revision": str(version) if version else None}
    out = []
    for head, m in metrics.items():
        if not isinstance(m, Mapping) or m.get("kind") not in SUMMARY_KEYS:
            continue
        for key in SUMMARY_KEYS[m["kind"]]:
            if _defined(m.get(key)):
                out.append(EvalResult(metric_type=key, metric_name=f"{head}/{key}",
                                      metric_value=float(m[key]), **common))
    if _defined(metrics.get("score")):
        out.append(EvalResult(metric_type="score", metric_name="score", metric_value=float(metrics["score"]),
                              **common))
    return out


def _save_card(path: Path, data: Any, body: str) -> Path:
    """``ModelCard`` from ``data`` (``ModelCardData``) and a markdown ``body``, saved to ``path``."""
    from huggingface_hub import ModelCard

    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body.lstrip()}")
    path.parent.mkdir(parents=True, exist_ok=True)
    card.save(path)
    return path


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
    """Write ``{model_dir}/README.md`` (a ``huggingface_hub.ModelCard``, see the module docstring).

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
            *(["multi-label-classification"] if MULTILABEL in kinds else []),
            *(["mood"] if any("mood" in str(h.get("name")) or "descriptor" in str(h.get("name"))
                               for h in heads) else [])]
    weights = pretrained_weights(model_cfg)
    from huggingface_hub import ModelCardData

    data = ModelCardData(
        model_name=str(name), license=ENO_LICENSE, library_name="transformers", pipeline_tag=TASK_TYPE,
        tags=tags, datasets=[str(dataset_info["name"])] if dataset_info.get("name") else None,
        base_model=(base_model_id(weights[0]) if len(weights) == 1 else [base_model_id(w) for w in weights] or None),
        eval_results=eval_results_from_metrics(metrics, dataset_info,
                                               str(_get(settings_dict, "evaluate", "split", default="test")))
        or None,
    )

    thresholds = config.get("thresholds") or {}
    ds_lines = [f"- **{k}**: {v}" for k, v in dataset_info.items()]
    if dataset_info.get("path"):
        ds_lines.append(f"- dataset card (QC report, label counts, columns): `{dataset_info['path']}/README.md`")
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
        *([f"- pretrained weights (`base_model`): " + "; ".join(
            f"`{w}` ({WEIGHT_SOURCES[weight_source(w)]['paper']}; {WEIGHT_SOURCES[weight_source(w)]['license'].upper()} licence)"
            for w in weights)] if weights else []),
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
    return _save_card(model_dir / CARD_NAME, data, body)


def write_imported_card(out_dir: str | Path, name: str, tags: Sequence[str], *, arch: str | None = None,
                        sample_rate: int | None = None, window_s: float | None = None,
                        head: str = "tags") -> Path:
    """Write ``{out_dir}/README.md`` for a pretrained tagger converted by ``eno import-weights``.

    Args:
        out_dir: the converted model directory.
        name: weights name or file (``msd-fcn``, ``msd-musicnn``, ``.../mtat-crnn.safetensors``).
        tags: the tagger's output tags, in order.
        arch: architecture key (``fcn``, ``crnn``, ``musicnn``, ``vgg``...), for the description.
        sample_rate: input sample rate in Hz. window_s: native input length in seconds.
        head: the eno head holding the tags (labels are ``"{head}/{tag}"``).

    Returns:
        Path of the card. Metadata: the weights' licence (``WEIGHT_SOURCES``: MIT for
        sota-music-tagging, ISC for musicnn), ``base_model`` = ``base_model_id(name)``; no
        ``model-index`` (eno did not evaluate it).
    """
    from huggingface_hub import ModelCardData

    stem = Path(str(name)).name.removesuffix(".safetensors")
    source = WEIGHT_SOURCES[weight_source(stem)]
    trained_on = TRAINED_ON.get(stem.split("-")[0], "?")
    arch_text = ARCHITECTURES.get(str(arch).removeprefix("pons_"), str(arch or "?"))
    data = ModelCardData(model_name=stem, license=source["license"], library_name="transformers",
                         pipeline_tag=TASK_TYPE, base_model=base_model_id(stem),
                         tags=["audio", "music", "music-tagging", TASK_TYPE, "eno", "multi-label-classification"])
    shown = ", ".join(tags[:MAX_LABELS_SHOWN]) + (f", … ({len(tags)} in all)" if len(tags) > MAX_LABELS_SHOWN else "")
    body = f"""# {stem}

A pretrained music auto-tagger, converted unchanged into an eno model directory by
`eno import-weights {stem}` (one multi-label head `{head}`, the tagger's own output layer, no trunk):
`pipeline("audio-classification")` gives the published model's clip-level scores (the MSD
Musicnn/VGG to about 1e-3: their log-mel is computed per window here, per clip in the reference).

## Source

- paper: {source['paper']}
- code and weights: {source['code']}
- architecture: {arch_text}; trained on {trained_on}
- licence of the weights: **{source['license'].upper()}** — {source['copyright']}.
  The converted weights keep that licence; eno's own code is Apache-2.0.

## Input and output

- input: mono audio at {sample_rate or '?'} Hz, cut into consecutive {window_s or '?'} s windows
  (the partial tail is dropped); clip scores are the mean of the window sigmoids; no loudness
  normalization (as the reference scores were computed)
- {len(tags)} tags (`{head}/<tag>`): {shown}

## Limitations

The tags are those of the training collection ({trained_on}): their vocabulary, biases and label
noise come with it. Scores are not calibrated probabilities across tags.

## How to use

```python
import eno_hf  # registers the eno model classes with transformers
from transformers import pipeline

tagger = pipeline("audio-classification", model="path/to/{stem}", function_to_apply="sigmoid", top_k=5)
print(tagger("song.mp3"))
```

```bash
eno tag song.mp3 --model path/to/{stem} --top-k 5 --json
```
"""
    return _save_card(Path(out_dir) / CARD_NAME, data, body)
