"""Pretrained music auto-taggers FCN, Musicnn and CRNN as eno encoders.

PyTorch re-implementation of the models of Won, Ferraro, Bogdanov, Serra, "Evaluation of CNN-based
automatic music tagging models" (SMC 2020), reference code ``training/model.py`` and
``training/modules.py`` of github.com/minzwon/sota-music-tagging-models (MIT). Module and
parameter names follow the reference exactly so the published weights
(``../shared/models/sota-music-tagging/*.safetensors``) load with ``strict=True``.

Architectures:

* FCN (Choi et al. 2016, arXiv:1606.00298): 5 x [3x3 conv, BN, ReLU, max-pool] on the log-mel.
* Musicnn (Pons et al. 2018, arXiv:1711.02520, "updated" version of the reference): front end of
  vertical (timbral, 67x7 and 38x7, max over frequency) and horizontal (temporal, 1-D convs of
  length 129/65/33 on the frequency-averaged log-mel) filters -> 561 channels; mid end of three
  dense-connected 1-D convs (kernel 7, residual); back end of global max + mean pooling over time
  of all 753 channels -> dense1 (1506 -> 200), BN, ReLU, dropout, dense2 (200 -> n_tags).
* CRNN (Choi et al. 2017, arXiv:1609.04243): 4 x [3x3 conv, BN, ReLU, max-pool] then a 2-layer
  GRU (hidden 32) whose last time step feeds the output layer.

Shared front end (buffers ``spec.*`` are in every weight file): torchaudio
``MelSpectrogram(16000, n_fft=512, f_min=0, f_max=8000, n_mels=96)`` (hop 256, power 2) ->
``AmplitudeToDB()`` -> ``BatchNorm2d(1)`` (``spec_bn``). NB: the published weights use
**96** mel bands (``spec.mel_scale.fb`` is 257 x 96), the reference code's default, not 128.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
import torchaudio
from torch import Tensor, nn

from eno_hf.models.encoders.base import Encoder, flush_subnormals
from eno_hf.models.encoders.musicnn_msd import (
    PONS_ARCHS, PONS_MODELS, MusicnnMSDEncoder, is_pons_model, load_musicnn_msd,
)
from eno_hf.models.weights import find_weight_file, resolve_safetensors

Arch = Literal["fcn", "musicnn", "crnn"]

SAMPLE_RATE = 16_000
N_FFT = 512
HOP_LENGTH = N_FFT // 2  # torchaudio default, as in the reference
N_MELS = 96
FAMILY = "sota-music-tagging"
"""Sub-folder of the models folder (``eno_hf.models.weights``) holding these weights."""
NATIVE_INPUT_S: dict[str, float] = {"fcn": 29.0, "musicnn": 3.0, "crnn": 29.0}
TAG_FILES: dict[str, str] = {
    "msd": "msd-50.txt",
    "mtat": "mtat-50.txt",
    "jamendo": "mtg-jamendo-top50.txt",
}


class _Conv2dBlock(nn.Module):
    """Reference ``Conv_2d``: conv (3x3, 'same') -> BN -> ReLU -> max-pool ``pooling``."""

    def __init__(self, in_channels: int, out_channels: int, pooling: tuple[int, int]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.mp = nn.MaxPool2d(pooling)

    def forward(self, x: Tensor) -> Tensor:
        return self.mp(self.relu(self.bn(self.conv(x))))


class _Conv1dBlock(nn.Module):
    """Reference ``Conv_1d`` with pooling 1 (Musicnn mid end): conv ('same') -> BN -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.bn = nn.BatchNorm1d(out_channels)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.bn(self.conv(x)))


class _VerticalConv(nn.Module):
    """Reference ``Conv_V`` (timbral filters): 2-D conv (no frequency padding), BN, ReLU, max over
    frequency. ``(B, 1, n_mels, T) -> (B, out_channels, T)``."""

    def __init__(self, out_channels: int, filter_shape: tuple[int, int]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, out_channels, filter_shape, padding=(0, filter_shape[1] // 2))
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.bn(self.conv(x))).amax(dim=2)


class _HorizontalConv(nn.Module):
    """Reference ``Conv_H`` (temporal filters): mean over frequency, 1-D conv, BN, ReLU.
    ``(B, 1, n_mels, T) -> (B, out_channels, T)``."""

    def __init__(self, out_channels: int, filter_length: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, out_channels, filter_length, padding=filter_length // 2)
        self.bn = nn.BatchNorm1d(out_channels)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.bn(self.conv(x.mean(dim=2))))


class SotaTaggerEncoder(Encoder):
    """FCN / Musicnn / CRNN music tagger (Won et al. 2020) usable as an eno ``Encoder``.

    Args:
        arch: ``"fcn"``, ``"musicnn"`` or ``"crnn"``.
        n_tags: size of the original output layer (50 for all published weights).

    Attributes:
        sample_rate: 16000 Hz.
        native_input_s: 3.0 s (48,000 samples) for musicnn, 29.0 s (464,000 samples) for fcn/crnn.
        native_input_samples: the same in samples.
        output_dim: size of the embedding returned by ``forward`` (the penultimate features):
            * fcn: 64 = flattened output of ``layer5`` (after its BN, ReLU and 4x4 max-pool), i.e.
              the input of the reference's dropout + ``dense``;
            * musicnn: 200 = ``relu(bn(dense1(pooled)))``, post-activation, before the dropout
              that precedes ``dense2``;
            * crnn: 32 = last time step of the 2-layer GRU ``layer5`` output, before dropout.
        default_lora_targets: module names for peft LoRA, all on the path of ``forward`` (the
            original output layers ``dense``/``dense2`` are not, so they are not targets):
            fcn ``layer3-5.conv``; musicnn the mid-end convs ``layer1-3.conv`` and ``dense1``;
            crnn ``layer2-4.conv`` (peft LoRA cannot wrap the GRU).

    ``forward`` / ``tag_logits`` never apply dropout before the embedding; ``tag_logits`` applies the
    reference dropout (identity in eval mode) then the original output layer. Call ``.eval()``
    for inference: the model contains BatchNorm and dropout. In train mode Musicnn's
    ``BatchNorm1d`` after ``dense1`` needs a batch of at least 2 (PyTorch raises otherwise); FCN
    needs at least ``min_input_samples`` (about 20.5 s), so zero-pad short clips to the native length.
    """

    def __init__(self, arch: Arch, n_tags: int = 50) -> None:
        super().__init__()
        if arch not in NATIVE_INPUT_S:
            raise ValueError(f"unknown arch {arch!r}; expected one of {sorted(NATIVE_INPUT_S)}")
        self.arch: Arch = arch
        self.n_tags = n_tags
        self.sample_rate = SAMPLE_RATE
        self.native_input_s = NATIVE_INPUT_S[arch]
        self.native_input_samples = int(round(self.native_input_s * SAMPLE_RATE))

        self.spec = torchaudio.transforms.MelSpectrogram(
            sample_rate=SAMPLE_RATE, n_fft=N_FFT, f_min=0.0, f_max=8000.0, n_mels=N_MELS
        )
        self.to_db = torchaudio.transforms.AmplitudeToDB()
        self.spec_bn = nn.BatchNorm2d(1)
        self.dropout = nn.Dropout(0.5)

        if arch == "fcn":
            self.layer1 = _Conv2dBlock(1, 64, (2, 4))
            self.layer2 = _Conv2dBlock(64, 128, (2, 4))
            self.layer3 = _Conv2dBlock(128, 128, (2, 4))
            self.layer4 = _Conv2dBlock(128, 128, (3, 5))
            self.layer5 = _Conv2dBlock(128, 64, (4, 4))
            self.dense = nn.Linear(64, n_tags)
            self.output_dim = 64
            self.default_lora_targets = ["layer3.conv", "layer4.conv", "layer5.conv"]
            # frames needed so every time pooling (4*4*4*5*4) leaves >= 1 frame
            self._min_frames = 4 * 4 * 4 * 5 * 4
        elif arch == "musicnn":
            self.layers = nn.ModuleList(
                [
                    _VerticalConv(204, (int(0.7 * N_MELS), 7)),
                    _VerticalConv(204, (int(0.4 * N_MELS), 7)),
                    _HorizontalConv(51, 129),
                    _HorizontalConv(51, 65),
                    _HorizontalConv(51, 33),
                ]
            )
            front_channels = 204 * 2 + 51 * 3  # 561
            backend_channels, dense_channels = 64, 200  # reference values for mtat / jamendo
            self.layer1 = _Conv1dBlock(front_channels, backend_channels, 7)
            self.layer2 = _Conv1dBlock(backend_channels, backend_channels, 7)
            self.layer3 = _Conv1dBlock(backend_channels, backend_channels, 7)
            self.dense1 = nn.Linear((front_channels + 3 * backend_channels) * 2, dense_channels)
            self.bn = nn.BatchNorm1d(dense_channels)
            self.relu = nn.ReLU()
            self.dense2 = nn.Linear(dense_channels, n_tags)
            self.output_dim = dense_channels
            self.default_lora_targets = ["layer1.conv", "layer2.conv", "layer3.conv", "dense1"]
            self._min_frames = 1
        else:  # crnn
            self.layer1 = _Conv2dBlock(1, 64, (2, 2))
            self.layer2 = _Conv2dBlock(64, 128, (3, 3))
            self.layer3 = _Conv2dBlock(128, 128, (4, 4))
            self.layer4 = _Conv2dBlock(128, 128, (4, 4))
            self.layer5 = nn.GRU(128, 32, 2, batch_first=True)
            self.dense = nn.Linear(32, n_tags)
            self.output_dim = 32
            self.default_lora_targets = ["layer2.conv", "layer3.conv", "layer4.conv"]
            self._min_frames = 2 * 3 * 4 * 4

    @property
    def min_input_samples(self) -> int:
        """Shortest waveform (samples) the architecture accepts (fcn ~20.5 s, crnn ~1.5 s)."""
        return (self._min_frames - 1) * HOP_LENGTH

    def log_mel(self, waveform: Tensor) -> Tensor:
        """``(B, samples)`` float32 at 16 kHz -> normalised log-mel ``(B, 1, 96, frames)``."""
        if waveform.ndim != 2:
            raise ValueError(f"expected waveform of shape (batch, samples), got {tuple(waveform.shape)}")
        if waveform.shape[1] < self.min_input_samples:
            raise ValueError(
                f"{self.arch} needs at least {self.min_input_samples} samples "
                f"({self.min_input_samples / SAMPLE_RATE:.2f} s at 16 kHz), got {waveform.shape[1]}"
            )
        x = self.to_db(self.spec(waveform))
        return self.spec_bn(x.unsqueeze(1))

    SUFFIX_MODULES: dict[str, tuple[str, ...]] = {"fcn": ("layer5",), "musicnn": ("dense1", "bn"), "crnn": ("layer5",)}
    """Modules of the trainable top ("suffix") per arch; everything before them is the prefix."""
    SUFFIX_LORA_TARGETS: dict[str, tuple[str, ...]] = {"fcn": ("layer5.conv",), "musicnn": ("dense1",), "crnn": ()}
    """peft LoRA targets inside the suffix (``suffix_lora_targets``); peft cannot wrap crnn's GRU."""

    @property
    def suffix_lora_targets(self) -> list[str]:
        """LoRA targets inside the suffix: fcn ``layer5.conv``, musicnn ``dense1``, crnn none."""
        return list(self.SUFFIX_LORA_TARGETS[self.arch])

    def prefix(self, waveform: Tensor) -> Tensor:
        """The bottom of the network, up to (not including) the suffix (``SUFFIX_MODULES``).

        Args:
            waveform: ``(batch, samples)`` float32 mono at 16 kHz (see ``forward``).

        Returns:
            fcn: ``layer4`` output ``(batch, 128, 4, 5)`` for a 29-s input; crnn: ``layer4`` output
            ``(batch, 128, 1, frames')``; musicnn: the max+mean pooled front/mid-end features
            ``(batch, 1506)`` (the input of ``dense1``).

        Raises:
            ValueError: as ``log_mel``.
        """
        x = self.log_mel(waveform)
        if self.arch == "musicnn":
            out = torch.cat([layer(x) for layer in self.layers], dim=1)
            res1 = self.layer1(out)
            res2 = self.layer2(res1) + res1
            res3 = self.layer3(res2) + res2
            out = torch.cat([out, res1, res2, res3], dim=1)
            return torch.cat([out.amax(dim=2), out.mean(dim=2)], dim=1)
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
        return x

    def suffix(self, hidden: Tensor) -> Tensor:
        """The top of the network: ``prefix`` output -> ``(batch, output_dim)`` embedding.

        ``forward(w) == suffix(prefix(w))``. Training only the suffix (e.g. LoRA on
        ``suffix_lora_targets``) on cached prefixes is how ``TaggerEnsembleEncoder`` fine-tunes.
        """
        if self.arch == "fcn":
            return self.layer5(hidden).amax(dim=(2, 3))  # (B, 64, 1, 1) at native length: same as the flatten
        if self.arch == "musicnn":
            return self.relu(self.bn(self.dense1(hidden)))
        x = hidden.squeeze(2).permute(0, 2, 1)  # (B, time, 128)
        x, _ = self.layer5(x)
        return x[:, -1, :]

    def forward(self, waveform: Tensor) -> Tensor:
        """Penultimate embedding (see ``output_dim`` for the exact layer): ``suffix(prefix(waveform))``.

        Args:
            waveform: ``(batch, samples)`` float32 mono at 16 kHz, ideally ``native_input_samples``
                long. FCN on inputs longer than 29 s: the remaining time axis of ``layer5`` is
                max-pooled (an extension; the reference only defines 29-s inputs).

        Returns:
            ``(batch, output_dim)`` float32.

        Raises:
            ValueError: wrong rank or input shorter than ``min_input_samples``.
        """
        return self.suffix(self.prefix(waveform))

    def tag_logits(self, waveform: Tensor) -> Tensor:
        """``(batch, samples)`` 16 kHz -> ``(batch, n_tags)`` raw logits of the original output
        layer (apply ``torch.sigmoid`` for the reference's tag probabilities)."""
        head = self.dense2 if self.arch == "musicnn" else self.dense
        return head(self.dropout(self(waveform)))


def _arch_from_name(stem: str) -> Arch:
    arch = stem.rsplit("-", 1)[-1]
    if arch not in NATIVE_INPUT_S:
        raise ValueError(f"cannot infer the architecture from {stem!r}: name must end in -fcn/-musicnn/-crnn")
    return arch  # type: ignore[return-value]


def build_tagger(arch: str, n_tags: int = 50) -> Encoder:
    """A tagger with random weights: ``SotaTaggerEncoder`` (fcn/musicnn/crnn) or, for the MSD models of
    Pons & Serra (``pons_musicnn`` / ``pons_vgg``), ``musicnn_msd.MusicnnMSDEncoder``.

    Raises:
        ValueError: unknown ``arch``.
    """
    if arch in PONS_ARCHS:
        return MusicnnMSDEncoder(arch, n_tags=n_tags)  # type: ignore[arg-type]
    return SotaTaggerEncoder(arch, n_tags=n_tags)  # type: ignore[arg-type]


def tagger_arch(name: str) -> str:
    """Architecture of the published weights ``name``: ``"msd-musicnn"`` -> ``pons_musicnn``,
    ``"msd-vgg"`` -> ``pons_vgg`` (``../shared/models/musicnn``), else the name's suffix (``fcn``...)."""
    stem = Path(str(name)).stem
    return PONS_MODELS.get(stem) or stem.rsplit("-", 1)[-1]


def load_sota_tagger(path_or_name: str | Path, models_dir: str | Path | None = None) -> Encoder:
    """Build a ``SotaTaggerEncoder`` and load published weights strictly, in eval mode.

    The MSD Musicnn / VGG of Pons & Serra (``"msd-musicnn"``, ``"msd-vgg"``) are not in
    ``sota-music-tagging``: those names load ``musicnn_msd.load_musicnn_msd`` (``{models_dir}/musicnn/``).

    Args:
        path_or_name: a ``.safetensors`` file named ``<dataset>-<arch>.safetensors`` or a name such
            as ``"mtat-musicnn"`` looked up in ``models_dir``.
        models_dir: the models folder (``eno_hf.models.weights``: ``{models_dir}/sota-music-tagging/``
            or the files directly); default ``paths.models_dir`` / ``$ENO_MODELS_DIR``.

    Returns:
        the encoder in ``eval()`` mode on CPU; subnormal weights are zero (``base.flush_subnormals``).

    Raises:
        WeightsNotFoundError (a FileNotFoundError): weights not found; the message lists every place
            looked. ValueError: name does not end in an arch.
        RuntimeError: the state dict does not match (``load_state_dict(strict=True)``).
    """
    from safetensors.torch import load_file

    if is_pons_model(path_or_name):
        return load_musicnn_msd(path_or_name, models_dir)
    path = resolve_safetensors(path_or_name, FAMILY, models_dir)
    state = load_file(str(path))
    arch = _arch_from_name(path.stem)
    n_tags = state["dense2.bias" if arch == "musicnn" else "dense.bias"].shape[0]
    encoder = SotaTaggerEncoder(arch, n_tags=n_tags)
    encoder.load_state_dict(flush_subnormals(state), strict=True)  # see flush_subnormals: 35x faster on x86
    return encoder.eval()


def tag_names(name: str, models_dir: str | Path | None = None) -> list[str]:
    """Tag names in output order for weights ``name`` (``"msd-fcn"``, ``"mtat"``, ``"jamendo-crnn"``...).

    Reads ``tags/msd-50.txt``, ``tags/mtat-50.txt`` or ``tags/mtg-jamendo-top50.txt`` in ``models_dir``.

    Raises:
        ValueError: unknown dataset prefix. FileNotFoundError: tag file absent.
    """
    dataset = Path(name).stem.split("-", 1)[0]
    if dataset not in TAG_FILES:
        raise ValueError(f"unknown dataset in {name!r}; expected a prefix in {sorted(TAG_FILES)}")
    path = find_weight_file(f"tags/{TAG_FILES[dataset]}", FAMILY, models_dir)
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


@torch.no_grad()
def clip_scores(encoder: SotaTaggerEncoder, waveform_16k: Tensor, batch_size: int = 16) -> Tensor:
    """Clip-level tag probabilities with the reference protocol.

    The clip is cut into consecutive non-overlapping ``native_input_samples`` chunks (incomplete
    tail dropped; a clip shorter than one chunk is zero-padded to one chunk), the chunks are run
    in batches and the sigmoid outputs are averaged (as ``reference_scores.json``).

    Args:
        encoder: a tagger (put it in ``eval()`` mode; ``load_sota_tagger`` does).
        waveform_16k: ``(samples,)`` float mono at 16 kHz (e.g. ``librosa.load(path, sr=16000)``).
        batch_size: chunks per forward pass.

    Returns:
        ``(n_tags,)`` float32 mean probabilities.

    Raises:
        ValueError: waveform not 1-D or empty.
    """
    wav = torch.as_tensor(waveform_16k, dtype=torch.float32)
    if wav.ndim != 1 or wav.numel() == 0:
        raise ValueError(f"expected a non-empty 1-D waveform, got shape {tuple(wav.shape)}")
    n = encoder.native_input_samples
    if wav.numel() < n:
        wav = torch.nn.functional.pad(wav, (0, n - wav.numel()))
    n_chunks = wav.numel() // n
    chunks = wav[: n_chunks * n].reshape(n_chunks, n)
    probs = [torch.sigmoid(encoder.tag_logits(batch)) for batch in chunks.split(batch_size)]
    return torch.cat(probs).mean(dim=0)
