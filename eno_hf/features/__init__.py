"""Per-segment features: log-mel/MFCC (``spectral``) and the 64-d descriptor (``fingerprint``).
Import the submodules directly."""

FEATURE_DEFINITIONS_VERSION = 3
"""Bumped whenever a feature's values change for the same settings (2: fingerprint chroma with
``tuning=0.0``; 3: fingerprint back on the librosa feature functions, loudness on pyloudnorm). ``eno_hf.data.build`` puts it in per-file cache
names and dataset versions, so values computed by older code are never reused."""
