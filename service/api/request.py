"""The one path of a sampling request: decode -> prepare -> run -> encode.

/samples, samples.png and /datasets decode their inputs (a JSON body, a query) into the same plain
Spec; `prepare` checks every limit, finds the model, its mode, its format and its labels, and gives a
Prepared request that knows its plan and its headers; the route runs the plan (whole, through the
batcher; or in chunks, as a stream) and the format's encoder writes the bytes. Nothing here reads a
body or writes a response, and nothing in a Spec does I/O.
"""
from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool

from service import formats
from service.formats import Encoder
from service.limits import LimitError, Limits
from service.repository import Model, Repository
from service.sampling import datasets, modes, steering
from service.sampling.modes import SamplingMode
from service.sampling.plans import Plan
from service.sampling.samples import Samples, resolve_labels
from service.sampling.steering import Steering, Walk
from service.settings import Settings


@dataclass(frozen=True)
class Spec:
    """A sampling request as decoded from any route: plain values, checked for type only."""
    model: str
    version: int | None = None
    n: int | None = None
    seed: int | None = None
    mode: str = modes.DEFAULT
    oversample: int | None = None
    threshold: float | None = None
    labels: list | dict | None = None
    format: str | None = None  # None: the route's first format
    grid: tuple[int, int] | None = None
    truncation: float = 1.0
    latents: list[list[float]] | None = None
    walk: Walk | None = None
    start: int = 0  # datasets: the index of the first sample
    order: str | None = None  # datasets: label counts grouped or interleaved


@dataclass
class Prepared:
    """A request ready to run: everything checked, the model loaded, the plan's inputs resolved."""
    spec: Spec
    route: str
    model: Model
    mode: SamplingMode
    encoder: Encoder
    n: int
    seed: int | None  # None: explicit latents
    oversample: int
    source: str  # where the oversample came from: request, card or default
    labels: np.ndarray | None
    steer: Steering
    grid: tuple[int, int] | None
    aid: Any = None

    @property
    def candidates(self) -> int:
        """Generator samples the request draws at most."""
        return self.n * self.oversample if self.mode.draws_candidates else self.n

    @property
    def work_bytes(self) -> int:
        """What the request's arrays take at most: each candidate's latent and its sample as float32, twice
        (as generated, and gathered or converted for the answer)."""
        card = self.model.card
        return self.candidates * 4 * (2 * math.prod(card.sample_shape) + card.latent.dim)

    def plan(self) -> Plan:
        """The whole request's plan (/samples)."""
        return steering.plan(self.model, self.n, self.seed, self.mode.name, self.oversample, self.labels, self.steer,
                             aid=self.aid)

    def stream(self):
        """The dataset's bytes, chunk by chunk (/datasets)."""
        return datasets.stream(self.model, self.n, self.seed, self.mode.name, self.oversample, self.labels,
                               self.encoder.name, self.steer, self.spec.start, self.aid)

    def encode(self, samples: Samples) -> bytes:
        return self.encoder.samples(samples, self.grid, self.model.card.picture and self.model.card.picture.model_dump())

    def headers(self, samples: Samples | None = None) -> dict[str, str]:
        """What every response says of its samples; with the samples, what was drawn for them too."""
        model = self.model
        out = {"X-Model": model.name, "X-Model-Version": str(model.version),
               "X-Ranking": self.mode.ranking(model, self.oversample, self.source, samples)}
        reported = self.steer.seed(self.seed)
        if reported is not None:  # a walk reports its start, explicit latents no seed
            out["X-Seed"] = str(reported)
        if samples is not None:
            out["X-Candidates"] = str(samples.candidates)
            if samples.acceptance is not None:
                out["X-Acceptance-Rate"] = f"{samples.acceptance:.6f}"
        return out


INLINE_NUMBERS = 16_384  # explicit latents up to this many numbers are checked on the event loop


async def prepare(spec: Spec, route: str, repository: Repository, settings: Settings) -> Prepared:
    """Every check of a request before any sampling, in the order that refuses cheaply first: the request
    alone, then the model (loaded off the event loop if it must be), its mode and format, the candidate
    budget, the labels, the latents; the mode's aid (filtered's classifier) is loaded off the loop too."""
    limits = Limits(settings, route)
    # 1. every limit on the request alone, before the model is touched or a label list is built.
    mode = modes.get(spec.mode)
    n = limits.n(spec, mode.draws_candidates)
    encoder = formats.get(spec.format or formats.default(route), route)
    limits.grid(spec.grid, encoder, n)
    # 2. the model, its kind, and what the mode and format need of it.
    model = repository.loaded(spec.model, spec.version)
    if model is None:  # the first request of a version loads it: off the event loop
        model = await run_in_threadpool(repository.get, spec.model, spec.version)
    model.serves(route)
    if spec.grid is not None and not model.card.images:
        raise LimitError(f"grid: only for image models; {model.name!r} makes {model.card.kind}")
    mode.check(model)
    encoder.check(route, model.card.images, model.card.kind)
    oversample, source = mode.oversample(model, spec.oversample)
    limits.candidates(mode.draws_candidates, n, oversample)
    # 3. labels and latents, checked against the card.
    latents = None
    if spec.latents is not None:  # a large array is made off the event loop (1,024 rows of 600: 50 ms)
        small = len(spec.latents) * len(spec.latents[0]) <= INLINE_NUMBERS
        latents = (steering.check_latents(model, spec.latents) if small
                   else await run_in_threadpool(steering.check_latents, model, spec.latents))
    steer = Steering(spec.truncation, latents, spec.walk)
    if spec.walk is not None and spec.labels is None:
        labels = steering.walk_labels(model, n)
    elif route == "datasets" and (spec.labels is None or (spec.walk is None and spec.latents is None)):
        labels = datasets.labels_of(model, spec.labels, spec.order, spec.start, n)
    else:
        labels = resolve_labels(model, spec.labels, n)
    grid = spec.grid
    if spec.walk is not None and grid is None and encoder.tiles and model.card.images:
        grid = (1, n)  # a walk reads as a row
    drawn = spec.latents is None and spec.walk is None
    seed = None if not drawn else spec.seed if spec.seed is not None else secrets.randbelow(2**31)
    aid = await run_in_threadpool(mode.prepare, model, spec.threshold, settings) if mode.loads else None
    return Prepared(spec, route, model, mode, encoder, n, seed, oversample, source, labels, steer, grid, aid)
