"""Frame embeddings of audio/MIDI (``eno embed``), their stores and dataset companions."""
