"""eno_hf.errors.rejected_as: rejections and OS errors named after the input as the caller knows it."""

from __future__ import annotations

import pytest

from eno_hf.errors import AudioDecodeError, RejectedInput, rejected_as


def test_rejected_as_renames_rejections_and_os_errors():
    with pytest.raises(RejectedInput) as err:
        with rejected_as("upload.wav"):
            raise AudioDecodeError("/tmp/eno-upload-x/a.wav", "truncated", reason="undecodable")
    assert err.value.to_dict() == {"path": "upload.wav", "reason": "undecodable", "detail": "truncated"}
    assert isinstance(err.value.__cause__, AudioDecodeError)
    with pytest.raises(RejectedInput) as err:
        with rejected_as("song.mp3"):
            raise PermissionError(13, "Permission denied")
    assert (err.value.path, err.value.reason) == ("song.mp3", "io_error")
    assert err.value.detail.startswith("PermissionError: ")


def test_rejected_as_lets_other_errors_and_success_through():
    with rejected_as("x.wav"):
        value = 1
    assert value == 1
    with pytest.raises(KeyError):
        with rejected_as("x.wav"):
            raise KeyError("bug")
