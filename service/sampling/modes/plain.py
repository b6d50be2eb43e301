"""plain: one latent per sample, then the generator; nothing is ranked."""
from __future__ import annotations

import numpy as np

from service.repository import Model
from service.sampling import plans
from service.sampling.latents import draw
from service.sampling.modes import Draw, SamplingMode
from service.sampling.plans import Plan
from service.sampling.samples import Samples


class Plain(SamplingMode):
    name = "plain"
    help = "one latent per sample, as drawn"
    needs_discriminator = False
    draws_candidates = False

    def plan(self, d: Draw) -> Plan:
        z = draw(d.model.card.latent, d.seed, d.start, d.n, d.truncation)
        values = yield from plans.generate(d.model, z, d.labels)
        return Samples.of(d.model, d.seed, self.name, values, d.labels, None, d.n, d.truncation)


def given(model: Model, z: np.ndarray, labels: np.ndarray | None, seed: int | None = None,
          truncation: float = 1.0) -> Plan:
    """Plan: the generator on latents a request brings (already truncated); `seed` only describes them."""
    values = yield from plans.generate(model, z, labels)
    return Samples.of(model, seed, Plain.name, values, labels, None, len(z), truncation)
