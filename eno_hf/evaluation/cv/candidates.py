"""The candidates ``eno cv`` can cross-validate, declared one per file in ``configs/cv/{name}.yaml``.

A candidate file holds the fields of ``Candidate`` except ``name`` (the file's stem)::

    # configs/cv/msd-musicnn-logreg.yaml
    model: linear                 # prior | ridge | linear | mlp | default
    features: [msd-musicnn]       # cached feature blocks (evaluation.cv.features; "ensemble")
    description: "baseline (the peer): logistic-regression probe on MSD-Musicnn penultimate mean+max"

Models (``evaluation.cv.probes``, ``evaluation.cv.default``): ``prior`` (training label frequencies),
``ridge`` (closed-form ridge probe), ``linear`` (L2 logistic probe), ``mlp`` (the default's trunk +
heads on frozen features) and ``default`` (the config's own model trained per fold through
``eno_hf.training.train.fit``, as ``eno train`` trains it).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal

from eno_hf.config import CONFIG_DIR

CANDIDATES_DIR = CONFIG_DIR / "cv"
"""``configs/cv/``: one ``{name}.yaml`` per candidate."""
MODELS = ("prior", "ridge", "linear", "mlp", "default")
"""Candidate model kinds."""
BASELINES = ("label-prior", "fingerprint-mfcc-probe", "msd-musicnn-logreg")
"""The baselines every headline table shows next to the default."""


@dataclass
class Candidate:
    """A model to cross-validate.

    Attributes:
        name: the candidate's name (its file's stem).
        model: one of ``MODELS``.
        features: feature blocks the probes read (``ridge``, ``linear``, ``mlp``).
        balanced: class-balanced losses (``linear`` only; ``models.losses.balanced_weights``).
        seeds: models averaged (``mlp``, ``default``: seeds ``seed * 1000 + s``).
        refit: ``default``: after the epoch choice, a fresh model trained on the whole outer training
            part (validation included) and stopped at the chosen epoch.
        val_inner: ``default``: the validation part is ``1 / val_inner`` of the training artists;
            None: the config's split share (``default.validation_inner``: 80/10/10 -> 9).
        description: one line for reports.
    """

    name: str
    model: Literal["prior", "ridge", "linear", "mlp", "default"] = "ridge"
    features: list[str] = field(default_factory=list)
    balanced: bool = False
    seeds: int = 1
    refit: bool = False
    val_inner: int | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"candidate {self.name!r}: model must be one of {MODELS}, got {self.model!r}")
        if self.seeds < 1:
            raise ValueError(f"candidate {self.name!r}: seeds must be >= 1, got {self.seeds}")
        if self.model in ("ridge", "linear", "mlp") and not self.features:
            raise ValueError(f"candidate {self.name!r}: a {self.model} probe needs features")
        if self.balanced and self.model != "linear":
            raise ValueError(f"candidate {self.name!r}: balanced applies to linear probes only (the mlp and default "
                             "train through training.train.fit, whose loss weighting is the heads' pos_weight)")


def candidate_names(directory: str | Path = CANDIDATES_DIR) -> list[str]:
    """The names of the candidates declared in ``directory`` (sorted)."""
    return sorted(p.stem for p in Path(directory).glob("*.yaml"))


def load_candidate(name: str, directory: str | Path = CANDIDATES_DIR) -> Candidate:
    """``{directory}/{name}.yaml`` as a ``Candidate``.

    Raises:
        KeyError: no such candidate (the message lists the known ones).
        ValueError: unknown fields or bad values in the file.
    """
    import yaml

    path = Path(directory) / f"{name}.yaml"
    if not path.is_file():
        raise KeyError(f"unknown CV candidate {name!r}; known: {candidate_names(directory)}")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    allowed = {f.name for f in fields(Candidate)} - {"name"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValueError(f"{path}: unknown candidate fields {unknown} (allowed: {sorted(allowed)})")
    return Candidate(name=name, **data)


def load_candidates(names: list[str] | None = None, directory: str | Path = CANDIDATES_DIR) -> list[Candidate]:
    """The candidates ``names`` (default: every declared one), in that order.

    Raises:
        KeyError: an unknown name (all unknown names are listed).
    """
    names = list(names) if names else candidate_names(directory)
    unknown = [n for n in names if not (Path(directory) / f"{n}.yaml").is_file()]
    if unknown:
        raise KeyError(f"unknown CV candidates {unknown}; known: {candidate_names(directory)}")
    return [load_candidate(n, directory) for n in names]
