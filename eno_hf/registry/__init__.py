"""Model registry: the local hub folder (``hub``) and ClearML experiment tracking (``clearml``).

- ``register.register_model(settings, model_dir, ...) -> Registration``: card + hub + ClearML (the one
  register function);
- ``hub.register(model_dir, hub_dir, name, metadata) -> version_dir``, ``hub.resolve(spec, hub_dir)``,
  ``hub.list_models(hub_dir)``;
- ``clearml.Tracker`` / ``NullTracker`` / ``make_tracker``, ``clearml.ClearMLCallback``.

Submodules are imported explicitly so that importing this package does not load ClearML.
"""
