"""``decode_upload``: every bad upload gets its reason code; good audio decodes."""

from __future__ import annotations

import numpy as np
import pytest
from serving_uploads import LIMITS, SR, bad_uploads, noise, wav_bytes

from eno_hf.errors import RejectedInput
from eno_hf.serving.config import ServeConfig
from eno_hf.serving.decode import REASON_STATUS, check_content_type, decode_upload, http_status

CFG = ServeConfig(**LIMITS)


@pytest.mark.parametrize("case", sorted(bad_uploads()))
def test_bad_upload_reason(case):
    name, data, ctype, reason = bad_uploads()[case]
    with pytest.raises(RejectedInput) as info:
        decode_upload(data, name, SR, CFG, content_type=ctype)
    assert info.value.reason == reason, info.value
    assert info.value.path == name  # errors name the client's file, never a server path
    assert "eno-upload-" not in str(info.value)
    assert 400 <= http_status(reason) < 500


def test_truncated_real_mp3(fourq_clips):
    data = fourq_clips[0].read_bytes()
    name, cut, ctype, reason = bad_uploads(data)["truncated_mp3"]
    with pytest.raises(RejectedInput) as info:
        decode_upload(cut, name, SR, CFG, content_type=ctype)
    assert info.value.reason == reason
    # cut in the middle: mpg123 stops quietly at the cut, so the first half is tagged
    half = decode_upload(data[: len(data) // 2], "half.mp3", SR, CFG, content_type="audio/mpeg")
    assert 5.0 < half.size / SR < 25.0


def test_good_wav_resampled_and_mixed_down():
    stereo = np.stack([noise(3.0, 1, 44_100), noise(3.0, 2, 44_100)], axis=1)
    out = decode_upload(wav_bytes(stereo, 44_100), "s.wav", SR, CFG, content_type="audio/x-wav")
    assert out.dtype == np.float32 and out.ndim == 1 and abs(out.size - 3 * SR) <= 2


def test_extension_is_not_trusted_for_paths(tmp_path):
    """A file name with directories is only a label; nothing outside our temp file is read."""
    secret = tmp_path / "secret.wav"
    secret.write_bytes(wav_bytes(noise(2.0, 1)))
    with pytest.raises(RejectedInput) as info:
        decode_upload(b"not audio at all" * 64, str(secret), SR, CFG)
    assert info.value.reason == "undecodable"


@pytest.mark.parametrize("ctype", [None, "", "audio/mpeg", "audio/wav; charset=binary", "application/octet-stream",
                                   "audio/midi", "video/mp4"])
def test_content_types_accepted(ctype):
    check_content_type(ctype, "x")


@pytest.mark.parametrize("ctype", ["text/plain", "image/png", "application/json", "text/html"])
def test_content_types_refused(ctype):
    with pytest.raises(RejectedInput) as info:
        check_content_type(ctype, "x")
    assert info.value.reason == "unsupported_media_type" and REASON_STATUS[info.value.reason] == 415


@pytest.mark.parametrize("duration_s", [0.8, 1.2])
def test_default_limits_match_the_build(tmp_path, duration_s):
    """With default settings, the service and the build/tag validator take or refuse the same short
    clip for the same reason (one minimum duration, one silence threshold)."""
    from eno_hf.audio.validate import validate_audio
    from eno_hf.config import AudioConfig

    assert ServeConfig().min_duration_s == AudioConfig().min_duration_s
    data = wav_bytes(noise(duration_s, 3, SR), SR)

    def outcome(fn):
        try:
            fn()
        except RejectedInput as exc:
            return exc.reason
        return "ok"

    served = outcome(lambda: decode_upload(data, "c.wav", SR, ServeConfig(), content_type="audio/x-wav"))
    built = outcome(lambda: validate_audio(data, filename="c.wav", cfg=AudioConfig(), sample_rate=SR))
    assert served == built == ("too_short" if duration_s < 1.0 else "ok")
