"""Latents from (seed, index): sample i depends only on its seed and position, never on batching."""
from __future__ import annotations

import math
import statistics
import threading

import numpy as np


class LatentError(ValueError):
    """A latent distribution the sampler does not know; the message lists the known ones."""


def latents(seed: int, start: int, n: int, dim: int, distribution: str, stream: int = 0) -> np.ndarray:
    """(n, dim) float32 latents for indices start..start+n-1; sample i depends only on (seed, i).

    Philox is counter-based: each index owns a fixed block of counters, so any slice of the
    sequence can be produced directly, whatever else was drawn in the same call. `stream` picks an
    independent sequence for the same seed (rejection sampling draws one per label).
    """
    raw = bits(seed, stream, start, n, 2 * dim)  # two uniforms per value (Box-Muller for normals)
    if distribution == "uniform":
        u = uniforms(raw[:, :dim])
        u *= 2
        u -= 1
        return u.astype(np.float32)
    if distribution == "normal":  # sqrt(-2 log u1) · cos(2π u2), in place: the same bits, less memory traffic
        r, c = uniforms(raw[:, :dim]), uniforms(raw[:, dim:])
        np.log(r, out=r)
        r *= -2
        np.sqrt(r, out=r)
        c *= 2 * np.pi
        np.cos(c, out=c)
        r *= c
        return r.astype(np.float32)
    raise LatentError(f"unknown latent distribution {distribution!r}; known: normal, uniform")


_PHILOX = threading.local()  # one generator per thread, re-keyed per call


def _philox(key: int, counter: int) -> np.random.Philox:
    """Philox at (key, counter): the words Philox(key=key, counter=counter) gives, without building one (its
    constructor draws OS entropy for a seed it then ignores: a fifth of a small request's sampling time)."""
    generator = getattr(_PHILOX, "generator", None)
    if generator is None:
        generator = _PHILOX.generator = np.random.Philox(key=0)
    generator.state = {"bit_generator": "Philox", "buffer": np.zeros(4, np.uint64), "buffer_pos": 4,
                       "has_uint32": 0, "uinteger": 0,
                       "state": {"counter": np.array([counter, 0, 0, 0], np.uint64),
                                 "key": np.array([key & (2**64 - 1), key >> 64], np.uint64)}}
    return generator


def bits(seed: int, stream: int, start: int, n: int, per_sample: int) -> np.ndarray:
    """(n, per_sample) raw 64-bit words for indices start..start+n-1 of (seed, stream)."""
    blocks = math.ceil(per_sample / 4)  # Philox yields four 64-bit words per counter
    raw = _philox(seed + (stream << 64), start * blocks).random_raw(n * blocks * 4)
    return raw.reshape(n, blocks * 4)[:, :per_sample]


def uniforms(raw: np.ndarray) -> np.ndarray:
    """Raw words -> float64 uniforms in (0, 1): the top 53 bits, centred in their interval."""
    u = (raw >> np.uint64(11)).view(np.int64).astype(np.float64)  # < 2**53: int64 converts faster
    u += 0.5
    u *= 2.0**-53
    return u


def code_edges(codes: int, distribution: str) -> list[float]:
    """Thresholds on z's first coordinate that split it into `codes` equally likely clusters.

    The one definition of a coded generator's clusters: the families' LatentCode compares z with
    these same edges, so the service bins latents exactly as the generator does.
    """
    if distribution == "normal":
        return [statistics.NormalDist().inv_cdf(j / codes) for j in range(1, codes)]
    return [-1 + 2 * j / codes for j in range(1, codes)]


def latent_codes(z: np.ndarray, codes: int, distribution: str) -> np.ndarray:
    """The cluster (n,) a coded generator draws for each latent."""
    edges = np.asarray(code_edges(codes, distribution), np.float32)
    return np.searchsorted(edges, z[:, 0], side="right")  # (n,): how many edges lie at or below z


PSI_MAX = 2.0  # past this an expanded latent lies where training never drew one


def truncate(z: np.ndarray, psi: float, codes: int = 0) -> np.ndarray:
    """The truncation trick: latents scaled toward their mean (0) by ψ ∈ (0, 1]; ψ = 1 leaves them as drawn.

    ψ in (1, PSI_MAX] is its reverse, the expansion trick (GaFi, Lampis et al. 2023): wider latents,
    more variety, less typical samples, for training data that a guided mode then sorts.

    One rule for both distributions: a uniform latent's range [-1, 1] becomes [-ψ, ψ], and a normal
    latent is scaled too (as StyleGAN scales w toward its mean) rather than resampled beyond ψ·σ
    (BigGAN). Scaling is continuous in ψ, so a slider or a walk moves each sample smoothly toward
    the average one instead of jumping whenever a component crosses the threshold; ψ = 1 is exactly
    the untruncated model; and z stays an elementwise function of the (seed, index) draw. A coded
    generator's first coordinate picks its cluster, a choice like a label: it is left as drawn, so
    truncation narrows each cluster instead of dropping the outer ones.
    """
    if psi == 1:
        return z
    out = z * np.float32(psi)
    if codes:
        out[:, 0] = z[:, 0]
    return out


def draw(latent, seed: int, start: int, n: int, truncation: float = 1.0) -> np.ndarray:
    """(n, dim) latents of indices start..start+n-1 of a seed for a card's `latent`, truncated by ψ."""
    return truncate(latents(seed, start, n, latent.dim, latent.distribution), truncation, latent.codes)
