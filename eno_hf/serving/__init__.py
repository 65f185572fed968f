"""Serving eno models over HTTP (``eno serve``) and through ClearML Serving.

Modules: ``config`` (``ServeConfig``, the ``serve:`` section of ``Settings``), ``decode`` (upload
bytes -> mono waveform or ``RejectedInput``; the one place uploads are decoded and the one table
mapping rejection reasons to HTTP statuses), ``predictor`` (a loaded PyTorch or ONNX model that
tags a batch of waveforms with ``eno_hf.inference.pipeline``), ``batching`` (dynamic batching across
concurrent requests on one inference thread), ``app`` (the FastAPI application), ``clearml_preprocess``
(the ``Preprocess`` class for ClearML Serving's custom engine), ``cli`` (``eno serve``, ``eno export-onnx``).

This package imports nothing heavy at import time (``eno_hf.config`` imports ``serving.config``).
"""
