"""Where pretrained weights are found: one lookup for every tagger loader.

The models folder is ``paths.models_dir`` in a config, else the environment variable
``ENO_MODELS_DIR``, else ``$ENO_SHARED_DIR/models`` (eno's example material; by default the
``shared/`` folder beside a source checkout), else ``~/.eno/models``. Published weights keep the
layout they ship in, one sub-folder per family::

    {models_dir}/sota-music-tagging/msd-fcn.safetensors       (Won et al. 2020)
    {models_dir}/sota-music-tagging/tags/msd-50.txt
    {models_dir}/musicnn/msd-musicnn.safetensors              (Pons & Serra 2019)

A file is looked up in ``{folder}/{family}/{name}`` and ``{folder}/{name}``, so a folder that holds
the files directly works too. A missing file raises :class:`WeightsNotFoundError`, whose message
names the file and every place looked.

Before a saved model directory is loaded, ``require_safetensors`` checks that its weights are
safetensors: eno never unpickles a model file (``PickleWeightsError``), whoever loads it
(evaluation, inference, the hub).
"""

from __future__ import annotations

from pathlib import Path

from eno_hf.locations import default_models_dir

__all__ = ["PICKLE_WEIGHTS", "PickleWeightsError", "WeightsNotFoundError", "find_weight_file", "require_safetensors",
           "resolve_safetensors"]


class WeightsNotFoundError(FileNotFoundError):
    """A pretrained weight file is missing; ``str()`` is one line naming it and every place looked.

    Attributes:
        name: the file looked for (e.g. ``msd-fcn.safetensors``).
        looked: the full paths tried, in order.
    """

    def __init__(self, name: str, looked: list[Path]):
        self.name = name
        self.looked = list(looked)
        super().__init__(
            f"pretrained weights {name!r} not found; looked in: {', '.join(str(p) for p in looked)} "
            "(set paths.models_dir in the config or the ENO_MODELS_DIR environment variable)")


def find_weight_file(name: str | Path, family: str, models_dir: str | Path | None = None) -> Path:
    """The path of weight (or tag-list) file ``name`` of ``family``.

    Args:
        name: a file name relative to the family folder (``"msd-fcn.safetensors"``,
            ``"tags/msd-50.txt"``).
        family: the sub-folder the weights ship in (``"sota-music-tagging"``, ``"musicnn"``).
        models_dir: the models folder (or the family folder itself); default :func:`default_models_dir`.

    Raises:
        WeightsNotFoundError: no candidate exists (the message lists them).
    """
    root = Path(models_dir).expanduser() if models_dir is not None else default_models_dir()
    looked = [root / family / name, root / name]
    for cand in looked:
        if cand.is_file():
            return cand
    raise WeightsNotFoundError(str(name), looked)


def resolve_safetensors(path_or_name: str | Path, family: str, models_dir: str | Path | None = None) -> Path:
    """A ``.safetensors`` path as given, or a model name (``"msd-fcn"``, ``"msd-musicnn"``) looked up
    as ``{name}.safetensors`` of ``family`` (:func:`find_weight_file`).

    Raises:
        WeightsNotFoundError: the given file, or every candidate of the name, does not exist.
    """
    candidate = Path(path_or_name)
    if candidate.suffix == ".safetensors":
        if not candidate.is_file():
            raise WeightsNotFoundError(str(candidate), [candidate])
        return candidate
    return find_weight_file(f"{path_or_name}.safetensors", family, models_dir)


PICKLE_WEIGHTS = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
"""Suffixes of weight files that ``torch.load`` would unpickle: eno never loads them."""


class PickleWeightsError(OSError):
    """A model directory whose weights exist only as pickles (``pytorch_model.bin``, ``*.pt``):
    eno loads safetensors only and never unpickles a model file (a pickle can run code)."""


def require_safetensors(model_dir: str | Path) -> Path:
    """Check that ``model_dir`` has safetensors weights before anything loads it.

    Returns:
        ``model_dir`` as a ``Path``.

    Raises:
        PickleWeightsError: no ``*.safetensors`` file but pickle weights (``PICKLE_WEIGHTS``);
            one line naming the folder and the files. A folder with neither is left to the
            loader (its own "no weights" error).
    """
    d = Path(model_dir)
    if not d.is_dir() or any(d.glob("*.safetensors")):
        return d
    pickles = sorted(f.name for f in d.iterdir() if f.suffix.lower() in PICKLE_WEIGHTS and f.is_file())
    if pickles:
        raise PickleWeightsError(
            f"{d}: weights only as pickle ({', '.join(pickles[:3])}); eno never unpickles model "
            "files (a pickle can run code): save the model as model.safetensors "
            "(save_pretrained(..., safe_serialization=True))")
    return d
