"""Translation: images of one domain through a translation model's generator, scored by the target's critic.

The same plan shape as sampling (plans.py): it yields the onnxruntime calls it needs, so the batcher
merges concurrent requests, and the evaluator drives it directly. Inputs arrive already decoded and
fitted to the source domain's shape (images.py); nothing here knows HTTP.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.repository import Model
from service.sampling.plans import Call, Plan, direct, run
from service.sampling.samples import SamplingError


@dataclass
class Translation:
    model: str
    version: int
    direction: str  # "a_to_b" | "b_to_a"
    source: str  # the domains' names, e.g. "uci" -> "mnist"
    target: str
    inputs: np.ndarray  # (n, c, h, w) float32 in the value range, as the generator took them
    values: np.ndarray  # (n, c, h, w) float32, the translated images
    scores: np.ndarray  # (n,) the target domain's critic on each translated image
    value_range: tuple[float, float]


def direction(model: Model, name: str):
    """(canonical direction, source domain, target domain); SamplingError lists the known names."""
    model.serves("translate")
    try:
        return model.card.domains.direction(name)
    except KeyError as exc:
        raise SamplingError(str(exc).strip("'\"")) from None


def translate(model: Model, images: np.ndarray, direction_name: str) -> Plan:
    """Plan: the source's generator on images (n, c, h, w), then the target's critic on the outputs."""
    canonical, source, target = direction(model, direction_name)
    if list(images.shape[1:]) != source.shape:
        raise SamplingError(f"images: the {source.name} domain takes images of shape {source.shape}, got "
                            f"{list(images.shape[1:])}")
    if len(images) == 0:
        values, scores = np.zeros((0, *target.shape), np.float32), np.zeros((0,), np.float32)
    else:
        values = yield Call(model.networks[source.generator], {"image": images}, model.name, f"generator_{canonical}")
        scores = (yield Call(model.networks[target.discriminator], {"image": values}, model.name,
                             f"discriminator_{target.name}")).reshape(-1)
    low, high = model.card.value_range
    return Translation(model=model.name, version=model.version, direction=canonical, source=source.name,
                       target=target.name, inputs=images, values=values, scores=scores,
                       value_range=(float(low), float(high)))


def translate_now(model: Model, images: np.ndarray, direction_name: str, runner=direct) -> Translation:
    """The same, blocking (the evaluator, tests)."""
    return run(translate(model, images, direction_name), runner)
