"""``create_model``: an ``EnoForAudioTagging`` from ``Settings`` + typed heads (or label vocabularies), with the
pretrained encoder weights loaded (sota taggers from ``paths.models_dir``, HF encoders from
``model.encoder_path``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from eno_hf.config import Settings
from eno_hf.models.configuration import EnoModelConfig
from eno_hf.models.heads import CLASSIFICATION_KINDS, HeadSpec, head_specs_from_features
from eno_hf.models.modeling import EnoForAudioTagging

KNOWN_COLUMN_DIMS: dict[str, int] = {"fingerprint": 64}
"""Sizes of dataset feature columns usable by ``encoder=embeddings`` without ``model.embedding_dim``."""


def _heads(settings: Settings, heads: Sequence[HeadSpec] | Mapping[str, Sequence[str]]) -> list[HeadSpec]:
    """``heads`` as given, or ``settings.model.heads`` with the label vocabularies ``heads``
    (head name -> label names) through ``head_specs_from_features``."""
    if not isinstance(heads, Mapping) and heads:
        return [h if isinstance(h, HeadSpec) else HeadSpec.from_dict(h) for h in heads]
    if not settings.model.heads:
        raise ValueError("model.heads is empty: configure at least one head")
    vocab = dict(heads)
    missing = [h.name for h in settings.model.heads if h.kind in CLASSIFICATION_KINDS and not vocab.get(h.name)]
    if missing:
        raise ValueError(f"heads {missing}: no label vocabulary given (vocab keys: {sorted(vocab)})")
    by_column = {(h.column or h.name): list(vocab[h.name]) for h in settings.model.heads if h.name in vocab}
    return head_specs_from_features(by_column, settings.model.heads)


def create_model(settings: Settings, heads: Sequence[HeadSpec] | Mapping[str, Sequence[str]]) -> EnoForAudioTagging:
    """Build the model described by ``settings.model`` with the heads ``heads``.

    Args:
        settings: ``model`` (encoder, tagger, encoder_path, pooling, layer, hidden_dim, dropout,
            heads, chunk_s, mel_cnn_*, embedding_*) and ``dataset`` (audio sample rate / loudness
            target, mel parameters for ``mel_cnn``).
        heads: the ``HeadSpec`` s (``eno_hf.models.heads.head_specs_from_features`` on the training
            split), or head name -> label names for every multilabel/singlelabel head of
            ``settings.model.heads``.

    Returns:
        ``EnoForAudioTagging`` with pretrained encoder weights (``sota_tagger``, ``tagger_ensemble``
        (``model.taggers``; ``model.encoder_path`` = their folder), ``hf_audio``,
        ``muq``) or random ones (``mel_cnn``), random trunk and heads.

    Raises:
        ValueError: missing vocabulary, ``hf_audio``/``muq`` without ``model.encoder_path``,
            unknown embedding size, or a dataset sample rate the encoder does not take.
        FileNotFoundError: weights not found.
    """
    m, audio, feats = settings.model, settings.dataset.audio, settings.dataset.features
    pretrained = None
    if m.encoder == "mel_cnn":
        kwargs: dict[str, Any] = {"n_mels": feats.n_mels, "channels": m.mel_cnn_channels, "n_blocks": m.mel_cnn_blocks,
                                  "sample_rate": audio.sample_rate, "n_fft": feats.n_fft, "hop_length": feats.hop_length}
    elif m.encoder == "sota_tagger":
        from eno_hf.models.encoders.sota_taggers import load_sota_tagger

        pretrained = load_sota_tagger(m.encoder_path or m.tagger, settings.paths.models_dir)
        kwargs = {"arch": pretrained.arch, "n_tags": pretrained.n_tags}
    elif m.encoder == "tagger_ensemble":
        from eno_hf.models.encoders.tagger_ensemble import load_tagger_ensemble

        pretrained = load_tagger_ensemble(m.taggers, m.encoder_path or settings.paths.models_dir)
        kwargs = pretrained.init_kwargs()
    elif m.encoder == "hf_audio":
        from eno_hf.models.encoders.hf_audio import HFAudioEncoder

        if m.encoder_path is None:
            raise ValueError("model.encoder=hf_audio needs model.encoder_path (a local transformers checkpoint)")
        pretrained = HFAudioEncoder.from_pretrained_dir(m.encoder_path, pooling=m.pooling, layer=m.layer)
        kwargs = pretrained.init_kwargs()
    elif m.encoder == "muq":
        if m.encoder_path is None:
            raise ValueError("model.encoder=muq needs model.encoder_path (a local MuQ checkpoint)")
        kwargs = {"encoder_path": str(m.encoder_path), "pooling": m.pooling, "layer": m.layer}
    else:  # embeddings
        dim = m.embedding_dim
        if dim is None:
            unknown = [c for c in m.embedding_columns if c not in KNOWN_COLUMN_DIMS]
            if not m.embedding_columns or unknown:
                raise ValueError(f"encoder=embeddings: set model.embedding_dim (no known size for {unknown or 'no columns'})")
            dim = sum(KNOWN_COLUMN_DIMS[c] for c in m.embedding_columns)
        kwargs = {"input_dim": int(dim), "columns": list(m.embedding_columns)}

    sample_rate = int(getattr(pretrained, "sample_rate", audio.sample_rate)) if m.encoder != "muq" else 24_000
    if m.encoder != "embeddings" and sample_rate != int(audio.sample_rate):
        raise ValueError(
            f"encoder {m.encoder} takes {sample_rate} Hz audio but dataset.audio.sample_rate is "
            f"{audio.sample_rate}: set dataset.audio.sample_rate={sample_rate}"
        )
    encoder_type = m.encoder
    config = EnoModelConfig(
        encoder_type=encoder_type, encoder_kwargs=kwargs, sample_rate=sample_rate, chunk_s=m.chunk_s,
        pooling=m.pooling, hidden_dim=m.hidden_dim, dropout=m.dropout,
        heads=[h.to_dict() for h in _heads(settings, heads)],
        target_lufs=audio.target_lufs,
        # 30-s windows through two FCNs take ~150 MB of activations each: bound memory on long files
        **({"chunk_batch_size": 4} if m.encoder == "tagger_ensemble" else {}),
    )
    model = EnoForAudioTagging(config)
    if pretrained is not None:
        model.encoder.load_state_dict(pretrained.state_dict())
    return model
