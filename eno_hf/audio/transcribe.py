"""Automatic piano transcription: a recording → MIDI notes (onset, offset, pitch, velocity).

The performance models read MIDI statistics (``eno_hf.features.midi.midi_statistics``); a user
with a recording and no MIDI file gets them from a transcription of the recording. The
transcriber is Basic Pitch (Bittner, Bosch, Rubinstein, Meseguer-Brocal & Ewert, "A Lightweight
Instrument-Agnostic Model for Polyphonic Note Transcription and Multipitch Estimation", ICASSP
2022; PyPI ``basic-pitch``, Apache-2.0): a small CNN (about 17k parameters) on a harmonic CQT at
22,050 Hz that outputs, per frame of 256 samples (~86 frames/s) and per piano key (88 bins from
A0), a note posteriorgram, an onset posteriorgram and a 3-bins-per-semitone pitch contour; its
note-creation step (onset peaks, frame-threshold tracking, Melodia-style clean-up) turns them into
notes. The wheel ships the trained ICASSP 2022 model as ONNX (``saved_models/icassp_2022/nmp.onnx``),
which eno runs with onnxruntime: TensorFlow, CoreML and TFLite are never needed, the model file is
always the ONNX one (whatever else is installed), and nothing is downloaded at run time.

Installation (``pyproject.toml``, extra ``transcription``): ``basic-pitch==0.4.0`` declares
``tensorflow<2.15.1`` on Linux/Python 3.11, which needs ``numpy<2`` and so cannot resolve with
eno's constraints; eno does not use TensorFlow, so the wheel is installed without its declared
dependencies and the ones it imports are the extra's::

    pip install -c constraints.txt -e '.[transcription]'
    pip install -c constraints.txt --no-deps basic-pitch==0.4.0

What the transcription holds: one instrument (General MIDI program 0, acoustic grand piano) with
the notes; velocity from the audio at each onset (``onset_energy_velocities``: the rise of the
constant-Q magnitude at the note's fundamental, in dB re full scale, mapped linearly to 1-127; so
it depends on the recording's level), or with ``velocity="amplitude"`` Basic Pitch's own
``round(127 * amplitude)`` (the mean note posteriorgram over the note: a note confidence, which
does not follow loudness: Pearson r -0.22 with the source's mean velocity over 40 renderings); no
pitch bends (a piano has none); no sustain pedal (Basic Pitch does not estimate it, so the pedal
statistics of a transcription are 0). Times are seconds from the start of the audio.

Decoding and checks are those of every eno input (``eno_hf.audio.validate.validate_audio``:
``missing_file``, ``unsupported``, ``empty``, ``undecodable``, ``nan_inf``, ``too_short``,
``silent``, ``too_long``); the length is measured before anything is transcribed (header, then
while decoding, which stops at the limit). A transcription with no note is ``silent``.

Transcriptions are cached as Standard MIDI Files named by a key of the audio content (file bytes
or samples), the model file (Basic Pitch version + sha256 of ``nmp.onnx``) and the settings that
choose the notes, in ``$ENO_TRANSCRIBE_CACHE`` or ``~/.eno/cache/transcription`` (beside the MIDI
rendering cache of ``eno_hf.audio.midi``), bounded to ``TranscriptionSettings.cache_max_mb``
(least recently used removed first; a hit refreshes a file's time stamp). Example::

    >>> from eno_hf.audio.transcribe import transcribe
    >>> pm = transcribe("recording.wav")                 # pretty_midi.PrettyMIDI
    >>> [(n.start, n.end, n.pitch, n.velocity) for n in pm.instruments[0].notes][:3]
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from eno_hf.audio import midi
from eno_hf.audio.midi import evict_lru, lru_hit
from eno_hf.errors import RejectedInput, rejected_as
from eno_hf.utils.io import atomic_write, file_sha256

if TYPE_CHECKING:
    import pretty_midi

    from eno_hf.config import AudioConfig

__all__ = ["TRANSCRIBE_SAMPLE_RATE", "MAX_TRANSCRIBE_S", "TranscriptionSettings", "model_path", "model_id",
           "unavailable_reason", "posteriorgrams", "notes_from_posteriorgrams", "onset_energy_velocities",
           "set_velocities", "transcribe", "transcribe_to_file",
           "cache_dir", "evict_transcriptions"]

TRANSCRIBE_SAMPLE_RATE = 22050
"""Basic Pitch's input rate in Hz (``basic_pitch.constants.AUDIO_SAMPLE_RATE``)."""
MAX_TRANSCRIBE_S = 1800.0
"""Default longest input transcribed (s), as ``eno_hf.audio.midi.MAX_RENDER_S`` for renderings."""
_OVERLAP_FRAMES = 30  # as basic_pitch.inference.run_inference: windows overlap by 30 frames
_BATCH_WINDOWS = 8    # windows of ~2 s per onnxruntime call
_INSTALL_HINT = ("automatic transcription needs basic-pitch: pip install -c constraints.txt -e '.[transcription]' "
                 "&& pip install -c constraints.txt --no-deps basic-pitch==0.4.0")
_log = logging.getLogger(__name__)
VELOCITY_METHODS = ("onset_energy", "amplitude")
#: ``onset_energy_velocities``: MIDI velocity per dB of onset energy (re full scale), and the
#: frames (of 256 samples at 22,050 Hz) after / before the onset it compares
VELOCITY_PER_DB, _ONSET_AFTER_FRAMES, _ONSET_BEFORE_FRAMES = 2.5, 4, 3


@dataclass(frozen=True)
class TranscriptionSettings:
    """How notes are made from Basic Pitch's posteriorgrams, and the limits of an input.

    The defaults are tuned for solo piano: onset threshold 0.6, frame threshold 0.4, notes of at
    least 35 ms, onsets from the onset posteriorgram only, no Melodia pass (Basic Pitch's own
    defaults, ``basic_pitch_defaults()``: 0.5, 0.3, 127.7 ms, inferred onsets, Melodia on). Chosen
    by a grid search on 10 PercePiano performances x 2 soundfonts (FluidSynth renderings) disjoint
    from the benchmark's: mean onset-only note F1 0.751 with Basic Pitch's defaults, 0.869 with
    these; measured on the benchmark's 20 performances in ``docs/performance.md``
    ("Transcription"). Synthesized piano only: not measured on real recordings. (Inferred onsets
    also lose the note holding the largest onset value when the rescaled frame difference ties it
    in the next frame: ``scipy.signal.argrelmax`` needs a strict peak.)

    Attributes:
        onset_threshold: onset posteriorgram peak (0-1) that starts a note.
        frame_threshold: note posteriorgram level (0-1) below which a note ends.
        minimum_note_length_ms: shorter notes are dropped (ms; converted to whole frames of
            256 / 22,050 s).
        minimum_frequency_hz / maximum_frequency_hz: notes outside are dropped (None: no bound).
        infer_onsets: add onsets where the note posteriorgram rises sharply.
        melodia_trick: Basic Pitch's Melodia-style pass that also tracks notes without onsets.
        max_duration_s: longest input transcribed (s); longer is ``too_long``, never transcribed
            (the smaller of this and ``AudioConfig.max_duration_s`` applies).
        velocity: ``"onset_energy"`` (``onset_energy_velocities``) or ``"amplitude"`` (Basic
            Pitch's note amplitude x 127).
        cache_max_mb: size cap of the transcription cache (MiB).

    All fields but ``max_duration_s`` and ``cache_max_mb`` choose the notes (and the cache key).
    """

    onset_threshold: float = 0.6
    frame_threshold: float = 0.4
    minimum_note_length_ms: float = 35.0
    minimum_frequency_hz: float | None = None
    maximum_frequency_hz: float | None = None
    infer_onsets: bool = False
    melodia_trick: bool = False
    max_duration_s: float = MAX_TRANSCRIBE_S
    cache_max_mb: float = 256.0
    velocity: str = "onset_energy"

    def __post_init__(self) -> None:
        if self.velocity not in VELOCITY_METHODS:
            raise ValueError(f"velocity must be one of {VELOCITY_METHODS}, got {self.velocity!r}")

    @classmethod
    def basic_pitch_defaults(cls) -> TranscriptionSettings:
        """Basic Pitch's own defaults (``basic_pitch.inference.predict``: 0.5, 0.3, 127.7 ms, Melodia)."""
        return cls(onset_threshold=0.5, frame_threshold=0.3, minimum_note_length_ms=127.70, infer_onsets=True,
                   melodia_trick=True, velocity="amplitude")

    def note_fields(self) -> dict[str, Any]:
        """The fields that choose the notes (the cache key's part)."""
        d = asdict(self)
        d.pop("max_duration_s")
        d.pop("cache_max_mb")
        return d


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """``import basic_pitch`` warns on the root logger about every missing backend (TF, CoreML,
    TFLite), which would also install a root handler (``logging.basicConfig``): hide both."""
    root = logging.getLogger()
    null = logging.NullHandler()
    added = not root.handlers
    if added:
        root.addHandler(null)
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)
        if added:
            root.removeHandler(null)


def _basic_pitch() -> Any:
    """The ``basic_pitch`` package (imported quietly). Raises ``ImportError`` with the install line."""
    try:
        with _quiet_root_logger():
            import basic_pitch
            import basic_pitch.inference  # noqa: F401
            import basic_pitch.note_creation  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"{_INSTALL_HINT} ({exc})") from exc
    return basic_pitch


def model_path() -> Path:
    """Path of Basic Pitch's ICASSP 2022 model as ONNX (``nmp.onnx`` inside the installed wheel).

    Raises:
        ImportError: basic-pitch is not installed (the message gives the install line).
        FileNotFoundError: the wheel has no ONNX model.
    """
    bp = _basic_pitch()
    path = Path(bp.build_icassp_2022_model_path(bp.FilenameSuffix.onnx))
    if not path.is_file():
        raise FileNotFoundError(f"basic-pitch's ONNX model is missing: {path}")
    return path


def unavailable_reason() -> str | None:
    """None when transcription can run here (basic-pitch and its ONNX model are installed), else
    the reason it cannot (the install line included): what callers that fall back to audio-only
    features report."""
    try:
        model_path()
    except (ImportError, FileNotFoundError) as exc:
        return str(exc)
    return None


@functools.lru_cache(maxsize=1)
def model_id() -> str:
    """``basic-pitch-{version}-icassp_2022-{sha256(nmp.onnx)[:16]}``: names the model in cache keys."""
    from importlib.metadata import version

    digest = file_sha256(model_path())[:16]
    return f"basic-pitch-{version('basic-pitch')}-icassp_2022-{digest}"


@functools.lru_cache(maxsize=4)
def _session(threads: int | None) -> Any:
    """onnxruntime session of ``nmp.onnx`` on the CPU (``threads``: intra- and inter-op threads;
    None: onnxruntime's default, one per physical core)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads is not None:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = int(threads)
    return ort.InferenceSession(str(model_path()), opts, providers=["CPUExecutionProvider"])


def posteriorgrams(samples: np.ndarray, threads: int | None = None) -> dict[str, np.ndarray]:
    """Basic Pitch's model outputs for mono audio at ``TRANSCRIBE_SAMPLE_RATE``.

    The audio is cut into windows of 43,844 samples (2 s less one hop) overlapping by 30 frames,
    run through ``nmp.onnx`` in batches and stitched back (``basic_pitch.inference``'s
    ``window_audio_file`` / ``unwrap_output``, the same windowing as its ``run_inference``).

    Args:
        samples: ``(n,)`` float mono at 22,050 Hz.
        threads: onnxruntime intra-/inter-op threads (None: its default).

    Returns:
        ``{"note": (frames, 88), "onset": (frames, 88), "contour": (frames, 264)}`` float32 in
        [0, 1]; frames at 22,050 / 256 Hz (Basic Pitch counts 86 per second), bins from A0
        (27.5 Hz), one per semitone (``contour``: three).

    Raises:
        ImportError: basic-pitch is not installed.
    """
    bp = _basic_pitch()
    from basic_pitch.constants import AUDIO_N_SAMPLES, FFT_HOP

    inference = bp.inference
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    overlap = _OVERLAP_FRAMES * FFT_HOP
    padded = np.concatenate([np.zeros(overlap // 2, dtype=np.float32), x])
    windows = [w[:, 0] for w, _ in inference.window_audio_file(padded, AUDIO_N_SAMPLES - overlap)]
    session = _session(threads)
    names = {"note": "StatefulPartitionedCall:1", "onset": "StatefulPartitionedCall:2",
             "contour": "StatefulPartitionedCall:0"}  # as basic_pitch.inference.Model.predict (ONNX)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in names}
    for k in range(0, len(windows), _BATCH_WINDOWS):
        batch = np.stack(windows[k:k + _BATCH_WINDOWS])[:, :, None]
        outs = session.run(list(names.values()), {"serving_default_input_2:0": batch})
        for name, out in zip(names, outs):
            parts[name].append(out)
    return {name: inference.unwrap_output(np.concatenate(v), x.shape[0], _OVERLAP_FRAMES)
            for name, v in parts.items()}


def notes_from_posteriorgrams(output: dict[str, np.ndarray],
                              settings: TranscriptionSettings | None = None) -> pretty_midi.PrettyMIDI:
    """Notes from ``posteriorgrams``' output by Basic Pitch's note creation
    (``basic_pitch.note_creation.model_output_to_notes``), as one piano (program 0), no pitch bends.

    Returns:
        ``pretty_midi.PrettyMIDI`` (times in s, velocity ``round(127 * amplitude)``; may hold no note).
    """
    _basic_pitch()
    from basic_pitch.constants import AUDIO_SAMPLE_RATE, FFT_HOP
    from basic_pitch.note_creation import model_output_to_notes

    s = settings or TranscriptionSettings()
    min_frames = int(np.round(s.minimum_note_length_ms / 1000 * (AUDIO_SAMPLE_RATE / FFT_HOP)))
    pm, _ = model_output_to_notes(output, onset_thresh=s.onset_threshold, frame_thresh=s.frame_threshold,
                                  infer_onsets=s.infer_onsets, min_note_len=min_frames,
                                  min_freq=s.minimum_frequency_hz, max_freq=s.maximum_frequency_hz,
                                  include_pitch_bends=False, melodia_trick=s.melodia_trick)
    for inst in pm.instruments:
        inst.program, inst.name, inst.is_drum = 0, "piano (transcribed: basic-pitch)", False
        inst.notes.sort(key=lambda n: (n.start, n.pitch))
    return pm


def onset_energy_velocities(samples: np.ndarray, notes: list[Any]) -> np.ndarray:
    """MIDI velocities of transcribed ``notes`` measured in the audio at their onsets.

    For each note, the constant-Q magnitude (``librosa.cqt``, 22,050 Hz, hop 256 = Basic Pitch's
    frames, one bin per semitone from A0) of the bin of its pitch: the largest rise over the 4
    frames (~46 ms) from the onset against the mean of the 3 frames before it (the spectral flux
    of that bin, after Bello et al., "A Tutorial on Onset Detection in Music Signals", IEEE TSAP
    2005), in dB re full scale, mapped linearly: ``velocity = clip(round(127 + 2.5 * dB), 1, 127)``.
    The slope is a fixed choice, not calibrated per instrument: chosen among 4 variants (peak or
    rise at the onset, dB at 2.5 per step or a 40-dB power law) by the Pearson r
    of the velocity statistics with the source's on 24 renderings (seeded choice), before any
    rating was predicted from them. Measured on those 24 FluidSynth
    renderings of PercePiano performances: Pearson r of the transcription's mean velocity with the
    source's 0.91 (Basic Pitch's amplitude: -0.49), of the velocity standard deviation 0.59 (0.33).
    A recording's level shifts every velocity alike (6 dB = 15 steps).

    Args:
        samples: ``(n,)`` float mono at ``TRANSCRIBE_SAMPLE_RATE``.
        notes: objects with ``start`` (s) and ``pitch`` (MIDI 21-108), e.g. ``pretty_midi.Note``.

    Returns:
        ``(len(notes),)`` int64 velocities in 1-127.
    """
    if not notes:
        return np.zeros(0, dtype=np.int64)
    import librosa

    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    # 100 semitone bins from A0 stay below Nyquist at 22,050 Hz (bin 99: 8.4 kHz)
    c = np.abs(librosa.cqt(x, sr=TRANSCRIBE_SAMPLE_RATE, hop_length=256, fmin=27.5, n_bins=100, bins_per_octave=12))
    frames = c.shape[1]
    out = np.empty(len(notes), dtype=np.int64)
    for i, n in enumerate(notes):
        b = int(np.clip(n.pitch - 21, 0, c.shape[0] - 1))
        t = int(np.clip(round(n.start * TRANSCRIBE_SAMPLE_RATE / 256), 0, frames - 1))
        after = c[b, t:t + _ONSET_AFTER_FRAMES].max()
        before = c[b, max(0, t - _ONSET_BEFORE_FRAMES):t].mean() if t > 0 else 0.0
        db = 20.0 * np.log10(max(after - before, 0.0) + 1e-5)
        out[i] = int(np.clip(round(127 + VELOCITY_PER_DB * db), 1, 127))
    return out


def set_velocities(pm: pretty_midi.PrettyMIDI, samples: np.ndarray,
                   settings: TranscriptionSettings | None = None) -> pretty_midi.PrettyMIDI:
    """Set the velocities of ``pm``'s notes as ``settings.velocity`` says (in place; returned):
    ``onset_energy`` from ``samples`` (``onset_energy_velocities``), ``amplitude`` as Basic Pitch
    made them.

    Args:
        pm: the transcription (``notes_from_posteriorgrams``); samples: the ``(n,)`` float mono
            audio it was transcribed from, at ``TRANSCRIBE_SAMPLE_RATE`` Hz (22,050).
        settings: default ``TranscriptionSettings()`` (``onset_energy``).

    Returns:
        ``pm``, velocities 1-127.
    """
    s = settings or TranscriptionSettings()
    if s.velocity == "onset_energy":
        for inst in pm.instruments:
            for n, v in zip(inst.notes, onset_energy_velocities(samples, inst.notes)):
                n.velocity = int(v)
    return pm


def cache_dir() -> Path:
    """``$ENO_TRANSCRIBE_CACHE``, else ``~/.eno/cache/transcription``."""
    base = os.environ.get("ENO_TRANSCRIBE_CACHE")
    return Path(base) if base else Path.home() / ".eno" / "cache" / "transcription"


def evict_transcriptions(cache: str | Path | None = None, max_bytes: int | None = None,
                         keep: Path | None = None) -> int:
    """Bound the transcription cache (``eno_hf.audio.midi.evict_lru`` over ``.mid`` files:
    temporaries older than an hour, then least recently used first); ``keep`` is never removed.
    Returns the bytes freed; never raises."""
    return evict_lru(Path(cache) if cache is not None else cache_dir(), ".mid", max_bytes, keep)


def _key(content: str, decode: dict[str, Any], settings: TranscriptionSettings) -> str:
    blob = json.dumps({"content": content, "decode": decode, "model": model_id(),
                       "notes": settings.note_fields(), "v": 1}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _count_notes(pm: pretty_midi.PrettyMIDI) -> int:
    return sum(len(i.notes) for i in pm.instruments)


def transcribe_to_file(source: str | Path | np.ndarray, sample_rate: int | None = None,
                       settings: TranscriptionSettings | None = None, *, audio_cfg: AudioConfig | None = None,
                       cache: str | Path | None = None, threads: int | None = None) -> Path:
    """Transcribe a recording (or samples) and return the cached Standard MIDI File of its notes.

    Args:
        source: an audio file (any format eno decodes; a MIDI file is rendered first) or ``(n,)``
            float mono samples at ``sample_rate`` Hz.
        sample_rate: rate of ``source`` samples (required for samples; ignored for files).
        settings: ``TranscriptionSettings`` (default: the tuned piano settings).
        audio_cfg: decoding thresholds and limits (``min_duration_s``, ``silence_threshold_dbfs``,
            ``max_duration_s``, ``resample_quality``, MIDI rendering); default ``AudioConfig()``.
        cache: cache folder (default ``cache_dir()``).
        threads: onnxruntime threads (None: its default).

    Returns:
        Path of ``{cache}/{key}.mid`` (times in s; see the module docstring).

    Raises:
        RejectedInput: the input's reason (``missing_file``, ``unsupported``, ``empty``,
            ``undecodable``, ``nan_inf``, ``too_short``, ``silent``, ``too_long``, ``io_error``);
            ``silent`` also when no note was transcribed.
        ImportError: basic-pitch is not installed.
        ValueError: samples without ``sample_rate``.
    """
    from eno_hf.config import AudioConfig

    s = settings or TranscriptionSettings()
    cfg = audio_cfg or AudioConfig()
    limit = min(float(s.max_duration_s), float(cfg.max_duration_s))
    folder = Path(cache) if cache is not None else cache_dir()
    decode = {"sample_rate": TRANSCRIBE_SAMPLE_RATE, "quality": cfg.resample_quality}
    if isinstance(source, np.ndarray):
        if not sample_rate:
            raise ValueError("transcribing samples needs their sample_rate")
        name = "<samples>"
        x = np.ascontiguousarray(source, dtype=np.float32).reshape(-1)
        from eno_hf.audio.validate import check_signal

        check_signal(x, int(sample_rate), cfg, path=name)
        if x.shape[0] / sample_rate > limit:
            raise RejectedInput(name, "too_long", f"{x.shape[0] / sample_rate:.1f} s > max_duration_s={limit}")
        content = hashlib.sha256(x.tobytes() + str(int(sample_rate)).encode()).hexdigest()
    else:
        from eno_hf.audio.io import audio_info, content_hash
        from eno_hf.audio.validate import check_file

        path = Path(source)
        name = str(source)
        with rejected_as(name):
            check_file(path, check_suffix=True)
            info = audio_info(path)  # measured before anything is decoded or transcribed
            content = content_hash(path)
        if info.duration_s > limit:
            raise RejectedInput(name, "too_long", f"{info.duration_s:.1f} s > max_duration_s={limit}")
        if midi.is_midi(path):
            decode["midi"] = cfg.midi.model_dump()
    out = folder / f"{_key(content, decode, s)}.mid"
    if lru_hit(out, min_bytes=14):  # more than a MIDI header chunk
        return out
    if isinstance(source, np.ndarray):
        import soxr

        x22 = x if int(sample_rate) == TRANSCRIBE_SAMPLE_RATE else \
            soxr.resample(x, int(sample_rate), TRANSCRIBE_SAMPLE_RATE, quality=cfg.resample_quality)
    else:
        from eno_hf.audio.validate import Limits, validate_audio

        x22 = validate_audio(path, cfg=cfg, sample_rate=TRANSCRIBE_SAMPLE_RATE,
                             limits=Limits(max_duration_s=limit)).samples
    pm = set_velocities(notes_from_posteriorgrams(posteriorgrams(x22, threads), s), x22, s)
    n = _count_notes(pm)
    if n == 0:
        raise RejectedInput(name, "silent", f"no note transcribed (onset_threshold={s.onset_threshold}, "
                                            f"frame_threshold={s.frame_threshold})")
    atomic_write(out, pm.write)
    _log.debug("transcribed %s: %d notes -> %s", name, n, out)
    evict_transcriptions(folder, int(s.cache_max_mb * 2**20), keep=out)
    return out


def transcribe(source: str | Path | np.ndarray, sample_rate: int | None = None,
               settings: TranscriptionSettings | None = None, *, audio_cfg: AudioConfig | None = None,
               cache: str | Path | None = None, threads: int | None = None) -> pretty_midi.PrettyMIDI:
    """Transcribe a piano recording (or samples) to notes: ``transcribe_to_file`` read back.

    Returns:
        ``pretty_midi.PrettyMIDI`` with one piano instrument holding at least one note
        (``start``/``end`` in s, ``pitch`` MIDI 21-108, ``velocity`` 1-127); no pedal, no bends.

    Raises:
        RejectedInput, ImportError, ValueError: see ``transcribe_to_file``.
    """
    import pretty_midi

    path = transcribe_to_file(source, sample_rate, settings, audio_cfg=audio_cfg, cache=cache, threads=threads)
    return pretty_midi.PrettyMIDI(str(path))
