"""ONNX export of an eno tagger (``eno export-onnx``) and an ONNX Runtime tagger (``eno serve --onnx``).

What is in the graph: one model *window* (``config.chunk_s`` seconds, 30 s for the default tagger
ensemble) -> the raw output of every head, i.e. the whole network including its feature front end
(torchaudio ``MelSpectrogram`` -> ``AmplitudeToDB`` -> BatchNorm, exported as ONNX ``STFT`` +
``MatMul``), the tagger ensemble (each sub-tagger's own windows, mean+max pooling over the windows
that are not pure zero padding, standardization), LoRA adapters already merged into the weights
(``eno_hf.models.lora.merge_lora`` runs before a model is saved), trunk and heads.
Input ``input_values`` ``(batch, window_samples)`` float32 mono 16 kHz; batch is dynamic.

What stays in Python (``OnnxTagger``), because ONNX has no BS.1770 loudness meter: decoding,
resampling (soxr) and loudness normalization by the saved ``EnoFeatureExtractor``, cutting a clip
into windows exactly as ``EnoForAudioTagging.split_windows`` (hop = window, a tail of at least
``chunk_tail_min_ratio`` of a window is zero-padded and kept), and the average of the window
probabilities (Won et al. 2020), after which ``eno_hf.inference.pipeline.head_scores`` gives the
same per-head scores as the PyTorch model. The module lives with inference: it loads models with
the inference pipeline, checks the export against it and runs the exported graph in its place.

Exported with ``torch.onnx.export(..., dynamo=True)`` (torch.export + onnxscript) and checked with
``onnxruntime`` against the PyTorch model (``verify``: max absolute difference of the scores).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from eno_hf.inference.pipeline import decode, head_scores, load_model, predict_waveform
from eno_hf.models import EnoFeatureExtractor
from eno_hf.models.configuration import EnoModelConfig
from eno_hf.models.head_kinds import pool_head
from eno_hf.models.heads import REGRESSION
from eno_hf.models.modeling import EnoForAudioTagging
from eno_hf.utils.io import atomic_write_json

ONNX_FILE = "model.onnx"
MANIFEST_FILE = "onnx.json"
INPUT_NAME = "input_values"


class WindowTagger(nn.Module):
    """Export wrapper: ``(batch, window_samples)`` -> tuple of raw head outputs in ``config.heads``
    order (multilabel/singlelabel ``(batch, n_labels)`` logits, regression ``(batch,)``,
    projection ``(batch, dim)``), i.e. ``EnoForAudioTagging.forward(...).head_logits`` on one window.

    The tagger ensemble's ``_prefix`` skips pure-padding windows with a data-dependent branch,
    which ``torch.export`` cannot trace; here every sub-window's prefix is computed and the
    padding windows are left out by the same validity mask in ``from_prefix`` (identical result).
    """

    def __init__(self, model: EnoForAudioTagging) -> None:
        super().__init__()
        self.model = model.eval()
        self.window_samples = model.window_samples
        from eno_hf.models.encoders.tagger_ensemble import TaggerEnsembleEncoder

        self.ensemble = isinstance(model.encoder, TaggerEnsembleEncoder)
        if self.ensemble:
            model.encoder.prefix_layout(self.window_samples)  # cached before tracing

    def _encode(self, x: Tensor) -> Tensor:
        enc = self.model.encoder
        if not self.ensemble:
            return enc(x)
        batch = x.shape[0]
        parts: list[Tensor] = []
        for tagger, (k, _shape) in zip(enc.taggers, enc.prefix_layout(self.window_samples)):
            windows, valid = enc._windows(tagger, x)
            pre = tagger.prefix(windows.reshape(batch * k, -1))
            parts.extend([pre.reshape(batch, -1), valid.to(torch.float32)])
        return enc.from_prefix(torch.cat(parts, dim=1), self.window_samples)

    def forward(self, input_values: Tensor) -> tuple[Tensor, ...]:
        hidden = self.model.trunk(self._encode(input_values))
        outs = []
        for spec in self.model.config.head_specs:
            out = self.model.heads[spec.name](hidden)
            outs.append(out.squeeze(-1) if spec.kind == REGRESSION else out)
        return tuple(outs)


def output_names(config: EnoModelConfig) -> list[str]:
    """ONNX output names: ``head/{name}`` in ``config.heads`` order."""
    return [f"head/{h.name}" for h in config.head_specs]


def export_onnx(model_dir: str | Path, out_dir: str | Path, verify_clips: list[str | Path] | tuple = (),
                opset: int = 18, atol: float = 1e-3) -> dict[str, Any]:
    """Export the model in ``model_dir`` to ``out_dir`` and verify it with ONNX Runtime.

    Writes ``model.onnx``, ``config.json`` (labels, thresholds, chunking), ``preprocessor_config.json``
    (the feature extractor run before the graph), ``registry.json`` (if the source has one: name,
    version, lineage) and ``onnx.json`` (source, opset, window length, verification figures).

    Args:
        model_dir: saved eno model directory (``save_pretrained`` output or a hub version).
        out_dir: output directory (created; an existing ``model.onnx`` is replaced).
        verify_clips: audio files whose scores are compared (PyTorch vs ONNX Runtime); with none,
            two seeded noise clips (one window, 2.5 windows) are used.
        opset: ONNX opset version (>= 17 for ``STFT``).
        atol: largest accepted absolute score difference.

    Returns:
        ``{"onnx": path, "max_abs_diff": float, "clips": [{"clip", "max_abs_diff"}], "export_s",
        "window_samples", "opset"}``.

    Raises:
        OSError: not a model directory. RuntimeError: export failed or the scores differ by more
            than ``atol`` (the files are kept for inspection).
    """
    src, out = Path(model_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model, extractor = load_model(src)
    wrapper = WindowTagger(model).eval()
    example = torch.zeros(2, wrapper.window_samples)
    example[:, : wrapper.window_samples // 2] = 0.1 * torch.randn(2, wrapper.window_samples // 2,
                                                                 generator=torch.Generator().manual_seed(0))
    t0 = time.perf_counter()
    batch = torch.export.Dim("batch", min=1, max=1024)
    with torch.no_grad():
        torch.onnx.export(wrapper, (example,), str(out / ONNX_FILE), input_names=[INPUT_NAME],
                          output_names=output_names(model.config), opset_version=opset, dynamo=True,
                          dynamic_shapes={"input_values": {0: batch}}, external_data=False, verbose=False)
    export_s = time.perf_counter() - t0
    model.config.save_pretrained(out)
    extractor.save_pretrained(out)
    if (src / "registry.json").is_file():
        shutil.copy2(src / "registry.json", out / "registry.json")
    manifest: dict[str, Any] = {"source": str(src.resolve()), "opset": opset, "window_samples": wrapper.window_samples,
                                "input": INPUT_NAME, "outputs": output_names(model.config),
                                "export_s": round(export_s, 2), "onnxruntime": _ort_version()}
    atomic_write_json(out / MANIFEST_FILE, manifest)
    check = verify(model, extractor, out, verify_clips)
    manifest.update(verification=check)  # a NaN difference is written as null, then refused below
    atomic_write_json(out / MANIFEST_FILE, manifest)
    if not check["max_abs_diff"] <= atol:
        raise RuntimeError(f"ONNX scores differ from PyTorch by {check['max_abs_diff']:.3g} > atol={atol} ({out})")
    return {"onnx": str(out / ONNX_FILE), "export_s": round(export_s, 2), "opset": opset,
            "window_samples": wrapper.window_samples, **check}


def _ort_version() -> str:
    import onnxruntime

    return str(onnxruntime.__version__)


def verify(model: EnoForAudioTagging, extractor: Any, onnx_dir: str | Path,
           clips: list[str | Path] | tuple = ()) -> dict[str, Any]:
    """Max absolute score difference between ``model`` (PyTorch, ``predict_waveform``) and
    ``OnnxTagger(onnx_dir)`` on ``clips`` (decoded with ``load_audio``) or two noise clips."""
    rate = int(extractor.sampling_rate)
    if clips:
        named = [(str(c), decode(c, rate)) for c in clips]
    else:
        rng = np.random.default_rng(0)
        win = model.window_samples
        named = [(f"noise-{n / win:g}-windows", (0.1 * rng.standard_normal(n)).astype(np.float32))
                 for n in (win, int(2.5 * win))]
    tagger = OnnxTagger(onnx_dir)
    rows, worst = [], 0.0
    onnx_scores = tagger.predict([w for _, w in named], rate)
    for (name, wave), got in zip(named, onnx_scores):
        ref = predict_waveform(wave, rate, model, extractor)
        diff = max(abs(ref[h][k] - got[h][k]) for h in ref for k in ref[h])
        rows.append({"clip": name, "max_abs_diff": float(diff), "duration_s": round(len(wave) / rate, 2)})
        worst = max(worst, float(diff))
    return {"max_abs_diff": worst, "clips": rows}


class OnnxTagger:
    """An ``eno export-onnx`` directory run with ONNX Runtime (CPU).

    Args:
        onnx_dir: directory with ``model.onnx``, ``config.json``, ``preprocessor_config.json``.
        intra_op_threads: ONNX Runtime intra-op threads (0 = its default).

    Attributes:
        config: ``EnoModelConfig`` (heads, labels, thresholds, chunking). extractor: the
        ``EnoFeatureExtractor``. manifest: ``onnx.json``. window_samples: graph input length.
    """

    def __init__(self, onnx_dir: str | Path, intra_op_threads: int = 0) -> None:
        import onnxruntime as ort

        d = Path(onnx_dir)
        if not (d / ONNX_FILE).is_file():
            raise FileNotFoundError(f"{d}: no {ONNX_FILE} (run `eno export-onnx MODEL --out {d}`)")
        self.config = EnoModelConfig.from_pretrained(str(d))
        self.extractor = EnoFeatureExtractor.from_pretrained(str(d))
        self.manifest = json.loads((d / MANIFEST_FILE).read_text(encoding="utf-8")) if (d / MANIFEST_FILE).is_file() else {}
        self.window_samples = int(round(float(self.config.chunk_s) * int(self.config.sample_rate)))
        opts = ort.SessionOptions()
        if intra_op_threads:
            opts.intra_op_num_threads = int(intra_op_threads)
        self.session = ort.InferenceSession(str(d / ONNX_FILE), sess_options=opts, providers=["CPUExecutionProvider"])
        self.output_names = output_names(self.config)

    def windows(self, samples: np.ndarray) -> np.ndarray:
        """``(samples,)`` -> ``(k, window_samples)`` as ``EnoForAudioTagging.split_windows`` for one
        clip: hop = window, a tail of >= ``chunk_tail_min_ratio`` window is zero-padded and kept,
        else dropped; at least one (zero-padded) window."""
        win, n = self.window_samples, int(samples.shape[0])
        n_full, rem = divmod(n, win)
        k = max(1, n_full + int(rem > 0 and rem >= float(self.config.chunk_tail_min_ratio) * win))
        total = k * win
        x = np.pad(samples, (0, total - n)) if total > n else samples[:total]
        return np.ascontiguousarray(x.reshape(k, win), dtype=np.float32)

    def run_windows(self, windows: np.ndarray) -> list[np.ndarray]:
        """Raw head outputs for ``(N, window_samples)`` windows, in chunks of ``config.chunk_batch_size``."""
        size = max(1, int(self.config.chunk_batch_size))
        parts = [self.session.run(self.output_names, {INPUT_NAME: windows[i: i + size]})
                 for i in range(0, windows.shape[0], size)]
        return [np.concatenate([p[j] for p in parts], axis=0) for j in range(len(self.output_names))]

    def head_logits(self, raw: list[Tensor]) -> dict[str, Tensor]:
        """One clip's window outputs ``(k, ...)`` -> ``head_logits`` of batch 1 as the model returns
        them: each kind's window pooling (``eno_hf.models.head_kinds.pool_head``: ``logit`` of the
        mean sigmoid, ``log`` of the mean softmax, mean value) over the clip's ``k`` windows."""
        out: dict[str, Tensor] = {}
        for spec, value in zip(self.config.head_specs, raw):
            if value.ndim == 1:  # a regression output, squeezed in the graph: (k,) -> (k, 1)
                value = value[:, None]
            mean = None if value.shape[0] == 1 else (lambda x: x.mean(dim=0, keepdim=True))
            out[spec.name] = pool_head(spec.kind, value, mean).logits
        return out

    def predict(self, waveforms: list[np.ndarray], sample_rate: int) -> list[dict[str, dict[str, float]]]:
        """Per-head scores (as ``eno_hf.inference.pipeline.head_scores``) for mono ``(samples,)``
        float32 waveforms at ``sample_rate`` Hz, prepared by the saved feature extractor.

        Raises:
            ValueError: NaN/Inf samples or a wrong shape (feature extractor).
        """
        prepared = [self.extractor(w, sampling_rate=sample_rate, return_tensors="np")["input_values"][0]
                    for w in waveforms]
        per_clip = [self.windows(x) for x in prepared]
        if not per_clip:
            return []
        raw = self.run_windows(np.concatenate(per_clip, axis=0))
        results, start = [], 0
        for w in per_clip:
            k = w.shape[0]
            clip_raw = [torch.from_numpy(np.ascontiguousarray(r[start: start + k])) for r in raw]
            start += k
            results.append(head_scores(self.head_logits(clip_raw), self.config, index=0))
        return results
