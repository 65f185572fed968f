"""ClearML Serving custom-engine module for eno models (``clearml-serving model add --engine custom``).

ClearML Serving imports this file, builds ``Preprocess()`` once, calls ``load(local_file_name)``
with the local copy of the registered model, then per request ``preprocess(body, state, fn)`` ->
``process(data, state, fn)`` -> ``postprocess(data, state, fn)``; the returned dict is the REST
answer (interface of ``examples/custom/preprocess.py`` in github.com/allegroai/clearml-serving).
The serving container needs ``eno_hf`` installed (``CLEARML_EXTRA_PYTHON_PACKAGES``), see
``docs/serving.md``.

Request body: the raw bytes of an audio or MIDI file (any non-JSON body), or JSON
``{"audio_base64": "...", "filename": "song.mp3"}``. The answer has the same ``heads`` / ``tags``
as ``POST /predict`` of ``eno serve`` (same decoder ``decode_upload``, same ``TorchPredictor``);
a bad input answers ``{"error": {"reason", "detail", "file"}}`` (ClearML Serving returns
processing errors as HTTP 422 with the message).
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from typing import Any, Callable, Optional

from eno_hf.errors import RejectedInput

MODEL_DIR_ENV = "ENO_MODEL_DIR"
"""If set, the model directory to load (overrides ``load``'s argument: e.g. a mounted hub version)."""


def model_dir_from(local_file_name: str | os.PathLike) -> Path:
    """The eno model directory for ClearML's local model copy: the path itself if it is a directory
    with ``config.json``, else the folder of a file inside one (``model.safetensors``).

    Raises:
        FileNotFoundError: no ``config.json`` there.
    """
    path = Path(os.environ.get(MODEL_DIR_ENV) or local_file_name)
    for candidate in (path, path.parent):
        if candidate.is_dir() and (candidate / "config.json").is_file():
            return candidate
    raise FileNotFoundError(f"{path}: not an eno model directory (no config.json); register the whole "
                            f"model folder as the ClearML model package or set {MODEL_DIR_ENV}")


class Preprocess:
    """eno tagging behind ClearML Serving (class name required by ClearML Serving).

    Thread-safety: ClearML may call from several threads; the predictor serializes model calls.
    """

    def __init__(self) -> None:
        self._predictor = None
        self._info: dict[str, Any] = {}
        self.limits = None

    def load(self, local_file_name: str) -> Optional[Any]:
        """Load the model (a saved eno model directory, or a file inside one) once."""
        from eno_hf.serving.config import ServeConfig
        from eno_hf.serving.predictor import TorchPredictor

        self._predictor = TorchPredictor(model_dir_from(local_file_name))
        self.limits = ServeConfig()
        self._info = self._predictor.info()
        return self._predictor

    def preprocess(self, body: Any, state: dict, collect_custom_statistics_fn: Optional[Callable] = None) -> Any:
        """Request body -> mono waveform at the model rate, or the rejection (answered by ``postprocess``)."""
        from eno_hf.serving.decode import decode_upload

        if self._predictor is None:
            raise RuntimeError("Preprocess.load() was not called")
        filename = "upload"
        if isinstance(body, dict):
            filename = str(body.get("filename") or filename)
            try:
                data = base64.b64decode(body.get("audio_base64") or "", validate=True)
            except (binascii.Error, ValueError, TypeError):
                return RejectedInput(filename, "bad_request", "audio_base64 is not valid base64")
        elif isinstance(body, (bytes, bytearray, memoryview)):
            data = bytes(body)
        else:
            return RejectedInput(filename, "bad_request", f"unsupported body type {type(body).__name__}")
        state["filename"] = filename
        try:
            return decode_upload(data, filename, self._predictor.sample_rate, self.limits)
        except RejectedInput as exc:
            return exc

    def process(self, data: Any, state: dict, collect_custom_statistics_fn: Optional[Callable] = None) -> Any:
        """Waveform -> per-head scores (``TorchPredictor.predict``); a rejection passes through."""
        if isinstance(data, RejectedInput):
            return data
        scores = self._predictor.predict([data])[0]
        state["duration_s"] = round(len(data) / self._predictor.sample_rate, 3)
        return scores

    def postprocess(self, data: Any, state: dict, collect_custom_statistics_fn: Optional[Callable] = None) -> dict:
        """Scores -> ``{"file", "model", "duration_s", "heads", "tags"}`` (or ``{"error": ...}``)."""
        if isinstance(data, RejectedInput):
            return {"error": {"reason": data.reason, "detail": data.detail, "file": data.path}}
        info = self._info
        tags = self._predictor.tags(data)
        if collect_custom_statistics_fn:
            collect_custom_statistics_fn({f"n_tags_{h}": len(v) for h, v in tags.items()})
        return {"file": state.get("filename"), "model": {"name": info["name"], "version": info.get("version"),
                                                         "backend": "clearml-serving"},
                "duration_s": state.get("duration_s"), "heads": data, "tags": tags}
