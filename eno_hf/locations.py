"""Where eno finds things outside the data root: its example material and pretrained weights.

Light on purpose (stdlib only): ``eno_hf.config`` imports it, and ``eno config`` must not import torch.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_models_dir", "shared_dir", "shared_path"]

_PACKAGE_DIR = Path(__file__).resolve().parent


def shared_dir() -> Path | None:
    """eno's example material (``data/``, ``models/``): ``$ENO_SHARED_DIR``, else the ``shared/``
    folder beside a source checkout, else None (an installed wheel with no variable set)."""
    env = os.environ.get("ENO_SHARED_DIR")
    if env:
        return Path(env).expanduser()
    root = _PACKAGE_DIR.parent
    if (root / "pyproject.toml").is_file() and (root.parent / "shared").is_dir():
        return root.parent / "shared"
    return None


def shared_path(rel: str) -> Path:
    """``{shared_dir()}/{rel}``, or ``shared/{rel}`` under the current directory when no shared
    folder is known (the error then names that path when it is opened)."""
    base = shared_dir()
    return (base if base is not None else Path("shared")) / rel


def default_models_dir() -> Path:
    """``$ENO_MODELS_DIR``, else ``{shared_dir()}/models`` when it exists, else ``~/.eno/models``."""
    env = os.environ.get("ENO_MODELS_DIR")
    if env:
        return Path(env).expanduser()
    shared = shared_dir()
    if shared is not None and (shared / "models").is_dir():
        return shared / "models"
    return Path.home() / ".eno" / "models"
