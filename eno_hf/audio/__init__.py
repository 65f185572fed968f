"""Audio decoding (``io``), conditioning (``conditioning``), segmentation (``segment``) and
training-time augmentation (``augment``). Import the submodules directly."""
