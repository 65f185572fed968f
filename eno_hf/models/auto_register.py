"""Register eno's model classes with transformers' Auto classes without importing torch up front.

``import eno_hf`` calls :func:`install`. Registering needs ``eno_hf.models.modeling`` (torch and
transformers' modeling code, several seconds of imports), which the command line, the config
loader and most data code never need. So registration is deferred to the first time an Auto
class is *used*: when transformers' ``configuration_auto``, ``auto_factory`` or
``feature_extraction_auto`` module is imported, its loading entry points
(``AutoConfig.from_pretrained`` / ``for_model``, ``AutoModel*.from_pretrained`` / ``from_config``,
``AutoFeatureExtractor.from_pretrained``) are wrapped so that they call
:func:`eno_hf.models.register_auto_classes` once before doing their work. Hence, after
``import eno_hf``::

    from transformers import pipeline
    pipeline("audio-classification", model="path/to/eno-model")   # loads EnoForAudioTagging

works as before, while ``import eno_hf`` itself imports neither torch nor transformers.

Registration happens at call time, never inside an import, so it cannot meet a half-imported
module. If transformers' auto modules are already imported when :func:`install` runs, the
classes are registered at once.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import logging
import sys
import threading
from collections.abc import Callable
from types import ModuleType

log = logging.getLogger(__name__)

__all__ = ["install", "ensure_registered"]

_lock = threading.RLock()
_registered = False
_in_progress = False

_MARK = "__eno_registers__"


def ensure_registered() -> None:
    """Run :func:`eno_hf.models.register_auto_classes` once (thread-safe, re-entrancy-safe).

    An ImportError (e.g. torch missing) is logged at DEBUG and retried on the next call; the Auto
    class then fails with transformers' own "unrecognized model" error.
    """
    global _registered, _in_progress
    if _registered:
        return
    with _lock:  # other threads wait here until registration is done
        if _registered or _in_progress:  # done, or re-entered by this thread while registering
            return
        _in_progress = True
        try:
            from eno_hf.models import register_auto_classes

            register_auto_classes()
            _registered = True
        except ImportError as exc:  # pragma: no cover - only without the model dependencies
            log.debug("eno model classes not registered with transformers: %s", exc)
        finally:
            _in_progress = False


def _wrap_classmethod(cls: type, name: str) -> None:
    """Replace ``cls.name`` (a classmethod) by one that calls :func:`ensure_registered` first."""
    raw = cls.__dict__.get(name)
    if raw is None or getattr(raw, _MARK, False):
        return
    func = raw.__func__ if isinstance(raw, classmethod) else raw

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        ensure_registered()
        return func(*args, **kwargs)

    setattr(wrapper, _MARK, True)
    new = classmethod(wrapper) if isinstance(raw, classmethod) else staticmethod(wrapper)
    setattr(new, _MARK, True)
    setattr(cls, name, new)


def _patch_configuration_auto(mod: ModuleType) -> None:
    for name in ("from_pretrained", "for_model"):
        _wrap_classmethod(mod.AutoConfig, name)


def _patch_auto_factory(mod: ModuleType) -> None:
    for name in ("from_pretrained", "from_config"):
        _wrap_classmethod(mod._BaseAutoModelClass, name)


def _patch_feature_extraction_auto(mod: ModuleType) -> None:
    _wrap_classmethod(mod.AutoFeatureExtractor, "from_pretrained")


_PATCHES: dict[str, Callable[[ModuleType], None]] = {
    "transformers.models.auto.configuration_auto": _patch_configuration_auto,
    "transformers.models.auto.auto_factory": _patch_auto_factory,
    "transformers.models.auto.feature_extraction_auto": _patch_feature_extraction_auto,
}


def _apply(name: str, module: ModuleType) -> None:
    try:
        _PATCHES[name](module)
    except Exception as exc:  # pragma: no cover - a transformers layout this code does not know
        log.debug("could not hook %s for eno's Auto-class registration: %s", name, exc)


class _Loader(importlib.abc.Loader):
    """Delegates to the real loader, then applies the patch of the module it just executed."""

    def __init__(self, inner: importlib.abc.Loader, name: str) -> None:
        self._inner = inner
        self._name = name

    def create_module(self, spec):
        return self._inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._inner.exec_module(module)
        _apply(self._name, module)

    def __getattr__(self, attr: str):  # get_source, get_filename, is_package, ... for inspect/linecache
        return getattr(self._inner, attr)


class _Finder(importlib.abc.MetaPathFinder):
    """A ``sys.meta_path`` entry that only answers for the three transformers modules above."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in _PATCHES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader, fullname)
                return spec
        return None


_finder = _Finder()


def install() -> None:
    """Arrange for eno's Auto-class registration (idempotent; imports nothing heavy).

    When transformers' auto modules are already imported (torch and transformers are then paid
    for), the classes are registered now: the ``AutoModel*`` classes hold their own copies of
    ``from_pretrained``, made when ``modeling_auto`` was imported, which a later wrap would miss.
    Otherwise a ``sys.meta_path`` finder wraps the entry points when the modules are imported.
    """
    if any(name in sys.modules for name in _PATCHES):
        ensure_registered()
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _finder)
