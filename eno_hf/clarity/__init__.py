"""Mix-clarity models: gold/flawed stems -> -18 LUFS -> 64-d fingerprints -> flaw + correction models.

Modules (one concept each): ``config`` (pydantic settings), ``names`` (file-name pattern), ``source``
(layout scan, manifest, validation), ``gold`` (real gold audio: Hydrogen drum samples, MIDI rendered
with FluidSynth), ``generate`` (pedalboard flaws with exact correction labels), ``normalize``
(loudness log + verify), ``features`` (CSV/Parquet + metadata), ``analyze`` (report + plots),
``models`` (training, grouped CV, registration), ``onnx`` (skl2onnx export + parity), ``pipeline``
(the cached steps), ``cli`` (``eno clarity``).
"""
