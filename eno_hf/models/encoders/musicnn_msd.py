"""The MSD-trained Musicnn and VGG taggers of Pons & Serra (musicnn 0.1.0) as eno encoders.

PyTorch re-implementation of ``musicnn/models.py`` of github.com/jordipons/musicnn (ISC; J. Pons,
X. Serra, "musicnn: pre-trained convolutional neural networks for music audio tagging", ISMIR 2019
LBD, arXiv:1909.06654), loading the TensorFlow checkpoints converted to safetensors with the TF
variable names and layouts unchanged (``../shared/models/musicnn/msd-{musicnn,vgg}.safetensors``;
``load_musicnn_msd`` transposes conv kernels ``(kh, kw, in, out) -> (out, in, kh, kw)`` and dense
kernels ``(in, out) -> (out, in)``).

Front end (the package's ``extractor``, in float32): 16-kHz mono -> STFT (n_fft 512, hop 256, periodic
Hann, centred with zero padding as ``librosa.stft`` >= 0.10) -> power -> 96 Slaney mel bands (0-8 kHz,
Slaney-normalised, ``librosa.filters.mel`` defaults) -> ``log10(10000 x + 1)``, laid out
``(frames, 96)`` (time first, as the TF graph) and cut into consecutive 187-frame (3-s) windows.
Not the float16 cast of the package's ``extractor()``, which overflows under numpy 2.

Architectures (TF 1 layers: batch-norm eps 1e-3, **ReLU before batch norm**, ``same`` padding as
written in the reference):

* ``pons_musicnn`` (MSD_musicnn): input BN; timbral front end 2 x [conv 7x38 / 7x67 (time x mel,
  time padded 3+3), ReLU, BN, max over mel] with 204 filters; temporal front end 3 x [conv 128/64/32 x 1
  ('same': TF pads (k-1)//2 before, the rest after), ReLU, BN, max over mel] with 51 filters -> 561
  channels; mid end 3 x [1-D conv 7 (64 filters), ReLU, BN] with residual connections; back end: max and
  mean over time of all 753 channels, interleaved ``[max_0, mean_0, max_1, ...]`` (TF concat on the last
  axis then flatten), BN, dense 1506 -> 200 + ReLU, BN = the 200-d **penultimate** layer, dense 200 -> 50.
* ``pons_vgg`` (MSD_vgg): input BN; 5 x [conv 3x3 'same' (128 filters), ReLU, BN, max-pool] with pools
  4x1/2x2, 2x2, 2x2, 2x2, 4x4/4x4 (pool/stride, 'valid'); flatten in TF (time, mel, channel) order ->
  256 (the penultimate) -> dense 256 -> 50.

Both output 50 MSD tags (``msd-50.txt``, same order as ``sota-music-tagging/tags/msd-50.txt``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from eno_hf.models.encoders.base import Encoder, flush_subnormals
from eno_hf.models.weights import find_weight_file, resolve_safetensors

PonsArch = Literal["pons_musicnn", "pons_vgg"]
PONS_ARCHS: tuple[str, ...] = ("pons_musicnn", "pons_vgg")
PONS_MODELS: dict[str, str] = {"msd-musicnn": "pons_musicnn", "msd-vgg": "pons_vgg"}
"""Published weight names (file stems in ``{models_dir}/musicnn``) -> architecture."""

SAMPLE_RATE = 16_000
N_FFT = 512
HOP_LENGTH = 256
N_MELS = 96
WINDOW_FRAMES = 187
"""Frames per window (3 s): the reference's ``n_frames`` for the MSD models."""
WINDOW_SAMPLES = WINDOW_FRAMES * HOP_LENGTH
"""47,872 samples (2.992 s): the window hop in samples, so model chunks start on window frames."""
BN_EPS = 1e-3
"""TensorFlow 1 ``batch_normalization`` default epsilon."""
FAMILY = "musicnn"
"""Sub-folder of the models folder (``eno_hf.models.weights``) holding these weights."""
TAG_FILE = "msd-50.txt"


def _bn2d(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


def _bn1d(channels: int) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(channels, eps=BN_EPS)


def _tf_same(kernel: int) -> tuple[int, int]:
    """TF 'same' padding (stride 1): ``(k - 1) // 2`` before, the rest after."""
    return (kernel - 1) // 2, kernel - 1 - (kernel - 1) // 2


class _ConvReluBN(nn.Module):
    """TF-style block: ``bn(relu(conv(x)))`` (the reference applies the activation before BN)."""

    def __init__(self, conv: nn.Module, bn: nn.Module) -> None:
        super().__init__()
        self.conv = conv
        self.bn = bn

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(F.relu(self.conv(x)))


class MusicnnMSDEncoder(Encoder):
    """MSD Musicnn or VGG (Pons & Serra 2019) as an eno ``Encoder`` (see the module docstring).

    Args:
        arch: ``"pons_musicnn"`` or ``"pons_vgg"``.
        n_tags: size of the output layer (50 for the published weights).

    Attributes:
        sample_rate: 16000 Hz. native_input_samples: 47,872 (= 187 hops of 256; native_input_s
            2.992 s): one window; a chunk of that length gives 188 centred frames, the first 187 are used.
        output_dim: penultimate size, 200 (musicnn: ``bn(relu(dense(...)))``) or 256 (vgg: flattened
            pool5).
        default_lora_targets: musicnn the mid-end convs and ``dense``; vgg ``conv4``/``conv5`` convs.

    ``forward`` on an input of several windows returns the mean over its 187-frame windows of the
    penultimate features. Call ``.eval()`` for inference (BatchNorm, running statistics).
    """

    SUFFIX_MODULES: dict[str, tuple[str, ...]] = {"pons_musicnn": ("dense", "dense_bn"), "pons_vgg": ("block5",)}
    """Modules of the trainable top (``suffix``) per arch; everything before them is the ``prefix``."""
    SUFFIX_LORA_TARGETS: dict[str, tuple[str, ...]] = {"pons_musicnn": ("dense",), "pons_vgg": ("block5.conv",)}

    def __init__(self, arch: PonsArch, n_tags: int = 50) -> None:
        super().__init__()
        if arch not in PONS_ARCHS:
            raise ValueError(f"unknown arch {arch!r}; expected one of {list(PONS_ARCHS)}")
        self.arch = arch
        self.n_tags = int(n_tags)
        self.sample_rate = SAMPLE_RATE
        self.native_input_samples = WINDOW_SAMPLES
        self.native_input_s = WINDOW_SAMPLES / SAMPLE_RATE
        self.input_bn = _bn2d(1)
        if arch == "pons_musicnn":
            self.timbral = nn.ModuleList([
                _ConvReluBN(nn.Conv2d(1, 204, (7, int(0.4 * N_MELS))), _bn2d(204)),
                _ConvReluBN(nn.Conv2d(1, 204, (7, int(0.7 * N_MELS))), _bn2d(204)),
            ])
            self.temporal = nn.ModuleList([_ConvReluBN(nn.Conv2d(1, 51, (k, 1)), _bn2d(51)) for k in (128, 64, 32)])
            self.midend = nn.ModuleList([_ConvReluBN(nn.Conv1d(c, 64, 7), _bn1d(64)) for c in (561, 64, 64)])
            self.pool_bn = _bn1d(2 * 753)
            self.dense = nn.Linear(2 * 753, 200)
            self.dense_bn = _bn1d(200)
            self.output = nn.Linear(200, self.n_tags)
            self.output_dim = 200
            self.default_lora_targets = ["midend.0.conv", "midend.1.conv", "midend.2.conv", "dense"]
        else:
            self.blocks = nn.ModuleList([
                _ConvReluBN(nn.Conv2d(1 if i == 0 else 128, 128, 3, padding=1), _bn2d(128)) for i in range(4)
            ])
            self.block5 = _ConvReluBN(nn.Conv2d(128, 128, 3, padding=1), _bn2d(128))
            self.pools = nn.ModuleList([nn.MaxPool2d((4, 1), (2, 2)), nn.MaxPool2d(2, 2), nn.MaxPool2d(2, 2),
                                        nn.MaxPool2d(2, 2), nn.MaxPool2d(4, 4)])
            self.output = nn.Linear(256, self.n_tags)
            self.output_dim = 256
            self.default_lora_targets = ["blocks.3.conv", "block5.conv"]

    # ------------------------------------------------------------------ front end
    def log_mel(self, waveform: Tensor) -> Tensor:
        """``(B, samples)`` float32 16 kHz -> ``(B, frames, 96)`` float32 ``log10(10000 mel + 1)``,
        ``frames = 1 + samples // 256`` (centred STFT, zero padded).

        Raises:
            ValueError: input not 2-D.
        """
        if waveform.ndim != 2:
            raise ValueError(f"expected waveform of shape (batch, samples), got {tuple(waveform.shape)}")
        window, mel_fb = _frontend_constants(waveform.device)
        spec = torch.stft(waveform.to(torch.float32), N_FFT, HOP_LENGTH, window=window, center=True,
                          pad_mode="constant", return_complex=True)
        power = spec.real.square() + spec.imag.square()  # (B, 257, frames)
        mel = torch.matmul(power.transpose(1, 2), mel_fb)  # (B, frames, 96)
        return torch.log10(10000.0 * mel + 1.0)

    @staticmethod
    def mel_windows(mel: Tensor) -> Tensor:
        """``(frames, 96)`` -> consecutive ``(K, 187, 96)`` windows (tail dropped; a clip shorter than
        one window is zero padded to one, as ``log10(1) = 0`` is the log-mel of silence)."""
        if mel.shape[0] < WINDOW_FRAMES:
            mel = F.pad(mel, (0, 0, 0, WINDOW_FRAMES - mel.shape[0]))
        k = mel.shape[0] // WINDOW_FRAMES
        return mel[: k * WINDOW_FRAMES].reshape(k, WINDOW_FRAMES, mel.shape[1])

    # ------------------------------------------------------------------ network on (N, 187, 96) windows
    def window_prefix(self, windows: Tensor) -> Tensor:
        """Frozen bottom on log-mel windows ``(N, 187, 96)``: musicnn ``(N, 1506)`` (the BN'd pooled
        features, input of ``dense``); vgg ``(N, 128, 11, 6)`` (pool4 output)."""
        x = self.input_bn(windows.unsqueeze(1))  # (N, 1, T, F)
        if self.arch == "pons_musicnn":
            padded = F.pad(x, (0, 0, 3, 3))
            feats = [blk(padded).amax(dim=3) for blk in self.timbral]
            for blk in self.temporal:
                before, after = _tf_same(blk.conv.kernel_size[0])
                feats.append(blk(F.pad(x, (0, 0, before, after))).amax(dim=3))
            front = torch.cat(feats, dim=1)  # (N, 561, T)
            c1 = self.midend[0](F.pad(front, (3, 3)))
            c2 = self.midend[1](F.pad(c1, (3, 3))) + c1
            c3 = self.midend[2](F.pad(c2, (3, 3))) + c2
            fmap = torch.cat([front, c1, c2, c3], dim=1)  # (N, 753, T)
            pooled = torch.stack([fmap.amax(dim=2), fmap.mean(dim=2)], dim=2).flatten(1)  # TF order
            return self.pool_bn(pooled)
        for blk, pool in zip(self.blocks, self.pools):
            x = pool(blk(x))
        return x

    def window_suffix(self, hidden: Tensor) -> Tensor:
        """Trainable top: ``window_prefix`` output -> ``(N, output_dim)`` penultimate features."""
        if self.arch == "pons_musicnn":
            return self.dense_bn(F.relu(self.dense(hidden)))
        x = self.pools[4](self.block5(hidden))  # (N, 128, 2, 1)
        return x.permute(0, 2, 3, 1).flatten(1)  # TF NHWC flatten order

    def window_embeddings(self, windows: Tensor) -> Tensor:
        """``(N, 187, 96)`` log-mel windows -> ``(N, output_dim)`` penultimate features."""
        return self.window_suffix(self.window_prefix(windows))

    # ------------------------------------------------------------------ Encoder protocol on waveforms
    def _waveform_windows(self, waveform: Tensor) -> tuple[Tensor, int]:
        if waveform.ndim != 2:
            raise ValueError(f"expected waveform of shape (batch, samples), got {tuple(waveform.shape)}")
        if waveform.shape[1] < WINDOW_SAMPLES:
            waveform = F.pad(waveform, (0, WINDOW_SAMPLES - waveform.shape[1]))
        mel = self.log_mel(waveform)
        k = mel.shape[1] // WINDOW_FRAMES
        return mel[:, : k * WINDOW_FRAMES].reshape(-1, WINDOW_FRAMES, N_MELS), k

    def prefix(self, waveform: Tensor) -> Tensor:
        """Bottom of the network for one-window inputs ``(B, 47872)`` -> ``window_prefix`` of the
        first 187 frames (used by ``TaggerEnsembleEncoder``, which cuts clips into such windows)."""
        windows, k = self._waveform_windows(waveform)
        return self.window_prefix(windows.reshape(waveform.shape[0], k, WINDOW_FRAMES, N_MELS)[:, 0])

    def suffix(self, hidden: Tensor) -> Tensor:
        """``prefix`` output -> ``(B, output_dim)``; ``forward(w) == suffix(prefix(w))`` for one window."""
        return self.window_suffix(hidden)

    @property
    def suffix_lora_targets(self) -> list[str]:
        """peft LoRA targets inside the suffix: musicnn ``dense``, vgg ``block5.conv``."""
        return list(self.SUFFIX_LORA_TARGETS[self.arch])

    @property
    def output_layer(self) -> nn.Linear:
        """The original output layer (penultimate -> ``n_tags`` logits)."""
        return self.output

    def forward(self, waveform: Tensor) -> Tensor:
        """``(B, samples)`` float32 16 kHz -> ``(B, output_dim)``: the mean over the input's 187-frame
        windows of the penultimate features (one window for a 47,872-sample chunk; shorter inputs are
        zero padded to one window).

        Raises:
            ValueError: input not 2-D.
        """
        windows, k = self._waveform_windows(waveform)
        return self.window_embeddings(windows).reshape(waveform.shape[0], k, -1).mean(dim=1)

    def tag_logits(self, waveform: Tensor) -> Tensor:
        """``(B, samples)`` -> ``(B, n_tags)`` logits of the original output layer on ``forward``."""
        return self.output(self(waveform))


_FRONTEND: dict[str, tuple[Tensor, Tensor]] = {}


def _frontend_constants(device: torch.device) -> tuple[Tensor, Tensor]:
    """Periodic Hann window ``(512,)`` and mel filterbank ``(257, 96)`` on ``device`` (computed once;
    not buffers, so they are never in a state dict nor left uninitialised by ``from_pretrained``)."""
    key = str(device)
    if key not in _FRONTEND:
        _FRONTEND[key] = (torch.hann_window(N_FFT, periodic=True, device=device), _slaney_mel_fb().to(device))
    return _FRONTEND[key]


def _slaney_mel_fb() -> Tensor:
    """``(257, 96)`` float32 mel filterbank equal to ``librosa.filters.mel(sr=16000, n_fft=512, n_mels=96).T``
    (Slaney mel scale, Slaney area normalisation, 0-8 kHz), via torchaudio."""
    import torchaudio

    return torchaudio.functional.melscale_fbanks(N_FFT // 2 + 1, 0.0, SAMPLE_RATE / 2, N_MELS, SAMPLE_RATE,
                                                 norm="slaney", mel_scale="slaney").to(torch.float32)


# ----------------------------------------------------------------------------- loading
def _tf_to_torch(state: dict[str, Tensor], arch: str) -> dict[str, Tensor]:
    """TF variable names/layouts -> this module's state dict (see the module docstring)."""
    out: dict[str, Tensor] = {}

    def bn(tf: str, pt: str) -> None:
        for tf_key, pt_key in (("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"),
                               ("moving_variance", "running_var")):
            out[f"{pt}.{pt_key}"] = state[f"{tf}/{tf_key}"]
        out[f"{pt}.num_batches_tracked"] = torch.tensor(0)

    def conv2d(tf: str, pt: str) -> None:
        out[f"{pt}.weight"] = state[f"{tf}/kernel"].permute(3, 2, 0, 1).contiguous()
        out[f"{pt}.bias"] = state[f"{tf}/bias"]

    def dense(tf: str, pt: str) -> None:
        out[f"{pt}.weight"] = state[f"{tf}/kernel"].t().contiguous()
        out[f"{pt}.bias"] = state[f"{tf}/bias"]

    bn("batch_normalization", "input_bn")
    if arch == "pons_musicnn":
        for i in range(2):
            conv2d(f"conv2d{'' if i == 0 else '_1'}", f"timbral.{i}.conv")
            bn(f"batch_normalization_{i + 1}", f"timbral.{i}.bn")
        for i in range(3):
            conv2d(f"conv2d_{i + 2}", f"temporal.{i}.conv")
            bn(f"batch_normalization_{i + 3}", f"temporal.{i}.bn")
        for i in range(3):  # TF (7, in, 1, out) -> Conv1d (out, in, 7)
            out[f"midend.{i}.conv.weight"] = state[f"conv2d_{i + 5}/kernel"][:, :, 0, :].permute(2, 1, 0).contiguous()
            out[f"midend.{i}.conv.bias"] = state[f"conv2d_{i + 5}/bias"]
            bn(f"batch_normalization_{i + 6}", f"midend.{i}.bn")
        bn("batch_normalization_9", "pool_bn")
        dense("dense", "dense")
        bn("batch_normalization_10", "dense_bn")
        dense("dense_1", "output")
    else:
        for i in range(5):
            pt = f"blocks.{i}" if i < 4 else "block5"
            conv2d(f"{i + 1}CNN", f"{pt}.conv")
            bn(f"batch_normalization_{i + 1}", f"{pt}.bn")
        dense("dense", "output")
    return out


def is_pons_model(path_or_name: str | Path) -> bool:
    """True for the names/files of the MSD Musicnn/VGG weights (``msd-musicnn``, ``msd-vgg``)."""
    return Path(str(path_or_name)).stem in PONS_MODELS


def load_musicnn_msd(path_or_name: str | Path = "msd-musicnn", models_dir: str | Path | None = None
                     ) -> MusicnnMSDEncoder:
    """Build a ``MusicnnMSDEncoder`` and load the converted TF weights strictly, in eval mode.

    Args:
        path_or_name: ``"msd-musicnn"``, ``"msd-vgg"`` or a ``.safetensors`` file with one of these stems.
        models_dir: the models folder (``eno_hf.models.weights``: ``{models_dir}/musicnn/`` or the
            files directly); default ``paths.models_dir`` / ``$ENO_MODELS_DIR``.

    Raises:
        FileNotFoundError: weights absent. ValueError: unknown name. RuntimeError / KeyError: the file
        does not hold the expected TF variables (``load_state_dict(strict=True)``).
    """
    from safetensors.torch import load_file

    path = resolve_safetensors(path_or_name, FAMILY, models_dir)
    if path.stem not in PONS_MODELS:
        raise ValueError(f"cannot tell the architecture of {path.name}: expected one of {sorted(PONS_MODELS)}")
    arch = PONS_MODELS[path.stem]
    state = load_file(str(path))
    n_tags = state["dense_1/bias" if arch == "pons_musicnn" else "dense/bias"].shape[0]
    encoder = MusicnnMSDEncoder(arch, n_tags=n_tags)  # type: ignore[arg-type]
    encoder.load_state_dict(flush_subnormals(_tf_to_torch(state, arch)), strict=True)  # base.flush_subnormals
    return encoder.eval()


def tag_names(models_dir: str | Path | None = None) -> list[str]:
    """The 50 MSD tags in output order (``msd-50.txt`` in ``models_dir``). Raises FileNotFoundError."""
    path = find_weight_file(TAG_FILE, FAMILY, models_dir)
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


@torch.no_grad()
def clip_outputs(encoder: MusicnnMSDEncoder, waveform_16k: Tensor, batch_size: int = 32,
                 return_prefix: bool = False) -> tuple[Tensor, ...]:
    """Per-window outputs of a whole clip with the reference protocol (log-mel of the full clip, then
    consecutive 187-frame windows).

    Args:
        encoder: in ``eval()`` mode (``load_musicnn_msd`` returns it so).
        waveform_16k: ``(samples,)`` float mono at 16 kHz (e.g. ``librosa.load(path, sr=16000)``).
        batch_size: windows per forward pass.
        return_prefix: also return every window's ``window_prefix`` (musicnn ``(K, 1506)``: the
            pooled mid-level features; vgg ``(K, 128, 11, 6)``).

    Returns:
        ``(probs (K, n_tags), penultimate (K, output_dim))`` float32 (``+ (prefix,)`` with
        ``return_prefix``); the clip scores of the reference are ``probs.mean(0)``, its penultimate
        ``penultimate.mean(0)``.

    Raises:
        ValueError: waveform not 1-D or empty.
    """
    wav = torch.as_tensor(waveform_16k, dtype=torch.float32)
    if wav.ndim != 1 or wav.numel() == 0:
        raise ValueError(f"expected a non-empty 1-D waveform, got shape {tuple(wav.shape)}")
    windows = encoder.mel_windows(encoder.log_mel(wav[None])[0])
    prefix = torch.cat([encoder.window_prefix(b) for b in windows.split(batch_size)])
    embs = encoder.window_suffix(prefix)
    probs = torch.sigmoid(encoder.output(embs))
    return (probs, embs, prefix) if return_prefix else (probs, embs)


def clip_scores(encoder: MusicnnMSDEncoder, waveform_16k: Tensor, batch_size: int = 32) -> Tensor:
    """Clip-level tag probabilities ``(n_tags,)``: mean over windows of ``clip_outputs`` (reference protocol)."""
    return clip_outputs(encoder, waveform_16k, batch_size)[0].mean(dim=0)
