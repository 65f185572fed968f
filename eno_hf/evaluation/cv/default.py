"""Cross-validation of the *default* model itself, trained per fold exactly as ``eno train`` trains it.

The default of ``configs/small.yaml`` is a ``tagger_ensemble`` fine-tuned with LoRA on the top layer
of every sub-tagger (``model.finetune=lora``): ``eno train`` caches the encoder's frozen bottoms
(``TaggerEnsembleEncoder.frozen_prefix``, ``eno_hf.training.cache``) and trains the LoRA-adapted
tops, trunk and heads on them with ``eno_hf.training.train.fit``. Here:

1. ``load_prefix``: the frozen prefix of every inference window of every split, computed once per
   dataset version and model by ``training.cache.cached_encode_split`` (memory-mapped ``.npy``
   under ``{data_root}/cache/cv-features/{dataset}-{version}/prefix/``). ``frozen_features`` turns
   it into the per-recording frozen ensemble features (the un-adapted tops, mean over a
   recording's windows): the ``ensemble`` block of the probes.
2. ``train_fold``: per outer fold a fresh model (``models.factory.create_model`` +
   ``models.lora.apply_finetune``, seeded), the encoder's standardization set from the training
   part's windows (``cache.set_prefix_standardization``), the per-window datasets of the training
   and validation parts built by ``cache.cached_split`` from the dataset's own rows, and
   ``training.train.fit`` with the config's recipe: the ``transformers.Trainer`` AdamW, schedule,
   batch size, ``compute_pos_weight`` for heads that ask for it, evaluation each epoch on the
   validation part (``eval_score``), early stopping and best-checkpoint restore. The validation
   part is an artist-grouped ``1 / validation_inner`` of the outer training part (1/9 for the
   80/10/10 split: the default trains on the same share of its non-test data as ``eno train``).
3. ``fit_predict_default``: the quadrant temperature (Guo et al. 2017) is fitted on the validation
   part's predictions; test probabilities are the window means per recording (``predict_dataset``).
   ``refit`` candidates train a fresh model on the whole outer training part, stopped at the epoch
   chosen on the validation part (same learning-rate schedule); ``seeds`` averages models.

So ``eno train`` and the CV of the default share one trainer: the same fold trained through both
gives the same validation metrics (tested in ``tests/evaluation/cv/test_default.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from eno_hf.evaluation.cv.calibration import fit_temperature, probabilities
from eno_hf.evaluation.cv.candidates import Candidate
from eno_hf.evaluation.cv.data import CVData, PrefixPart, owner_index
from eno_hf.evaluation.cv.features import cache_dir
from eno_hf.evaluation.cv.folds import inner_folds
from eno_hf.models.head_kinds import head_kind
from eno_hf.models.heads import SINGLELABEL

if TYPE_CHECKING:  # pragma: no cover
    from eno_hf.config import Settings
    from eno_hf.models.heads import HeadSpec

log = logging.getLogger(__name__)

PREFIX_SUBDIR = "prefix"
"""``{cv-features cache}/prefix/``: ``training.cache.cached_encode_split`` files of every split."""


def validation_inner(settings: Settings) -> int:
    """How many parts the outer training part is cut into so that one (the validation part) has the
    config's share: ``round((train + validation) / validation)`` of ``dataset.split`` (80/10/10 -> 9), at
    least 2. So the default in CV trains on the same share of its non-test data as ``eno train``.

    Raises:
        ValueError: ``dataset.split.validation`` is 0.
    """
    split = settings.dataset.split
    if split.validation <= 0:
        raise ValueError("dataset.split.validation must be > 0: the default picks its epoch on it")
    return max(2, int(round((split.train + split.validation) / split.validation)))


def model_heads(settings: Settings, split: Any) -> list[HeadSpec]:
    """``settings.model.heads`` as ``HeadSpec`` s with the label spaces of ``split.features``
    (``training.train.dataset_heads``)."""
    from eno_hf.training.train import dataset_heads

    return dataset_heads(settings, split)


def fresh_model(settings: Settings, heads: Sequence[HeadSpec], seed: int) -> Any:
    """A fresh default model as ``train_model`` makes it: ``torch.manual_seed(seed)``, then
    ``create_model`` + ``apply_finetune(settings.model)``.

    Raises:
        ValueError: the model does not train on cached prefixes (``training.cache.cache_mode`` is
            not ``"prefix"``: ``model.finetune=lora`` on a ``tagger_ensemble`` encoder).
    """
    import torch

    from eno_hf.models.factory import create_model
    from eno_hf.models.lora import apply_finetune
    from eno_hf.training.cache import cache_mode

    torch.manual_seed(seed)
    model = apply_finetune(create_model(settings, list(heads)), settings.model)
    if cache_mode(settings, model) != "prefix":
        raise ValueError("cross-validating the config's model needs one trained on cached prefixes "
                         "(model.finetune=lora on a tagger_ensemble encoder)")
    return model


def load_prefix(settings: Settings, dataset: Any, dataset_path: str | Path, data_root: str | Path,
                ids: np.ndarray) -> list[PrefixPart]:
    """The frozen prefixes of every window of every split of ``dataset``, from the cache of
    ``training.cache.cached_encode_split`` in ``{cv-features cache}/prefix/`` or computed there.

    Args:
        ids: the CV recording ids (``CVData.ids``) the windows are indexed into.

    Returns:
        one ``PrefixPart`` per split, in the dataset's split order.

    Raises:
        FileNotFoundError: tagger weights absent. ValueError: see ``fresh_model``.
    """
    from eno_hf.training.cache import cached_encode_split

    first = next(iter(dataset.values()))
    model = fresh_model(settings, model_heads(settings, first), settings.train.seed)
    directory = cache_dir(data_root, dataset_path) / PREFIX_SUBDIR
    parts = []
    for name, split in dataset.items():
        features, rows = cached_encode_split(model, split, directory, name, prefix=True)
        recordings = np.asarray(split["recording_id"], dtype=str)
        parts.append(PrefixPart(split, features, np.asarray(rows, dtype=np.int64),
                                owner_index(recordings[np.asarray(rows, dtype=np.int64)], ids)))
    return parts


def frozen_features(settings: Settings, parts: Sequence[PrefixPart], n: int) -> np.ndarray:
    """Per-recording frozen ensemble features: the pretrained (un-adapted) tops on the cached prefixes
    (``raw_from_prefix``, mean+max over each tagger's windows), averaged over the recording's windows.

    Returns:
        ``(n, output_dim)`` float64, row ``i`` = recording ``CVData.ids[i]``.

    Raises:
        ValueError: a recording without a window.
    """
    import torch

    model = fresh_model(settings, model_heads(settings, parts[0].split), settings.train.seed)
    encoder = model.encoder.eval()
    sums: np.ndarray | None = None
    counts = np.zeros(n, dtype=np.int64)
    with torch.no_grad():
        for part in parts:
            if not len(part.rows):
                continue
            raw = torch.cat([encoder.raw_from_prefix(p, model.window_samples)
                             for p in torch.from_numpy(np.array(part.features, dtype=np.float32)).split(64)]).double().numpy()
            sums = np.zeros((n, raw.shape[1])) if sums is None else sums
            np.add.at(sums, part.owner, raw)
            counts += np.bincount(part.owner, minlength=n)
    if sums is None or (counts == 0).any():
        raise ValueError(f"{int((counts == 0).sum())} recordings have no prefix window")
    return sums / counts[:, None]


def _select(parts: Sequence[PrefixPart], recordings: np.ndarray) -> list[tuple[PrefixPart, np.ndarray]]:
    """Per part, the windows (positions, in cache order) of ``recordings`` (indices into ``CVData.ids``)."""
    return [(p, np.flatnonzero(np.isin(p.owner, recordings))) for p in parts]


def window_dataset(parts: Sequence[PrefixPart], recordings: np.ndarray, columns: Sequence[str]) -> Any:
    """One row per cached window of ``recordings``: ``columns`` of the dataset's rows + ``embedding``
    (the prefix), built by ``training.cache.cached_split`` as ``eno train`` builds its splits
    (parts in split order, windows in cache order). Returns a numpy-format ``datasets.Dataset``."""
    from datasets import concatenate_datasets

    from eno_hf.training.cache import cached_split

    pieces = [cached_split(p.split, np.asarray(p.features[sel]), p.rows[sel], columns)
              for p, sel in _select(parts, recordings) if len(sel)]
    ds = pieces[0] if len(pieces) == 1 else concatenate_datasets(pieces)
    return ds.with_format("numpy")


def _segment_rows(parts: Sequence[PrefixPart], recordings: np.ndarray, ids: np.ndarray, columns: Sequence[str]) -> Any:
    """The dataset rows (segments) of ``recordings``, ``columns`` only (``compute_pos_weight``'s input)."""
    from datasets import concatenate_datasets

    pieces = []
    for p in parts:
        owner = owner_index(np.asarray(p.split["recording_id"], dtype=str), ids)
        rows = np.flatnonzero(np.isin(owner, recordings))
        if len(rows):
            pieces.append(p.split.select_columns(list(columns)).select(rows.tolist()))
    return pieces[0] if len(pieces) == 1 else concatenate_datasets(pieces)


def train_fold(settings: Settings, data: CVData, fit_rec: np.ndarray, val_rec: np.ndarray | None, seed: int,
               work_dir: str | Path, stop_after: int | None = None) -> tuple[Any, dict[str, Any]]:
    """Train one fresh default model on the windows of ``fit_rec`` through ``training.train.fit``.

    Args:
        settings: the config (``train`` recipe; ``train.seed`` is replaced by ``seed``).
        data: ``CVData`` with ``prefix`` set.
        fit_rec, val_rec: indices into ``data.ids`` of the training and validation recordings;
            ``val_rec=None``: no validation, training stops after ``stop_after`` epochs (the refit).
        seed: model initialisation and ``Trainer`` seed.
        work_dir: an empty folder for the checkpoints.
        stop_after: stop after this many epochs (learning-rate schedule of ``train.epochs`` unchanged).

    Returns:
        ``(model, info)``: the trained model (a ``training_view`` reading ``embedding`` rows; best
        checkpoint restored when validated), ``info = {"best_epoch", "epochs_run", "val_score"}``.

    Raises:
        ValueError: ``data.prefix`` missing (see ``load_prefix``).
    """
    from eno_hf.training.cache import EMBEDDING_COLUMN, CachedInputs, PrefixInput, set_prefix_standardization, training_view
    from eno_hf.training.train import StopAfterEpochs, best_epoch, compute_pos_weight, fit

    if not data.prefix:
        raise ValueError("train_fold: the CV data hold no cached prefixes (load_prefix)")
    run = settings.model_copy(update={"train": settings.train.model_copy(update={"seed": int(seed)})})
    first = data.prefix[0].split
    heads = model_heads(run, first)
    model = fresh_model(run, heads, seed)
    train_heads = [h for h in heads if head_kind(h.kind).supervised and h.column in first.column_names]
    columns = ["recording_id", *(h.column for h in train_heads)]
    fit_ds = window_dataset(data.prefix, fit_rec, columns)
    val_ds = window_dataset(data.prefix, val_rec, columns) if val_rec is not None else None
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    fit_prefixes = np.concatenate([np.asarray(p.features[sel]) for p, sel in _select(data.prefix, fit_rec)])
    set_prefix_standardization(model, fit_prefixes, work)
    stand_in = PrefixInput(model.encoder, model.window_samples)
    view = training_view(model, CachedInputs("prefix", {}, stand_in, {"input_dim": int(fit_prefixes.shape[1]),
                                                                         "columns": [EMBEDDING_COLUMN]}))
    del fit_prefixes
    pos_weight = (compute_pos_weight(_segment_rows(data.prefix, fit_rec, data.ids, [h.column for h in train_heads]),
                                     train_heads) if any(h.pos_weight for h in train_heads) else {})
    trainer = fit(run, view, train_heads, fit_ds, val_ds, work, [EMBEDDING_COLUMN], pos_weight=pos_weight,
                  callbacks=[StopAfterEpochs(stop_after)] if stop_after else None, cached=True, progress=None)
    info = {"best_epoch": best_epoch(trainer) if val_ds is not None else int(round(trainer.state.epoch or 0)),
            "epochs_run": int(round(trainer.state.epoch or 0)),
            "val_score": float(trainer.state.best_metric) if trainer.state.best_metric is not None else float("nan")}
    return trainer.model, info


def predict_recordings(model: Any, data: CVData, recordings: np.ndarray, batch_size: int) -> dict[str, np.ndarray]:
    """head -> ``(len(recordings), n_out)`` probabilities of ``recordings`` (window probabilities
    averaged per recording, ``inference.predict.predict_dataset``), rows in ``recordings`` order."""
    from eno_hf.inference.predict import predict_dataset
    from eno_hf.training.cache import EMBEDDING_COLUMN

    ds = window_dataset(data.prefix or [], recordings, ["recording_id"])
    pred = predict_dataset(model, ds, batch_size, [EMBEDDING_COLUMN])
    order = owner_index(data.ids[recordings], np.asarray(pred.recording_ids, dtype=str))
    return {h.name: np.asarray(pred.probs[h.name], dtype=np.float64)[order] for h in data.heads}


def fit_predict_default(cand: Candidate, data: CVData, train: np.ndarray, test: np.ndarray, seed: int = 0
                        ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """One outer fold of the default model (``run.fit_predict`` for ``model="default"``; see the
    module docstring). ``data`` needs ``settings`` and ``prefix`` (``run.cross_validate`` sets them).

    Returns:
        ``(probs, info)`` as ``run.fit_predict``; ``info`` holds ``best_epoch`` / ``epochs_run``
        (one per seed) and the quadrant temperature.
    """
    import tempfile

    settings = data.settings
    itr, iva = inner_folds(data.groups[train], cand.val_inner or validation_inner(settings))[0]
    fit_rec, val_rec = train[itr], train[iva]
    batch = settings.train.eval_batch_size
    sums: dict[str, np.ndarray] = {}
    vsums: dict[str, np.ndarray] = {}
    infos = []
    for s in range(cand.seeds):
        model_seed = seed * 1000 + s
        with tempfile.TemporaryDirectory(prefix="eno-cv-default-") as tmp:
            model, info = train_fold(settings, data, fit_rec, val_rec, model_seed, Path(tmp) / "fit")
            infos.append(info)
            for k, v in predict_recordings(model, data, val_rec, batch).items():
                vsums[k] = vsums.get(k, 0.0) + v / cand.seeds
            if cand.refit:  # a fresh model on training + validation part, stopped at the chosen epoch
                model, _ = train_fold(settings, data, train, None, model_seed, Path(tmp) / "refit",
                                      stop_after=max(1, info["best_epoch"]))
            for k, v in predict_recordings(model, data, test, batch).items():
                sums[k] = sums.get(k, 0.0) + v / cand.seeds
    out: dict[str, np.ndarray] = {}
    info_out: dict[str, Any] = {"best_epoch": [i["best_epoch"] for i in infos],
                                "epochs_run": [i["epochs_run"] for i in infos]}
    for h in data.heads:
        name = h.name
        if h.kind == SINGLELABEL:
            temp = fit_temperature(np.log(np.clip(vsums[name], 1e-7, None)), data.labels[name][val_rec])
            info_out[f"{name}_temperature"] = temp
            out[f"{name}:raw"] = sums[name]
            out[name] = probabilities(SINGLELABEL, np.log(np.clip(sums[name], 1e-7, None)), temp)
        else:
            out[name] = sums[name]
    log.info("default: best epochs %s of %s run", info_out["best_epoch"], info_out["epochs_run"])
    return out, info_out
