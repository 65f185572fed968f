"""Turn a pretrained sota tagger (Won et al. 2020) into an eno model directory.

The result has one multilabel head ``tags`` whose labels are the tagger's 50 tags, no trunk
(``hidden_dim=0``) and the tagger's own output layer copied into the head, so
``pipeline("audio-classification", model=out_dir)`` reproduces the tagger: with the reference
chunking (``chunk_tail_min_ratio=1.0``: consecutive full windows, partial tail dropped) and no
loudness normalization (``target_lufs=None``, as the reference scores were computed on
``librosa.load`` output), its scores equal ``sota_taggers.clip_scores``.
"""

from __future__ import annotations

from pathlib import Path

from eno_hf.models.configuration import EnoModelConfig
from eno_hf.models.feature_extraction import EnoFeatureExtractor
from eno_hf.models.modeling import EnoForAudioTagging

HEAD_NAME = "tags"


def import_tagger(name: str, out_dir: str | Path, models_dir: str | Path | None = None) -> Path:
    """Write ``name`` (e.g. ``"msd-musicnn"``, ``"mtat-fcn"``) as an eno model to ``out_dir``.

    Args:
        name: weights file stem in ``models_dir`` (or a ``.safetensors`` path); ``msd-musicnn`` and
            ``msd-vgg`` (Pons & Serra, ``../shared/models/musicnn``) work too (chunks of 2.992 s =
            187 frames; the clip's log-mel is then computed per chunk, so the two edge frames of each
            window differ from ``musicnn_msd.clip_scores``, which computes it on the whole clip).
        out_dir: output directory (created): ``config.json``, ``model.safetensors``,
            ``preprocessor_config.json`` and ``README.md``, a model card naming the source paper and
            the weights' licence (``eno_hf.evaluation.model_card.write_imported_card``).
        models_dir: the models folder (``eno_hf.models.weights``); default ``$ENO_MODELS_DIR`` or the
            shared models.

    Returns:
        ``out_dir`` as a ``Path``.

    Raises:
        FileNotFoundError: weights or tag list not found. ValueError: unknown name.
    """
    from eno_hf.models.encoders.sota_taggers import load_sota_tagger, tag_names

    tagger = load_sota_tagger(name, models_dir)
    tags = tag_names(Path(name).stem, models_dir)
    output_layer = getattr(tagger, "output_layer", None) or (tagger.dense2 if tagger.arch == "musicnn" else tagger.dense)
    if output_layer.out_features != len(tags):
        raise ValueError(f"{name}: {output_layer.out_features} outputs but {len(tags)} tag names")
    config = EnoModelConfig(
        encoder_type="sota_tagger", encoder_kwargs={"arch": tagger.arch, "n_tags": tagger.n_tags},
        sample_rate=tagger.sample_rate, chunk_s=tagger.native_input_s, chunk_tail_min_ratio=1.0,
        hidden_dim=0, dropout=0.0, heads=[{"name": HEAD_NAME, "kind": "multilabel", "labels": tags}],
        target_lufs=None,
    )
    model = EnoForAudioTagging(config)
    model.encoder.load_state_dict(tagger.state_dict())
    model.heads[HEAD_NAME].load_state_dict(output_layer.state_dict())
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.eval().save_pretrained(out)
    EnoFeatureExtractor(sampling_rate=tagger.sample_rate, target_lufs=None).save_pretrained(out)
    from eno_hf.evaluation.model_card import write_imported_card  # up to evaluation: the one writer of model cards

    write_imported_card(out, name, tags, arch=tagger.arch, sample_rate=tagger.sample_rate,
                        window_s=round(float(tagger.native_input_s), 3), head=HEAD_NAME)
    return out
