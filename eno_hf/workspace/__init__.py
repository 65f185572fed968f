"""Dataset workspaces for MIDI and audio: a folder per dataset with a validated
manifest, built step by step (create → import → annotate → extract → augment → synthesize →
validate → split) into a versioned eno dataset. Import the submodules directly; this package
imports nothing heavy so ``eno_hf.config`` can use ``eno_hf.workspace.config``.
"""
