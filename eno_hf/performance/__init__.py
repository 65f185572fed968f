"""Performance evaluation of piano recordings and MIDI: PercePiano ratings, tiers, probes, models."""
