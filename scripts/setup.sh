#!/usr/bin/env bash
# Idempotent set-up: FFmpeg (for torchcodec/datasets.Audio decoding), .venv, eno + dev extras.
# Re-running is a no-op when nothing changed (stamp = hash of pyproject.toml + constraints.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian packages: FFmpeg (decoding), FluidSynth + General MIDI soundfonts (MIDI rendering),
# hydrogen-drumkits (recorded drum samples for the mix-clarity workflow).
APT_PKGS="ffmpeg fluidsynth fluid-soundfont-gm musescore-general-soundfont-small timgm6mb-soundfont hydrogen-drumkits"
missing=""
for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "[setup] installing Debian packages:$missing"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
[ -x .venv/bin/python ] || { echo "[setup] creating .venv"; "$PY" -m venv .venv; }
stamp=$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
if [ "$(cat .venv/.eno-stamp 2>/dev/null)" != "$stamp" ]; then
  # torch + torchaudio (a CUDA build, run on the CPU) make the environment ~7 GB; pip unpacks each wheel
  # in $TMPDIR first. No wheel cache (--no-cache-dir): under a fresh HOME it would be another ~3 GB.
  need_kb=$((10 * 1024 * 1024))
  for d in . "${TMPDIR:-/tmp}"; do
    free_kb=$(df -Pk "$d" | awk 'NR==2 {print $4}')
    if [ "${free_kb:-0}" -lt "$need_kb" ]; then
      echo "[setup] error: $(realpath "$d") has $((free_kb / 1024 / 1024)) GB free; installing eno needs about 10 GB" \
           "(the .venv is ~7 GB, and pip unpacks wheels in \$TMPDIR). Free some space or set TMPDIR." >&2
      exit 1
    fi
  done
  echo "[setup] installing eno into .venv (2-5 minutes the first time)"
  # pip's own exit status decides (the filter only hides a harmless pip notice about the constraints file)
  pip_install() {
    local rc=0
    .venv/bin/pip install --no-compile --no-cache-dir -q --disable-pip-version-check -c constraints.txt "$@" 2>&1 \
      | { grep -v "is ignored: it is neither a file nor a directory" || true; } || rc=$?
    if [ "$rc" != 0 ]; then echo "[setup] error: pip install $* failed (exit $rc); see pip's message above" >&2; exit 1; fi
  }
  pip_install -e '.[dev,transcription]'
  # basic-pitch (piano transcription) without its TensorFlow pin, which cannot resolve beside numpy 2:
  # eno runs its ONNX model through onnxruntime (eno_hf/audio/transcribe.py)
  pip_install --no-deps basic-pitch==0.4.0
  .venv/bin/python -c "import eno_hf, torch, torchaudio, torchcodec" 
  echo "$stamp" > .venv/.eno-stamp
fi
# Bytecode of every installed module, once per install: pip ran with --no-compile, and where
# PYTHONDONTWRITEBYTECODE is set no .pyc is ever written, so each `eno` process (and Prefect's
# server process) compiled ~1,500 modules from source at start-up (~6 s of an unchanged `eno run`).
if [ "$(cat .venv/.eno-pyc-stamp 2>/dev/null)" != "$stamp" ]; then
  echo "[setup] compiling bytecode (once per install, about a minute)"
  .venv/bin/python -m compileall -q -j 0 .venv/lib/python3*/site-packages eno_hf/ >/dev/null 2>&1 || true
  echo "$stamp" > .venv/.eno-pyc-stamp
fi
