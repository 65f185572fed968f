"""eno: turn a music collection into trained, served audio models.

Importing ``eno_hf`` sets offline defaults (``eno_hf.env``) and arranges the registration of
eno's model classes with transformers' Auto classes, so ``pipeline("audio-classification",
model=<dir>)`` and ``AutoModel.from_pretrained(<dir>)`` load eno models. It imports neither
torch nor transformers: the classes are registered the first time an Auto class loads something
(:mod:`eno_hf.models.auto_register`).
"""

from eno_hf.env import apply_offline_defaults
from eno_hf.models import auto_register as _auto_register

apply_offline_defaults()

__version__ = "0.1.0"


def _register() -> None:
    _auto_register.install()


_register()
