"""Latent control beyond (seed, index): the truncation ψ, latents a request brings, walks between seeds.

A request's Steering says where its latents come from. Drawn ones (the default) follow the
(seed, index) rule and are scaled by ψ (latents.truncate). Explicit latents are checked against the
card (width, finiteness) and scaled by ψ too. A walk is k latents on the path from sample 0 of seed
`start` to sample 0 of seed `end` (each truncated by ψ first), so its ends are exactly those two
samples: latent i depends only on (start, end, k, method, ψ, i), and a walk streamed in chunks
gives the same bytes as one request.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from typing import Any

from service.repository import Model
from service.sampling import modes
from service.sampling.latents import draw, truncate
from service.sampling.modes.plain import Plain, given
from service.sampling.plans import Plan
from service.sampling.samples import SamplingError

METHODS = ("slerp", "lerp")


@dataclass(frozen=True)
class Walk:
    start: int  # the seed whose sample 0 the walk starts at
    end: int  # the seed whose sample 0 it ends at
    steps: int  # k ≥ 2 samples, both ends included
    method: str | None = None  # None: slerp for normal latents, lerp for uniform ones

    def method_for(self, distribution: str) -> str:
        """slerp keeps normal latents near the shell where they live; a straight line stays in the uniform cube."""
        if self.method is None:
            return "slerp" if distribution == "normal" else "lerp"
        return self.method


@dataclass(frozen=True)
class Steering:
    truncation: float = 1.0
    latents: np.ndarray | None = field(default=None, compare=False)  # (n, dim) float32, from check_latents
    walk: Walk | None = None

    def seed(self, seed: int | None) -> int | None:
        """The seed the samples report: the request's, a walk's start, none for explicit latents."""
        if self.walk is not None:
            return self.walk.start
        return None if self.latents is not None else seed


def check_latents(model: Model, rows) -> np.ndarray:
    """Explicit latents as (n, dim) float32, or SamplingError naming `latents` and what is wrong."""
    dim = model.latent_dim
    widths = {len(row) for row in rows}
    if widths != {dim}:
        bad = next(i for i, row in enumerate(rows) if len(row) != dim)
        raise SamplingError(f"latents: each row must have {dim} numbers, the model's latent.dim; row {bad} has "
                            f"{len(rows[bad])}")
    z = np.asarray(rows, dtype=np.float64).reshape(len(rows), dim)
    finite = np.abs(z) <= np.finfo(np.float32).max  # 1e39 is finite in JSON, not in float32; NaN fails too
    if not finite.all():
        row = int(np.argwhere(~finite)[0][0])
        raise SamplingError(f"latents: row {row} holds a number that is not finite as float32")
    return z.astype(np.float32)


def interpolate(a: np.ndarray, b: np.ndarray, t: np.ndarray, method: str) -> np.ndarray:
    """(len(t), dim) points from a (t = 0) to b (t = 1): spherical (slerp) or straight (lerp); ends exact."""
    a64, b64, t = a.astype(np.float64), b.astype(np.float64), np.asarray(t, np.float64)[:, None]
    if method not in METHODS:
        raise SamplingError(f"walk.method: unknown method {method!r}; known: {', '.join(METHODS)}")
    norms = np.linalg.norm(a64) * np.linalg.norm(b64)
    omega = np.arccos(np.clip(a64 @ b64 / norms, -1, 1)) if norms > 0 else 0.0
    if method == "lerp" or np.sin(omega) < 1e-6:  # (anti)parallel: the arc is not defined, the line is
        z = (1 - t) * a64 + t * b64
    else:  # Shoemake's slerp on the unnormalised vectors (White 2016, "Sampling generative networks")
        z = (np.sin((1 - t) * omega) * a64 + np.sin(t * omega) * b64) / np.sin(omega)
    z = z.astype(np.float32)
    z[t[:, 0] == 0], z[t[:, 0] == 1] = a, b
    return z


def walk_latents(model: Model, walk: Walk, truncation: float, start: int, n: int) -> np.ndarray:
    """(n, dim) latents of steps start..start+n-1 of a walk."""
    if walk.steps < 2:
        raise SamplingError(f"walk.steps: a walk has at least 2 steps (its two ends), got {walk.steps}")
    ends = [draw(model.card.latent, seed, 0, 1, truncation)[0] for seed in (walk.start, walk.end)]
    latent = model.card.latent
    z = interpolate(*ends, np.arange(start, start + n) / (walk.steps - 1), walk.method_for(latent.distribution))
    if latent.distribution == "uniform":  # an arc can leave the cube the generator was trained on
        np.clip(z, -1, 1, out=z)
    return z


def walk_labels(model: Model, n: int) -> np.ndarray | None:
    """The labels of a walk whose request names none: held fixed at the model's first label, the one
    sample 0 of a seed gets, so the ends are those samples. A request may give one label per step
    (and so change it along the way) or a count."""
    return None if model.labels is None else np.zeros(n, np.int64)


def plan(model: Model, n: int, seed: int | None, mode: str, oversample: int, labels: np.ndarray | None,
         steer: Steering, start: int = 0, stream: bool = False, aid: Any = None) -> Plan:
    """The plan of samples start..start+n-1 of a request, whichever way its latents come (`stream`: of a
    dataset, whose sample i depends on (seed, i) alone in every mode; `aid`: what the mode prepared)."""
    if steer.latents is not None:
        z = truncate(steer.latents[start:start + n], steer.truncation, model.card.latent.codes)
    elif steer.walk is not None:
        z = walk_latents(model, steer.walk, steer.truncation, start, n)
    else:
        return modes.plan(model, n, seed, mode, oversample, labels, start, steer.truncation, aid, stream)
    if mode != Plain.name:
        raise SamplingError(f"mode: {mode} draws its own candidates; explicit latents and walks use plain")
    return given(model, z, labels, steer.seed(seed), steer.truncation)
