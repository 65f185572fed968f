"""Small shared helpers: atomic file writes, JSON hashing and JSON sanitising (``eno_hf.utils.io``)."""
