"""eno: turn a music collection into trained, served audio models.

Importing ``eno_hf`` sets offline defaults (``eno_hf.env``) and registers eno's model classes
with transformers' Auto classes, so ``pipeline("audio-classification", model=<dir>)`` loads
eno models.
"""

from eno_hf.env import apply_offline_defaults

apply_offline_defaults()

__version__ = "0.1.0"


def _register() -> None:
    try:
        from eno_hf.models import register_auto_classes
    except ImportError:  # models package not built yet / optional deps missing
        return
    register_auto_classes()


_register()
