"""Peak memory of the frozen-cache training path on N and 4N rows: flat in the number of rows
(target: the larger run's peak within 15 % of the smaller's).

    .venv/bin/python benchmarks/train_memory.py                      # 2,000 vs 8,000 rows, frozen mode
    .venv/bin/python benchmarks/train_memory.py --mode prefix --json
    .venv/bin/python benchmarks/train_memory.py --pythonpath /tmp/old-checkout   # another version of eno_hf

Set-up (untimed, in a temporary folder, one subprocess per size): a synthetic dataset of N training
rows (+ N/8 validation rows) of white noise, ``--windows`` windows of 0.05 s each (16 kHz,
``Sequence(float16)`` as eno's datasets) with ``recording_id`` and a multi-label ``moods`` column,
written with ``datasets`` and saved with ``save_to_disk``.

Measured, each size in a fresh process that opens the dataset with ``load_from_disk``
(memory-mapped): ``eno_hf.training.cache.cache_inputs`` (``encode_split`` on the forked workers,
the on-disk caches, the standardization statistics, the per-window datasets), then ``--steps``
training steps (Adam, batches of 64 random windows read from the cached dataset) of
``training_view``. The encoder is a tiny random one (``TinyEncoder``: a ``(window, prefix_dim)``
projection, tanh, then a ``(prefix_dim, --dim)`` layer, with standardization buffers like
``TaggerEnsembleEncoder``), so the features are wide (``--dim`` floats per window) while encoding
is cheap.

Printed per size (never asserts): VmHWM (peak resident set size of the process, which counts the
pages of memory-mapped files it touched: the dataset's waveforms while encoding, the cached
features while the statistics are computed), the peak of RssAnon (anonymous memory, i.e. what
cannot be dropped by the kernel; sampled every 5 ms by a thread), the RSS after start-up (imports,
model), the largest worker's peak, the size of the cached features, and the wall times; then the
ratio 4N / N of each peak. The last stdout line is a JSON object with ``--json``.

Measured on the 2-core CPU machine (defaults: 2,000 vs 8,000 rows, 3 windows each, 1,024 floats
per window; 26 vs 106 MB of cached training features), peak RssAnon 4N/N: frozen 491 -> 493 MB
(1.002), prefix 501 -> 501 MB (1.000); VmHWM: frozen 885 -> 974 MB (1.100), prefix 905 -> 1,033 MB
(1.141), the growth being pages of memory-mapped files (the training features, mapped whole while
torch computes the standardization statistics; the dataset's waveforms), which the kernel drops
under memory pressure. The former in-memory caches (``--pythonpath`` to a checkout before them):
RssAnon 616 -> 914 MB (1.48) frozen, 623 -> 915 MB (1.47) prefix; VmHWM 989 -> 1,354 MB (1.37)
and 997 -> 1,357 MB (1.36).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SAMPLE_RATE = 16_000
CHUNK_S = 0.05
TARGET_RATIO = 1.15


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def build(path: Path, rows: int, windows: int, seed: int = 0) -> None:
    """Write the synthetic ``DatasetDict`` (``train``: ``rows``, ``validation``: ``rows // 8``) to ``path``."""
    import datasets
    import numpy as np

    datasets.disable_progress_bars()
    features = datasets.Features({
        "recording_id": datasets.Value("string"),
        "moods": datasets.Sequence(datasets.ClassLabel(names=["calm", "dark", "happy"])),
        "waveform": datasets.Sequence(datasets.Value("float16")),
    })
    n_samples = int(windows * CHUNK_S * SAMPLE_RATE)

    def gen(n: int, offset: int):
        rng = np.random.default_rng(seed + offset)
        for i in range(n):
            yield {"recording_id": f"r{offset + i}", "moods": [int(i % 3)],
                   "waveform": (0.1 * rng.standard_normal(n_samples)).astype(np.float16)}

    cache = path.parent / f"{path.name}-hf-cache"
    splits = {name: datasets.Dataset.from_generator(gen, features=features, cache_dir=str(cache),
                                                    gen_kwargs={"n": n, "offset": off})
              for name, n, off in (("train", rows, 0), ("validation", max(8, rows // 8), 10**7))}
    datasets.DatasetDict(splits).save_to_disk(str(path))


def measure(path: Path, work: Path, dim: int, prefix_dim: int, mode: str, steps: int) -> dict:
    """Run ``cache_inputs`` + ``steps`` training steps on the dataset at ``path``; peak figures."""
    peak_anon = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak_anon[0] = max(peak_anon[0], _status_kb("RssAnon"))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    import datasets
    import numpy as np
    import torch

    from eno_hf.models import EnoForAudioTagging, EnoModelConfig
    from eno_hf.training.cache import EMBEDDING_COLUMN, cache_inputs, training_view

    class TinyEncoder(torch.nn.Module):
        """Random ``(B, samples) -> (B, dim)`` encoder with the ``frozen_prefix``/``from_prefix``
        and standardization interface of ``TaggerEnsembleEncoder``."""

        def __init__(self, samples: int) -> None:
            super().__init__()
            self.proj = torch.nn.Linear(samples, prefix_dim, bias=False)
            self.top = torch.nn.Linear(prefix_dim, dim)
            self.output_dim = dim
            self.register_buffer("feature_mean", torch.zeros(dim))
            self.register_buffer("feature_std", torch.ones(dim))

        def prefix_dim(self, n_samples: int) -> int:
            return prefix_dim

        @torch.no_grad()
        def frozen_prefix(self, waveform):
            return torch.tanh(self.proj(waveform))

        def raw_from_prefix(self, prefix, n_samples=None):
            return self.top(prefix)

        def raw_features(self, waveform):
            return self.raw_from_prefix(self.frozen_prefix(waveform))

        def standardize(self, features):
            return (features - self.feature_mean) / self.feature_std.clamp_min(1e-6)

        @torch.no_grad()
        def set_standardization(self, mean, std) -> None:
            self.feature_mean.copy_(mean)
            self.feature_std.copy_(torch.where(std > 1e-6, std, torch.ones_like(std)))

        def from_prefix(self, prefix, n_samples=None):
            return self.standardize(self.raw_from_prefix(prefix, n_samples))

        def forward(self, waveform):
            return self.standardize(self.raw_features(waveform))

    torch.manual_seed(0)
    heads = [{"name": "moods", "kind": "multilabel", "labels": ["calm", "dark", "happy"]}]
    # built around a stand-in of the right width, then given the audio encoder
    cfg = EnoModelConfig(encoder_type="embeddings", encoder_kwargs={"input_dim": dim, "columns": ["x"]},
                         sample_rate=SAMPLE_RATE, chunk_s=CHUNK_S, hidden_dim=32, heads=heads)
    model = EnoForAudioTagging(cfg).eval()
    model.encoder = TinyEncoder(model.window_samples)
    dataset = datasets.load_from_disk(str(path))
    start_kb = _status_kb("VmRSS")

    t0 = time.perf_counter()
    cached = cache_inputs(model, dataset, ["recording_id", "moods"], work / "embedding_cache", mode, progress=False)
    cache_s = time.perf_counter() - t0

    train = cached.datasets["train"]
    view = training_view(model, cached).train()
    params = [p for p in view.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-3)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(steps):
        batch = train[rng.choice(len(train), size=min(64, len(train)), replace=False).tolist()]
        x = torch.from_numpy(np.asarray(batch[EMBEDDING_COLUMN], dtype=np.float32))
        y = torch.zeros(len(x), 3)
        for i, moods in enumerate(batch["moods"]):
            y[i, list(moods)] = 1.0
        loss = view(x, labels={"moods": y}).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    train_s = time.perf_counter() - t0
    stop.set()
    sampler.join()
    feature_bytes = sum(p.stat().st_size for p in (work / "embedding_cache").glob("*.np[yz]"))
    return {"rows": len(dataset["train"]), "windows": len(train), "vm_hwm_mb": _status_kb("VmHWM") / 1024,
            "peak_anon_mb": max(peak_anon[0], _status_kb("RssAnon")) / 1024, "start_rss_mb": start_kb / 1024,
            "worker_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            "features_mb": feature_bytes / 2**20, "cache_s": cache_s, "train_s": train_s,
            "loss": float(loss.detach())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=2_000, help="N: training rows of the smaller run")
    ap.add_argument("--factor", type=int, default=4, help="the larger run has factor * N rows")
    ap.add_argument("--windows", type=int, default=3, help="windows of 0.05 s per row")
    ap.add_argument("--dim", type=int, default=1024, help="encoder output floats per window")
    ap.add_argument("--prefix-dim", type=int, default=1024, help="frozen-prefix floats per window")
    ap.add_argument("--mode", choices=["frozen", "prefix"], default="frozen")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--pythonpath", default=None, help="put this folder first on the children's PYTHONPATH")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", nargs=2, metavar=("DATASET", "WORKDIR"), help=argparse.SUPPRESS)
    ap.add_argument("--build", nargs=2, metavar=("DATASET", "ROWS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.build:
        build(Path(args.build[0]), int(args.build[1]), args.windows)
        return
    if args.child:
        res = measure(Path(args.child[0]), Path(args.child[1]), args.dim, args.prefix_dim, args.mode, args.steps)
        print(json.dumps(res))
        return

    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (args.pythonpath, root, env.get("PYTHONPATH")) if p)
    common = ["--windows", str(args.windows), "--dim", str(args.dim), "--prefix-dim", str(args.prefix_dim),
              "--mode", args.mode, "--steps", str(args.steps)]
    results = []
    with tempfile.TemporaryDirectory(prefix="eno-train-memory-") as tmp:
        for rows in (args.rows, args.factor * args.rows):
            data, work = Path(tmp) / f"data-{rows}", Path(tmp) / f"run-{rows}"
            subprocess.run([sys.executable, __file__, "--build", str(data), str(rows), *common], env=env, check=True)
            out = subprocess.run([sys.executable, __file__, "--child", str(data), str(work), *common], env=env,
                                 check=True, stdout=subprocess.PIPE, text=True).stdout
            results.append(json.loads(out.strip().splitlines()[-1]))
    small, large = results
    keys = [("rows", "rows", "{:.0f}"), ("windows", "windows", "{:.0f}"), ("features_mb", "cached features MB", "{:.1f}"),
            ("start_rss_mb", "RSS after start-up MB", "{:.0f}"), ("vm_hwm_mb", "peak RSS (VmHWM) MB", "{:.0f}"),
            ("peak_anon_mb", "peak RssAnon MB", "{:.0f}"), ("worker_peak_mb", "largest worker peak MB", "{:.0f}"),
            ("cache_s", "cache_inputs s", "{:.1f}"), ("train_s", f"{args.steps} steps s", "{:.2f}")]
    print(f"mode={args.mode} dim={args.dim} prefix_dim={args.prefix_dim} windows/row={args.windows}")
    print(f"{'':26s}{'N':>12s}{'4N' if args.factor == 4 else f'{args.factor}N':>12s}{'ratio':>9s}")
    for key, label, fmt in keys:
        ratio = large[key] / small[key] if small[key] else float("nan")
        print(f"{label:26s}{fmt.format(small[key]):>12s}{fmt.format(large[key]):>12s}{ratio:9.3f}")
    summary = {"small": small, "large": large, "vm_hwm_ratio": large["vm_hwm_mb"] / small["vm_hwm_mb"],
               "peak_anon_ratio": large["peak_anon_mb"] / small["peak_anon_mb"], "target_ratio": TARGET_RATIO}
    print(f"target: larger peak within {TARGET_RATIO:.2f}x of the smaller: VmHWM {summary['vm_hwm_ratio']:.3f}, "
          f"RssAnon {summary['peak_anon_ratio']:.3f}")
    if args.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
