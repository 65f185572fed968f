"""Typed head specifications (``HeadSpec``), derived from dataset features in one place.

A head is what a model predicts for one task: ``multilabel`` / ``singlelabel`` (``labels`` = class
names), ``regression`` (``labels`` = the names of its ``dim`` output dimensions, e.g. the 19
PercePiano ratings), ``ranking`` (one scalar score per input, trained on ordered pairs), or
``projection`` (an L2-normalised embedding of size ``dim``, trained contrastively).
``head_specs_from_features`` builds them from a ``datasets.Features`` mapping (a ``Sequence`` of
``ClassLabel``: multi-label; a ``ClassLabel``: single-label; floats or a float sequence:
regression) so the label space is stated once, where the data is.

The kind names are declared here once (``MULTILABEL`` ... ``PROJECTION``); what each kind means
for losses, probabilities, window pooling and metrics is asked of ``eno_hf.models.head_kinds``.
A head is read as a ``HeadSpec`` everywhere: ``HeadSpec.coerce`` converts the other forms
(``config.HeadConfig``, the JSON dicts of ``EnoModelConfig.heads``) once, at the edge.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

MULTILABEL, SINGLELABEL, REGRESSION, RANKING, PROJECTION = (
    "multilabel", "singlelabel", "regression", "ranking", "projection")
HeadKindName = Literal["multilabel", "singlelabel", "regression", "ranking", "projection"]
HEAD_KINDS: tuple[str, ...] = (MULTILABEL, SINGLELABEL, REGRESSION, RANKING, PROJECTION)
"""Every head kind, in the order the registry (``eno_hf.models.head_kinds``) lists them."""
CLASSIFICATION_KINDS: tuple[str, ...] = (MULTILABEL, SINGLELABEL)
"""Kinds whose outputs are class scores over ``labels`` (``id2label`` columns of the model)."""
SUPERVISED_KINDS: tuple[str, ...] = (MULTILABEL, SINGLELABEL, REGRESSION)
"""Kinds trained from per-sample label columns (``multitask_loss``) and scored by
``eno_hf.metrics``; ranking and projection heads are trained by the performance tiers."""

__all__ = ["CLASSIFICATION_KINDS", "HEAD_KINDS", "MULTILABEL", "PROJECTION", "RANKING", "REGRESSION",
           "SINGLELABEL", "SUPERVISED_KINDS", "HeadSpec", "head_specs_from_features",
           "unknown_kind"]


def unknown_kind(kind: Any, where: str = "head") -> ValueError:
    """The error for a head kind outside ``HEAD_KINDS`` (returned, for ``raise``), naming it."""
    return ValueError(f"{where}: unknown head kind {kind!r} (known kinds: {', '.join(HEAD_KINDS)})")


@dataclass(frozen=True)
class HeadSpec:
    """One output head.

    Attributes:
        name: head name (no ``/``). kind: one of ``HEAD_KINDS``.
        labels: class names (classification) or output-dimension names (regression).
        dim: number of outputs (classification: ``len(labels)``; regression: ``len(labels)`` or 1;
            ranking: 1; projection: the embedding size).
        column: dataset column holding the targets (default ``name``).
        weight: loss weight (the tier's confidence weight for tiered training).
        pos_weight: multi-label BCE positive weighting.

    Raises:
        ValueError: bad name/kind, classification head without labels, or ``dim`` inconsistent
            with ``labels``.
    """

    name: str
    kind: HeadKindName
    labels: tuple[str, ...] = ()
    dim: int = 0
    column: str | None = None
    weight: float = 1.0
    pos_weight: bool = False

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise ValueError(f"head {self.name!r}: name must be non-empty without '/'")
        if self.kind not in HEAD_KINDS:
            raise unknown_kind(self.kind, f"head {self.name!r}")
        object.__setattr__(self, "labels", tuple(str(x) for x in self.labels))
        if self.kind in CLASSIFICATION_KINDS:
            if not self.labels:
                raise ValueError(f"head {self.name!r}: a {self.kind} head needs labels")
            expected = len(self.labels)
        elif self.kind == REGRESSION:
            expected = len(self.labels) or 1
        elif self.kind == RANKING:
            expected = 1
        else:
            expected = int(self.dim or 128)
        if self.dim and self.dim != expected:
            raise ValueError(f"head {self.name!r}: dim {self.dim} but {expected} outputs expected")
        object.__setattr__(self, "dim", expected)
        if self.column is None:
            object.__setattr__(self, "column", self.name)

    @property
    def is_classification(self) -> bool:
        """Whether the head scores classes (``kind`` in ``CLASSIFICATION_KINDS``)."""
        return self.kind in CLASSIFICATION_KINDS

    def to_dict(self) -> dict[str, Any]:
        """The JSON form kept in ``config.json`` (``labels`` as a list)."""
        d = asdict(self)
        d["labels"] = list(self.labels)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HeadSpec:
        """From the JSON form; unknown keys (from other versions) are ignored, ``None`` values
        take the defaults."""
        keys = {f for f in cls.__dataclass_fields__} - {"name", "kind"}
        return cls(d.get("name"), d.get("kind"),
                   **{k: (tuple(v) if k == "labels" else v) for k, v in d.items() if k in keys and v is not None})

    @classmethod
    def coerce(cls, head: HeadSpec | Mapping[str, Any] | Any) -> HeadSpec:
        """A head in any of its forms as a ``HeadSpec``: returned as is, read from a dict
        (``from_dict``) or from an object's attributes (``config.HeadConfig``: its ``dim`` is kept
        for projection heads only, as in ``head_specs_from_features``).

        Raises:
            ValueError: see the class (unknown kind, classification head without labels...).
        """
        if isinstance(head, HeadSpec):
            return head
        if not isinstance(head, Mapping):
            head = {k: getattr(head, k, None) for k in cls.__dataclass_fields__}
        if head.get("kind") != PROJECTION:
            head = {k: v for k, v in head.items() if k != "dim"}
        return cls.from_dict(head)


def _getter(r: Mapping[str, Any] | Any):
    if isinstance(r, Mapping):
        return lambda k, d=None: d if r.get(k) is None else r.get(k)
    return lambda k, d=None: d if getattr(r, k, None) is None else getattr(r, k)


def head_specs_from_features(features: Mapping[str, Any], requests: Iterable[Mapping[str, Any] | Any]) -> list[HeadSpec]:
    """Heads for ``requests`` (``{name, kind?, column?, weight?, dim?, labels?, pos_weight?}`` dicts
    or objects with those attributes, e.g. ``config.HeadConfig``) with their label spaces read from
    ``features``: the one place where head specs are derived from data (tagging training, the
    model factory, baselines, performance models).

    Args:
        features: column name -> ``datasets`` feature (``ClassLabel``, ``Sequence(ClassLabel)``,
            ``Value("float32")``, ``Sequence(Value("float32"))``, ``List``...), or a plain mapping
            column -> list of label names (for label spaces kept outside the dataset).
        requests: the heads wanted; ``kind`` defaults to what the column's feature implies.
            ``dim`` is read for ``projection`` heads only (the other kinds' sizes follow from
            their labels).

    Returns:
        ``HeadSpec`` list in request order. Regression / ranking / projection heads whose column
        is absent get the request's ``labels`` (a regression head without labels has ``dim`` 1).

    Raises:
        ValueError: a classification head whose column is missing from ``features`` or has no
            class names, or a head without a kind whose column is missing.
    """
    out: list[HeadSpec] = []
    for r in requests:
        get = _getter(r)
        name, kind = str(get("name")), get("kind")
        column = get("column") or name
        labels = tuple(get("labels") or ())
        common = {"column": column, "weight": float(get("weight", 1.0)), "pos_weight": bool(get("pos_weight", False))}
        if kind in (PROJECTION, RANKING) or (kind == REGRESSION and column not in features):
            out.append(HeadSpec(name, kind, labels=labels if kind == REGRESSION else (),
                                dim=int(get("dim", 0)) if kind == PROJECTION else 0, **common))
            continue
        if column not in features:
            raise ValueError(f"head {name!r}: dataset column {column!r} is missing (features: {sorted(features)})")
        feat = features[column]
        if isinstance(feat, (list, tuple)):
            names, implied = list(feat), MULTILABEL
        else:
            inner = getattr(feat, "feature", None)
            names = getattr(feat, "names", None) or getattr(inner, "names", None)
            implied = (MULTILABEL if inner is not None and getattr(inner, "names", None) else
                       SINGLELABEL if getattr(feat, "names", None) else REGRESSION)
        kind = kind or implied
        if kind in CLASSIFICATION_KINDS and not names:
            raise ValueError(f"head {name!r}: dataset column {column!r} has no ClassLabel names for a {kind} head")
        if kind == REGRESSION:
            names = labels or names or ()
        out.append(HeadSpec(name, kind, labels=tuple(names or ()), **common))
    return out
