"""Inference and training speed of eno models on the CPU, side by side in one run.

Prints, per model: milliseconds per 30-s clip at batch 1 and batched, × real time (audio seconds
per wall second; "×RT b1 CPU": per second of process CPU time, i.e. what a core of one's own would
give on a machine shared with other jobs), and training examples/s (forward + backward + optimizer
step on training crops).
Real audio (a 4q-dev clip) is used when ../shared/data is present, noise otherwise; timings are
the median of ``--repeats`` runs after one warm-up. Target: ≥ 200× real time on one
core for ``mel_cnn`` (configured as ``configs/mel-cnn.yaml``: 3-s chunks).

Inference runs under ``torch.no_grad()`` in eval mode, as ``pipeline()`` does, so ``mel_cnn`` takes
its folded-BatchNorm path; ``--no-fold`` times the plain eval graph instead (same outputs).
``mel_cnn c64`` / ``c48`` / ``96 mels`` are other widths (the default is 32 channels, 128 mels).
Other helpers share the machine: pin a core and repeat, e.g.

    taskset -c 1 .venv/bin/python benchmarks/inference.py --threads 1 --models "mel_cnn (scratch)"

glibc hands large activations back to the kernel after every forward, so each forward page-faults
~40 MB of fresh memory (mel_cnn, 30-s clip: ~11k minor faults, ~10 % of its time). Serving
processes can keep that memory with ``MALLOC_MMAP_THRESHOLD_=4294967296
MALLOC_TRIM_THRESHOLD_=4294967296`` in the environment; the header line says whether it is set.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

import eno_hf  # noqa: F401
from eno_hf.config import PROJECT_ROOT, load_config
from eno_hf.models.encoders.mel_cnn import ResBlock2d
from eno_hf.models.factory import create_model
from eno_hf.models.lora import apply_finetune
from eno_hf.training.cache import PrefixInput, cache_mode

CLIP_S = 30.0
SR = 16_000
VOCAB = {"quadrant": ["q1", "q2", "q3", "q4"], "descriptors": [f"d{i}" for i in range(100)],
         "genres": [f"g{i}" for i in range(19)]}


def _clip() -> np.ndarray:
    clips = sorted((PROJECT_ROOT.parent / "shared/data/4q-dev/Q1").glob("*.mp3"))
    if clips:
        from eno_hf.audio.io import load_audio

        y, _ = load_audio(clips[0], sample_rate=SR)
    else:
        y = np.random.default_rng(0).standard_normal(int(CLIP_S * SR)).astype(np.float32) * 0.1
    n = int(CLIP_S * SR)
    return np.pad(y, (0, max(0, n - len(y))))[:n].astype(np.float32)


def _time(fn, repeats: int) -> float:
    return _times(fn, repeats)[0]


def _times(fn, repeats: int) -> tuple[float, float]:
    """Median wall-clock and median process CPU seconds of ``fn()`` over ``repeats`` runs after a
    warm-up. CPU time leaves out the time the process waits for a busy core (shared machine)."""
    fn()  # warm-up
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def bench(name: str, clip: np.ndarray, batch: int, repeats: int, fold: bool = True) -> dict:
    config, overrides = MODELS[name]
    settings = load_config(config, overrides)
    model = create_model(settings, VOCAB).eval()
    for module in model.modules():
        if isinstance(module, ResBlock2d):
            module.fold_batchnorm = fold
    x1 = torch.from_numpy(clip)[None]
    xb = x1.repeat(batch, 1)
    with torch.no_grad():
        t1, c1 = _times(lambda: model(x1), repeats)
        tb = _time(lambda: model(xb), repeats) / batch
    # training: crops of the encoder's native length (or chunk_s), LoRA/full per config
    model = apply_finetune(create_model(settings, VOCAB), settings.model).train()
    crop = int(min(model.window_samples, len(clip)))
    xt = torch.from_numpy(np.stack([clip[:crop]] * 8))
    if cache_mode(settings, model) == "prefix":  # as train_model: LoRA top layers on cached prefixes
        xt = model.encoder.frozen_prefix(xt)
        model.encoder = PrefixInput(model.encoder, crop)
        model.config.encoder_type = "embeddings"
        model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)

    def step() -> None:
        out = model(xt)
        loss = sum(v.float().pow(2).mean() for v in out.head_logits.values())
        loss.backward()
        opt.step()
        opt.zero_grad()

    ts = _time(step, max(2, repeats // 2))
    return {"model": name, "ms_clip_b1": t1 * 1e3, "ms_clip_batched": tb * 1e3,
            "xrt_b1": CLIP_S / t1, "xrt_b1_cpu": CLIP_S / c1, "xrt_batched": CLIP_S / tb, "train_ex_s": 8 / ts,
            "train_crop_s": crop / SR}


MEL_CNN = "configs/mel-cnn.yaml"
DATASET = "configs/datasets/4q.yaml"
MODELS: dict[str, tuple[str, list[str]]] = {
    "mel_cnn (scratch)": (MEL_CNN, []),
    "ensemble (default)": ("configs/small.yaml", []),
    "mtat-musicnn (LoRA)": (DATASET, ["model.encoder=sota_tagger", "model.tagger=mtat-musicnn", "model.finetune=lora"]),
    "msd-fcn (LoRA)": (DATASET, ["model.encoder=sota_tagger", "model.tagger=msd-fcn", "model.finetune=lora"]),
    # cheaper mel_cnn candidates, not run by default
    "mel_cnn c64": (MEL_CNN, ["model.mel_cnn_channels=64"]),
    "mel_cnn c48": (MEL_CNN, ["model.mel_cnn_channels=48"]),
    "mel_cnn 96 mels": (MEL_CNN, ["dataset.features.n_mels=96"]),
}
DEFAULT_MODELS = ["mel_cnn (scratch)", "ensemble (default)", "mtat-musicnn (LoRA)", "msd-fcn (LoRA)"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--models", nargs="*", default=DEFAULT_MODELS, choices=list(MODELS))
    ap.add_argument("--no-fold", action="store_true", help="mel_cnn: time the plain eval graph (BatchNorm not folded)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    clip = _clip()
    print(f"torch threads: {args.threads}; clip: {CLIP_S:.0f} s at {SR} Hz; batch {args.batch}"
          f"{'; mel_cnn BatchNorm NOT folded' if args.no_fold else ''}"
          f"; MALLOC_MMAP_THRESHOLD_={os.environ.get('MALLOC_MMAP_THRESHOLD_', 'unset')}")
    header = f"{'model':<22} {'ms/clip b1':>11} {'ms/clip b' + str(args.batch):>11} {'×RT b1':>8} {'×RT batched':>12} {'×RT b1 CPU':>11} {'train ex/s':>11}"
    print(header)
    print("-" * len(header))
    for name in args.models:
        r = bench(name, clip, args.batch, args.repeats, fold=not args.no_fold)
        print(f"{r['model']:<22} {r['ms_clip_b1']:>11.1f} {r['ms_clip_batched']:>11.1f} "
              f"{r['xrt_b1']:>8.0f} {r['xrt_batched']:>12.0f} {r['xrt_b1_cpu']:>11.0f} {r['train_ex_s']:>11.1f}"
              f"   (train crops {r['train_crop_s']:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
