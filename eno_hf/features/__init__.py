"""Per-segment features: log-mel/MFCC (``spectral``) and the 64-d descriptor (``fingerprint``).
Import the submodules directly."""
