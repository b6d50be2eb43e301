"""Samples: what every sampling mode returns; labels as a request gives them, as the card names them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from service.repository import Model


class SamplingError(ValueError):
    """A request the model cannot satisfy; the message names the field and the valid choices."""


@dataclass
class Samples:
    model: str
    version: int
    seed: int | None  # None: the request gave its latents
    mode: str
    kind: str  # "points" | "curves" | "image"
    values: np.ndarray  # (n, *sample_shape) float32, as the generator emits them
    labels: np.ndarray | None  # (n,) int64 label indices, or None for an unconditional model
    label_names: list[str] | None
    scores: np.ndarray | None  # (n,) discriminator logits: best first (nice), in acceptance order (rejection)
    value_range: tuple[float, float]
    candidates: int  # generator samples drawn to produce these
    acceptance: float | None = None  # rejection: the share of drawn candidates accepted
    truncation: float = 1.0  # ψ the latents were scaled by

    @classmethod
    def of(cls, model: Model, seed: int | None, mode: str, values, labels, scores, candidates: int,
           truncation: float = 1.0) -> "Samples":
        """Samples of a loaded model, described by its card."""
        low, high = model.card.value_range
        return cls(model=model.name, version=model.version, seed=seed, mode=mode, kind=model.card.kind,
                   values=values, labels=labels, label_names=model.labels, scores=scores,
                   value_range=(float(low), float(high)), candidates=candidates, truncation=truncation)

    @property
    def images(self) -> bool:
        """Whether the samples are images (else numbers: points or curves)."""
        return self.kind == "image"

    def label_names_per_sample(self) -> Sequence[str] | None:
        if self.labels is None:
            return None
        return [self.label_names[i] for i in self.labels]


def resolve_labels(model: Model, labels, n: int | None) -> np.ndarray | None:
    """Request labels (a list, or {label: count}) as (n,) int64 indices into the card's labels."""
    names = model.labels
    if labels is None:
        if names is None:
            return None
        if n is None:
            raise SamplingError("labels: required for this conditional model")
        return np.arange(n, dtype=np.int64) % len(names)  # cycle through every label
    if names is None:
        raise SamplingError(f"labels: model {model.name!r} is unconditional; leave labels out")
    if isinstance(labels, dict):
        seq = [label for label, count in labels.items() for _ in range(_count(label, count))]
    else:
        seq = list(labels)
    index = {name: i for i, name in enumerate(names)}
    out = []
    for label in seq:
        key = str(label)
        if key not in index:
            raise SamplingError(f"labels: unknown label {label!r}; known: {', '.join(names)}")
        out.append(index[key])
    if n is not None and len(out) != n:
        raise SamplingError(f"labels: {len(out)} labels given for n={n}; give one per sample or a count per label")
    return np.asarray(out, dtype=np.int64)


def _count(label, count) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise SamplingError(f"labels: the count for {label!r} must be a non-negative integer, got {count!r}")
    return count
