"""Latents, plain / nice / conditional sampling -> Samples. Knows nothing of HTTP."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from service.repository import Model

MODES = ("plain", "nice")
CHUNK = 2048  # samples per onnxruntime call: bounds memory for large requests


class SamplingError(ValueError):
    """A request the model cannot satisfy; the message names the field and the valid choices."""


@dataclass
class Samples:
    model: str
    version: int
    seed: int
    mode: str
    kind: str  # "points" | "curves" | "image"
    values: np.ndarray  # (n, *sample_shape) float32, as the generator emits them
    labels: np.ndarray | None  # (n,) int64 label indices, or None for an unconditional model
    label_names: list[str] | None
    scores: np.ndarray | None  # (n,) discriminator logits, best first (nice), else None
    value_range: tuple[float, float]
    candidates: int  # generator samples drawn to produce these


def latents(seed: int, start: int, n: int, dim: int, distribution: str) -> np.ndarray:
    """(n, dim) float32 latents for indices start..start+n-1; sample i depends only on (seed, i).

    Philox is counter-based: each index owns a fixed block of counters, so any slice of the
    sequence can be produced directly, whatever else was drawn in the same call.
    """
    per_sample = 2 * dim  # two uniforms per value (Box-Muller for normals)
    blocks = math.ceil(per_sample / 4)  # Philox yields four 64-bit words per counter
    bits = np.random.Philox(key=seed, counter=[start * blocks, 0, 0, 0]).random_raw(n * blocks * 4)
    u = ((bits.reshape(n, blocks * 4)[:, :per_sample] >> np.uint64(11)) + 0.5) * 2.0**-53  # (n, 2·dim) in (0, 1)
    u1, u2 = u[:, :dim], u[:, dim:]
    if distribution == "uniform":
        return (u1 * 2 - 1).astype(np.float32)
    if distribution == "normal":
        return (np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u2)).astype(np.float32)
    raise SamplingError(f"unknown latent distribution {distribution!r}; known: normal, uniform")


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


def generate(model: Model, z: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
    """Generator output for latents (and labels), in chunks."""
    outs = []
    for i in range(0, len(z), CHUNK):
        feed = {"z": z[i:i + CHUNK]}
        if labels is not None:
            feed["label"] = labels[i:i + CHUNK]
        outs.append(model.generator.run(None, feed)[0])
    return np.concatenate(outs) if outs else np.zeros((0, *model.card["sample_shape"]), np.float32)


def score(model: Model, samples: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
    """Discriminator logits (n,) for samples (and labels), in chunks."""
    if model.discriminator is None:
        raise SamplingError(f"mode: model {model.name!r} has no discriminator; use mode 'plain'")
    outs = []
    for i in range(0, len(samples), CHUNK):
        feed = {"sample": samples[i:i + CHUNK]}
        if labels is not None:
            feed["label"] = labels[i:i + CHUNK]
        outs.append(model.discriminator.run(None, feed)[0].reshape(-1))
    return np.concatenate(outs) if outs else np.zeros((0,), np.float32)


def sample(model: Model, n: int, seed: int, mode: str = "plain", oversample: int = 20,
           labels: np.ndarray | None = None) -> Samples:
    """n samples of a model: plain, or nice (best n of oversample·n by discriminator score)."""
    dim, dist = model.latent_dim, model.card["latent"]["distribution"]
    if mode == "plain":
        # 1. one latent per index, 2. the generator.
        values = generate(model, latents(seed, 0, n, dim, dist), labels)
        return _samples(model, seed, mode, values, labels, None, n)
    if mode == "nice":
        # 1. oversample candidates per requested sample, each slot's candidates carrying its label.
        m = n * oversample
        cand_labels = np.repeat(labels, oversample) if labels is not None else None
        candidates = generate(model, latents(seed, 0, m, dim, dist), cand_labels)
        # 2. score them all, 3. keep the best of each label's own candidates, best first.
        scores = score(model, candidates, cand_labels)
        keep = _best_per_label(scores, labels, oversample, n)
        return _samples(model, seed, mode, candidates[keep], labels, scores[keep], m)
    raise SamplingError(f"mode: unknown mode {mode!r}; known: {', '.join(MODES)}")


def _best_per_label(scores: np.ndarray, labels: np.ndarray | None, oversample: int, n: int) -> np.ndarray:
    """Candidate indices for each output slot: slot i gets a best-first candidate of its own label."""
    if labels is None:
        return np.argsort(-scores, kind="stable")[:n]
    keep = np.empty(n, dtype=np.int64)
    cand_labels = np.repeat(labels, oversample)
    for label in np.unique(labels):
        slots = np.flatnonzero(labels == label)
        pool = np.flatnonzero(cand_labels == label)
        keep[slots] = pool[np.argsort(-scores[pool], kind="stable")[:len(slots)]]
    return keep


def _samples(model: Model, seed: int, mode: str, values, labels, scores, candidates: int) -> Samples:
    low, high = model.card.get("value_range", [-1.0, 1.0])
    return Samples(model=model.name, version=model.version, seed=seed, mode=mode, kind=model.card["kind"],
                   values=values, labels=labels, label_names=model.labels, scores=scores,
                   value_range=(float(low), float(high)), candidates=candidates)


def label_names_of(samples: Samples) -> Sequence[str] | None:
    if samples.labels is None:
        return None
    return [samples.label_names[i] for i in samples.labels]
