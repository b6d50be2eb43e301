"""Latents, plain / nice / conditional sampling as plans -> Samples. Knows nothing of HTTP.

Rejection sampling builds on these plans in service/rejection.py.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Callable, Generator, Sequence

import numpy as np

from service.repository import Model

MODES = ("plain", "nice", "rejection")
CHUNK = 128  # rows per onnxruntime call: the fastest batch per sample here (measured: 64-128 beat 1024
# by 15 %, as the activations stay in cache); the batcher's max_rows plays the same part

# run(session, feed, model name, network) -> first output; the service passes its dynamic batcher.
Run = Callable[..., np.ndarray]


def direct(session, feed: dict[str, np.ndarray], model: str = "", network: str = "") -> np.ndarray:
    """onnxruntime calls of at most CHUNK rows, unbatched."""
    rows = len(next(iter(feed.values())))
    if rows <= CHUNK:
        return session.run(None, feed)[0]
    return np.concatenate([session.run(None, {k: v[i:i + CHUNK] for k, v in feed.items()})[0]
                           for i in range(0, rows, CHUNK)])


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
    scores: np.ndarray | None  # (n,) discriminator logits: best first (nice), in acceptance order (rejection)
    value_range: tuple[float, float]
    candidates: int  # generator samples drawn to produce these
    acceptance: float | None = None  # rejection: the share of drawn candidates accepted


def latents(seed: int, start: int, n: int, dim: int, distribution: str, stream: int = 0) -> np.ndarray:
    """(n, dim) float32 latents for indices start..start+n-1; sample i depends only on (seed, i).

    Philox is counter-based: each index owns a fixed block of counters, so any slice of the
    sequence can be produced directly, whatever else was drawn in the same call. `stream` picks an
    independent sequence for the same seed (rejection sampling draws one per label).
    """
    bits = _bits(seed, stream, start, n, 2 * dim)  # two uniforms per value (Box-Muller for normals)
    if distribution == "uniform":
        u = _uniform(bits[:, :dim])
        u *= 2
        u -= 1
        return u.astype(np.float32)
    if distribution == "normal":  # sqrt(-2 log u1) · cos(2π u2), in place: the same bits, less memory traffic
        r, c = _uniform(bits[:, :dim]), _uniform(bits[:, dim:])
        np.log(r, out=r)
        r *= -2
        np.sqrt(r, out=r)
        c *= 2 * np.pi
        np.cos(c, out=c)
        r *= c
        return r.astype(np.float32)
    raise SamplingError(f"unknown latent distribution {distribution!r}; known: normal, uniform")


def _bits(seed: int, stream: int, start: int, n: int, per_sample: int) -> np.ndarray:
    """(n, per_sample) raw 64-bit words for indices start..start+n-1 of (seed, stream)."""
    blocks = math.ceil(per_sample / 4)  # Philox yields four 64-bit words per counter
    bits = np.random.Philox(key=seed + (stream << 64), counter=[start * blocks, 0, 0, 0]).random_raw(n * blocks * 4)
    return bits.reshape(n, blocks * 4)[:, :per_sample]


def _uniform(bits: np.ndarray) -> np.ndarray:
    """Raw words -> float64 uniforms in (0, 1): the top 53 bits, centred in their interval."""
    u = (bits >> np.uint64(11)).view(np.int64).astype(np.float64)  # < 2**53: int64 converts faster
    u += 0.5
    u *= 2.0**-53
    return u


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


@dataclass
class Call:
    """One onnxruntime call a plan needs: the session, its inputs, and names for metrics."""
    session: object
    feed: dict[str, np.ndarray]
    model: str
    network: str  # "generator" | "discriminator"


# A plan is a generator that yields a Call for each onnxruntime call it needs, is sent that call's
# first output, and returns its result. Sampling is written once as plans; run_plan makes the calls
# one by one, the service's batcher merges them with other requests' calls.
Plan = Generator[Call, np.ndarray, object]


def run_plan(plan: Plan, run: Run = direct):
    """Drive a plan to its result, making each call with run (blocking)."""
    try:
        call = next(plan)
        while True:
            call = plan.send(run(call.session, call.feed, call.model, call.network))
    except StopIteration as done:
        return done.value


def generating(model: Model, z: np.ndarray, labels: np.ndarray | None) -> Plan:
    """Plan: generator output for latents (and labels), in one call (the runner splits it)."""
    if len(z) == 0:
        return np.zeros((0, *model.card["sample_shape"]), np.float32)
    feed = {"z": z} if labels is None else {"z": z, "label": labels}
    return (yield Call(model.generator, feed, model.name, "generator"))


def scoring(model: Model, samples: np.ndarray, labels: np.ndarray | None) -> Plan:
    """Plan: discriminator logits (n,) for samples (and labels), in one call (the runner splits it)."""
    if model.discriminator is None:
        raise SamplingError(f"mode: model {model.name!r} has no discriminator; use mode 'plain'")
    if len(samples) == 0:
        return np.zeros((0,), np.float32)
    feed = {"sample": samples} if labels is None else {"sample": samples, "label": labels}
    return (yield Call(model.discriminator, feed, model.name, "discriminator")).reshape(-1)


def generate(model: Model, z: np.ndarray, labels: np.ndarray | None, run: Run = direct) -> np.ndarray:
    """Generator output for latents (and labels)."""
    return run_plan(generating(model, z, labels), run)


def score(model: Model, samples: np.ndarray, labels: np.ndarray | None, run: Run = direct) -> np.ndarray:
    """Discriminator logits (n,) for samples (and labels)."""
    return run_plan(scoring(model, samples, labels), run)


def sample(model: Model, n: int, seed: int, mode: str = "plain", oversample: int = 20,
           labels: np.ndarray | None = None, run: Run = direct, start: int = 0) -> Samples:
    """n samples of a model: plain, nice (best n of oversample·n by discriminator score) or rejection.

    `start` offsets the sample indices, so a long stream can be sampled in chunks (plain, nice).
    """
    return run_plan(plan(model, n, seed, mode, oversample, labels, start), run)


def plan(model: Model, n: int, seed: int, mode: str = "plain", oversample: int = 20,
         labels: np.ndarray | None = None, start: int = 0) -> Plan:
    """Plan of sample(): the same steps, each onnxruntime call yielded."""
    dim, dist = model.latent_dim, model.card["latent"]["distribution"]
    if mode == "plain":
        # 1. one latent per index, 2. the generator.
        values = yield from generating(model, latents(seed, start, n, dim, dist), labels)
        return _samples(model, seed, mode, values, labels, None, n)
    if mode == "nice":
        # 1. oversample candidates per requested sample, each slot's candidates carrying its label.
        m = n * oversample
        cand_labels = np.repeat(labels, oversample) if labels is not None else None
        z = latents(seed, start * oversample, m, dim, dist)
        candidates = yield from generating(model, z, cand_labels)
        # 2. score them all, 3. keep the best of each label's own candidates, best first.
        scores = yield from scoring(model, candidates, cand_labels)
        if labels is None and model.card["latent"].get("codes"):  # a coded G: each cluster keeps its share
            cand_codes = latent_codes(z, model.card["latent"])
            keep = _best_per_group(scores, cand_codes[::oversample], cand_codes)
        else:
            keep = _best_per_label(scores, labels, oversample, n)
        return _samples(model, seed, mode, candidates[keep], labels, scores[keep], m)
    if mode == "rejection":
        from service import rejection  # it builds on this module's plans

        return (yield from rejection.rejection(model, n, seed, oversample, labels))
    raise SamplingError(f"mode: unknown mode {mode!r}; known: {', '.join(MODES)}")


def _best_per_label(scores: np.ndarray, labels: np.ndarray | None, oversample: int, n: int) -> np.ndarray:
    """Candidate indices for each output slot: slot i gets a best-first candidate of its own label."""
    if labels is None:
        return np.argsort(-scores, kind="stable")[:n]
    return _best_per_group(scores, labels, np.repeat(labels, oversample))


def _best_per_group(scores: np.ndarray, slot_groups: np.ndarray, cand_groups: np.ndarray) -> np.ndarray:
    """Candidate indices (len(slot_groups),): each slot gets a best-first candidate of its own group."""
    keep = np.empty(len(slot_groups), dtype=np.int64)
    for group in np.unique(slot_groups):
        slots = np.flatnonzero(slot_groups == group)
        pool = np.flatnonzero(cand_groups == group)
        keep[slots] = pool[np.argsort(-scores[pool], kind="stable")[:len(slots)]]
    return keep


def latent_codes(z: np.ndarray, latent: dict) -> np.ndarray:
    """The cluster (n,) a coded generator draws for each latent: z's first coordinate, binned by its CDF.

    The same bins as training.families.mnist_dcgan.LatentCode, as thresholds on z itself.
    """
    codes = int(latent["codes"])
    if latent["distribution"] == "normal":
        edges = [statistics.NormalDist().inv_cdf(j / codes) for j in range(1, codes)]
    else:
        edges = [-1 + 2 * j / codes for j in range(1, codes)]
    return np.searchsorted(np.asarray(edges, np.float32), z[:, 0], side="right")  # (n,)


def _samples(model: Model, seed: int, mode: str, values, labels, scores, candidates: int) -> Samples:
    low, high = model.card.get("value_range", [-1.0, 1.0])
    return Samples(model=model.name, version=model.version, seed=seed, mode=mode, kind=model.card["kind"],
                   values=values, labels=labels, label_names=model.labels, scores=scores,
                   value_range=(float(low), float(high)), candidates=candidates)


def label_names_of(samples: Samples) -> Sequence[str] | None:
    if samples.labels is None:
        return None
    return [samples.label_names[i] for i in samples.labels]
