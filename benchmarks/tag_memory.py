"""Peak memory of ``eno tag`` on a long file: flat in the file's length (target < 400 MB above
the baseline for a 20-minute WAV).

    .venv/bin/python benchmarks/tag_memory.py                 # 20 minutes, msd-fcn tagger
    .venv/bin/python benchmarks/tag_memory.py --minutes 60 --json
    .venv/bin/python benchmarks/tag_memory.py --whole         # + the whole-file path, for comparison

Set-up (untimed, in a temporary folder): ``eno import-weights TAGGER`` writes the model; real 4q-dev
clips (``$ENO_SHARED_DIR/data/4q-dev``) are decoded at 44.1 kHz stereo and appended one after the
other to a 16-bit WAV of ``--minutes`` minutes (written block by block). Then, each in a fresh
process under ``/usr/bin/time -v`` (its "Maximum resident set size"):

1. baseline: ``eno tag CLIP --model DIR --json`` on one 30-s clip (interpreter, torch, model);
2. long: ``eno tag LONG.wav --model DIR --json``;
3. with ``--whole``: the whole-file path (``validate_audio`` + ``predict_waveform``, the signal
   held in memory, as ``eno tag`` did before it streamed), in a Python process.

Prints the peak RSS of each, the long file's peak above the baseline and the target; the last
stdout line is a JSON object with ``--json``. Never asserts.

Measured on the 2-core CPU machine, ``msd-fcn`` (29-s windows): baseline 950-960 MB; 20-minute
WAV (202 MB): +93 MB above it; 60-minute WAV (606 MB): +124 MB. Before ``eno tag`` streamed
(``--whole``), the 20-minute WAV took +1,510 MB (and +1,390 MB streamed with 16 windows per pass,
the model's ``chunk_batch_size``: encoder activations, ~90 MB a window, hence one minute of
windows per pass).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_MB = 400.0

WHOLE = """
import sys
from eno_hf.audio.validate import validate_audio
from eno_hf.inference.pipeline import load_model, predict_waveform
model, ext = load_model(sys.argv[2])
v = validate_audio(sys.argv[1], sample_rate=int(ext.sampling_rate))
print(predict_waveform(v.samples, v.sample_rate, model, ext))
"""


def _eno() -> list[str]:
    script = Path(sys.executable).parent / "eno"
    if script.is_file():
        return [str(script)]
    found = shutil.which("eno")
    return [found] if found else [sys.executable, "-m", "eno_hf.cli"]


def write_long_wav(clips: list[Path], out: Path, minutes: float, sample_rate: int = 44_100) -> float:
    """Append real clips (decoded to ``sample_rate`` stereo, soxr) to a 16-bit WAV until it lasts
    ``minutes``; one clip in memory at a time. Returns the duration written (s)."""
    import numpy as np
    import soundfile as sf

    from eno_hf.audio.io import load_audio

    need = int(minutes * 60 * sample_rate)
    written = 0
    with sf.SoundFile(out, "w", samplerate=sample_rate, channels=2, subtype="PCM_16") as fh:
        while written < need:
            for clip in clips:
                y, _ = load_audio(clip, sample_rate=sample_rate, mono=False)
                y = y if y.shape[0] == 2 else np.repeat(y[:1], 2, axis=0)
                take = min(y.shape[1], need - written)
                fh.write(y[:, :take].T)
                written += take
                if written >= need:
                    break
    return written / sample_rate


def peak_rss_mb(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """(peak RSS in MB from ``/usr/bin/time -v``, wall seconds) of one run; exits on failure
    (``eno tag`` exit 1 = some input rejected also stops: the benchmark inputs are all good)."""
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], cwd=cwd, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd[:3])} ... failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    if m is None:
        sys.exit("no 'Maximum resident set size' in /usr/bin/time -v output")
    return int(m.group(1)) / 1024.0, wall


def main() -> None:
    """Run the benchmark (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=20.0, help="length of the long WAV")
    ap.add_argument("--tagger", default="msd-fcn", help="pretrained tagger for `eno import-weights`")
    ap.add_argument("--whole", action="store_true", help="also measure the whole-file path")
    ap.add_argument("--json", action="store_true", help="print a JSON object as the last line")
    args = ap.parse_args()
    if not Path("/usr/bin/time").is_file():
        sys.exit("/usr/bin/time is not installed (apt-get install time)")
    from eno_hf.locations import shared_path

    clips = sorted((shared_path("data") / "4q-dev").glob("Q*/*.mp3"))
    if not clips:
        sys.exit("no 4q-dev clips under $ENO_SHARED_DIR/data/4q-dev")
    eno = _eno()
    with tempfile.TemporaryDirectory(prefix="eno-tag-memory-") as tmp:
        work = Path(tmp)
        model = work / args.tagger
        proc = subprocess.run([*eno, "-q", "import-weights", args.tagger, "--out", str(model)],
                              cwd=work, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"eno import-weights {args.tagger} failed: {proc.stderr.strip()[-2000:]}")
        long_wav = work / "long.wav"
        print(f"writing a {args.minutes:g}-minute WAV from {len(clips)} real clips ...",
              file=sys.stderr, flush=True)
        seconds = write_long_wav(clips, long_wav, args.minutes)
        size_mb = long_wav.stat().st_size / 2**20
        base, base_wall = peak_rss_mb([*eno, "-q", "tag", str(clips[0]), "--model", str(model),
                                       "--json"], work)
        long, long_wall = peak_rss_mb([*eno, "-q", "tag", str(long_wav), "--model", str(model),
                                       "--json"], work)
        result = {"minutes": round(seconds / 60, 2), "wav_mb": round(size_mb, 1),
                  "tagger": args.tagger, "baseline_rss_mb": round(base, 1),
                  "long_rss_mb": round(long, 1), "above_baseline_mb": round(long - base, 1),
                  "target_mb": TARGET_MB, "baseline_wall_s": round(base_wall, 1),
                  "long_wall_s": round(long_wall, 1)}
        if args.whole:
            whole, whole_wall = peak_rss_mb([sys.executable, "-c", WHOLE, str(long_wav), str(model)],
                                            work)
            result.update(whole_rss_mb=round(whole, 1), whole_above_baseline_mb=round(whole - base, 1),
                          whole_wall_s=round(whole_wall, 1))
    print(f"long WAV: {result['minutes']} min, {result['wav_mb']} MB (44.1 kHz stereo 16-bit)")
    print(f"eno tag, one 30-s clip (baseline): peak RSS {result['baseline_rss_mb']} MB, "
          f"{result['baseline_wall_s']} s")
    print(f"eno tag, long WAV:                 peak RSS {result['long_rss_mb']} MB, "
          f"{result['long_wall_s']} s")
    print(f"above baseline: {result['above_baseline_mb']} MB (target < {TARGET_MB:g} MB)")
    if args.whole:
        print(f"whole-file path, long WAV:         peak RSS {result['whole_rss_mb']} MB "
              f"({result['whole_above_baseline_mb']} MB above baseline), {result['whole_wall_s']} s")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
