"""audio.validate: confinement, file checks, signal checks, the bytes API and decoder notes."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from eno_hf.audio.io import decoder_notes, load_audio
from eno_hf.audio.validate import Limits, check_file, confine, validate_audio
from eno_hf.config import AudioConfig
from eno_hf.errors import RejectedInput

SR = 16_000


def wav_bytes(x: np.ndarray, sr: int = SR, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x.astype(np.float32), sr, format="WAV", subtype=subtype)
    return buf.getvalue()


def tone(seconds: float = 2.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return 0.3 * np.sin(2 * np.pi * 440 * t)


def test_confine_inside_outside_and_symlinks(tmp_path: Path) -> None:
    root, out = tmp_path / "root", tmp_path / "out"
    (root / "a").mkdir(parents=True)
    out.mkdir()
    (out / "s.wav").write_bytes(b"x")
    assert confine("a/x.wav", [root]) == root / "a" / "x.wav"
    assert confine("a/../a/x.wav", [root]) == root / "a/../a/x.wav"  # lexical path kept
    with pytest.raises(RejectedInput) as err:
        confine("../out/s.wav", [root])
    assert err.value.reason == "outside_root" and err.value.path == str((out / "s.wav").resolve())
    with pytest.raises(RejectedInput):
        confine(out / "s.wav", [root])  # absolute, not allowed
    assert confine(out / "s.wav", [root, out]) == out / "s.wav"  # allowed root
    (root / "link.wav").symlink_to(out / "s.wav")
    with pytest.raises(RejectedInput) as err:
        confine(root / "link.wav", [root])
    assert err.value.path == str((out / "s.wav").resolve())
    with pytest.raises(RejectedInput):
        confine("x.wav", [])


def test_check_file_reasons(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "d.mp3").mkdir()
    (tmp_path / "e.wav").write_bytes(b"")
    (tmp_path / "n.txt").write_text("x")
    (tmp_path / "ok.wav").write_bytes(wav_bytes(tone()))
    cases = {"missing.wav": "missing_file", "d.mp3": "unsupported", "e.wav": "empty",
             "n.txt": "unsupported"}
    for name, reason in cases.items():
        with pytest.raises(RejectedInput) as err:
            check_file(tmp_path / name, check_suffix=True)
        assert err.value.reason == reason, name
    assert check_file(tmp_path / "ok.wav") == tmp_path / "ok.wav"
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p).endswith("ok.wav")
                        else real_access(p, mode))
    with pytest.raises(RejectedInput) as err:
        check_file(tmp_path / "ok.wav")
    assert err.value.reason == "io_error" and "permission denied" in err.value.detail
    with pytest.raises(RejectedInput) as err:  # load_audio goes through the same check
        load_audio(tmp_path / "ok.wav")
    assert err.value.reason == "io_error"


def test_validate_bytes_and_paths_same_reasons(tmp_path: Path) -> None:
    good = wav_bytes(tone())
    v = validate_audio(good, filename="song.wav", sample_rate=SR)
    assert v.samples.dtype == np.float32 and v.samples.ndim == 1 and v.sample_rate == SR
    assert v.info.duration_s == pytest.approx(2.0, abs=0.01) and v.path == "song.wav"
    assert np.isfinite(v.loudness_lufs)
    nan = tone()
    nan[3] = np.nan
    cases = {
        "empty": (b"", "a.wav"),
        "unsupported": (good, "a.txt"),
        "undecodable": (b"\x89PNG\r\n\x1a\n" + b"\x00" * 500, "a.wav"),
        "silent": (wav_bytes(np.zeros(2 * SR)), "a.wav"),
        "too_short": (wav_bytes(tone(0.05)), "a.wav"),
        "nan_inf": (wav_bytes(nan, subtype="FLOAT"), "a.wav"),
    }
    for reason, (data, name) in cases.items():
        with pytest.raises(RejectedInput) as from_bytes:
            validate_audio(data, filename=name, sample_rate=SR)
        assert from_bytes.value.reason == reason and from_bytes.value.path == name
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(RejectedInput) as from_path:
            validate_audio(path, sample_rate=SR)
        assert from_path.value.reason == reason
        if reason not in ("undecodable", "empty"):  # decoder details name the temporary file
            assert from_path.value.detail == from_bytes.value.detail
    # thresholds come from AudioConfig, as in the build
    short = validate_audio(wav_bytes(tone(0.5)), filename="s.wav",
                           cfg=AudioConfig(min_duration_s=0.25))
    assert short.info.duration_s == pytest.approx(0.5, abs=0.01)
    with pytest.raises(RejectedInput) as err:
        validate_audio(tmp_path / "x.wav", roots=[tmp_path / "elsewhere"])
    assert err.value.reason == "outside_root"


def test_mpg123_notes_go_to_detail_not_stderr(tmp_path: Path, fourq_clips, capfd) -> None:
    raw = fourq_clips[0].read_bytes()
    rng = np.random.default_rng(0)
    # junk mpg123 resyncs over (< 1024 bytes): decodes, with notes
    resync = tmp_path / "resync.mp3"
    resync.write_bytes(raw[:20000] + bytes(rng.integers(0, 256, 300, dtype=np.uint8))
                       + raw[20000:80000])
    # junk it gives up on: nothing decodes
    garbled = tmp_path / "garbled.mp3"
    garbled.write_bytes(raw[:20000] + bytes(rng.integers(0, 256, 4000, dtype=np.uint8))
                        + raw[20000:60000])
    capfd.readouterr()
    with decoder_notes() as notes:
        samples, sr = load_audio(resync, sample_rate=SR)
    assert samples.size > SR and any("Illegal Audio-MPEG-Header" in n for n in notes), notes
    v = validate_audio(resync, sample_rate=SR)
    assert any("Illegal Audio-MPEG-Header" in w for w in v.warnings)
    with pytest.raises(RejectedInput) as err:
        validate_audio(garbled, sample_rate=SR)
    assert err.value.reason == "undecodable" and "Illegal Audio-MPEG-Header" in err.value.detail
    # no raw decoder line leaked to the terminal (an INFO log line naming the file may, when an
    # earlier test left eno's CLI logging set up)
    leaked = [line for line in capfd.readouterr().err.splitlines() if "MPEG" in line
              and "decoder notes:" not in line]
    assert not leaked


def test_service_limits() -> None:
    stereo = np.stack([tone(3.0), tone(3.0)], axis=1)
    data = wav_bytes(stereo)
    ok = validate_audio(data, filename="s.wav", limits=Limits(max_duration_s=5, max_channels=2))
    assert ok.info.channels == 2
    for limits, reason in ((Limits(max_duration_s=2.0), "too_long"),
                           (Limits(max_channels=1), "unsupported_format"),
                           (Limits(max_sample_rate_hz=8000), "unsupported_format")):
        with pytest.raises(RejectedInput) as err:
            validate_audio(data, filename="s.wav", limits=limits)
        assert err.value.reason == reason and err.value.path == "s.wav"


def test_scan_audio_gives_the_reasons_and_messages_of_validate_audio(tmp_path: Path) -> None:
    from eno_hf.audio.validate import scan_audio

    nan = tone()
    nan[3] = np.nan
    loud_then_quiet = np.concatenate([tone(1.0), 1e-5 * tone(3.0)])
    cases = {"empty": b"", "undecodable": b"\x89PNG\r\n\x1a\n" + b"\x00" * 500,
             "silent": wav_bytes(np.zeros(2 * SR)), "too_short": wav_bytes(tone(0.05)),
             "nan_inf": wav_bytes(nan, subtype="FLOAT"), "ok": wav_bytes(loud_then_quiet)}
    cfg = AudioConfig(block_s=0.7)  # several blocks per file
    for name, data in cases.items():
        path = tmp_path / f"{name}.wav"
        path.write_bytes(data)
        try:
            whole = validate_audio(path, cfg=cfg, sample_rate=SR)
        except RejectedInput as exc:
            with pytest.raises(RejectedInput) as streamed:
                scan_audio(path, cfg, sample_rate=SR)
            assert (streamed.value.reason, streamed.value.path) == (exc.reason, exc.path) == \
                (name, str(path))
            if name != "undecodable":
                assert streamed.value.detail == exc.detail
            continue
        scanned = scan_audio(path, cfg, sample_rate=SR)
        assert scanned.loudness_lufs == whole.loudness_lufs  # streamed BS.1770 == pyloudnorm
        assert np.array_equal(scanned.samples, whole.samples)
        assert np.array_equal(np.concatenate(list(scan_audio(path, cfg, keep_s=1.0).blocks())),
                              whole.samples)  # not kept: decoded again, same samples


def test_signal_stats_loudness_equals_pyloudnorm_on_real_audio(fourq_clips) -> None:
    from eno_hf.audio.conditioning import integrated_loudness
    from eno_hf.audio.validate import SignalStats

    y, sr = load_audio(fourq_clips[0], sample_rate=SR)
    for block in (4801, 16_000 * 7):
        stats = SignalStats(sr)
        for i in range(0, y.shape[0], block):
            stats.add(y[i:i + block])
        assert stats.integrated_loudness() == integrated_loudness(y, sr)
        assert stats.peak == float(np.abs(y).max()) and stats.n == y.shape[0]


def test_decoding_stops_at_max_duration(tmp_path: Path) -> None:
    from eno_hf.audio.validate import scan_audio

    path = tmp_path / "six.wav"
    path.write_bytes(wav_bytes(tone(6.0)))
    for fn in (lambda: validate_audio(path, cfg=AudioConfig(max_duration_s=5.0)),
               lambda: scan_audio(path, AudioConfig(max_duration_s=5.0, block_s=1.0))):
        with pytest.raises(RejectedInput) as err:
            fn()
        assert err.value.reason == "too_long" and "max_duration_s=5" in err.value.detail
    # a service limit below the config's applies too
    with pytest.raises(RejectedInput, match="too_long"):
        scan_audio(path, AudioConfig(), limits=Limits(max_duration_s=3.0))
