"""Sampling modes: one object per mode, registered by name in MODES; every list of mode names derives from it.

A mode turns a Draw (samples start..start+n-1 of a seed, with their labels and oversample) into a
Plan of onnxruntime calls that returns Samples: `plan` for /samples, `plan_slots` for datasets, whose
sample i must depend on (seed, i) alone. A mode also says what it needs (a discriminator; an aid such
as filtered's classifier, loaded by `prepare`), how many candidates it draws (the budget a request is
checked against) and what chose its samples (the X-Ranking header). The request schemas, the OpenAPI
enums, the GET query, the web page's menu and the evaluator all read MODES.

A new mode is one file defining a SamplingMode and one `register(...)` line at the end of this one
(docs/extending.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from service.repository import Model
from service.sampling import plans
from service.sampling.latents import PSI_MAX
from service.sampling.plans import Plan, Runner, direct
from service.sampling.samples import Samples, SamplingError

CLASSIC_OVERSAMPLE = 20  # keras-dcgan's best 1 of 20: the oversample of a request and a card that name none


@dataclass(frozen=True)
class Draw:
    """What a mode's plan is asked for: samples start..start+n-1 of a seed, one label each (or None)."""
    model: Model
    n: int
    seed: int
    oversample: int = CLASSIC_OVERSAMPLE
    labels: np.ndarray | None = None
    start: int = 0
    truncation: float = 1.0
    aid: Any = None  # what the mode's prepare() loaded (filtered: its classifier)


class SamplingMode:
    """One way of choosing samples. Subclasses set the class attributes and write `plan`."""
    name: ClassVar[str]
    help: ClassVar[str]  # one clause for the API's documentation of `mode`
    needs_discriminator: ClassVar[bool] = True
    draws_candidates: ClassVar[bool] = True  # n × oversample candidates: bounded by max_candidates
    loads: ClassVar[bool] = False  # prepare() may read files: a route calls it off the event loop

    def plan(self, draw: Draw) -> Plan:
        raise NotImplementedError

    def plan_slots(self, draw: Draw) -> Plan:
        """The plan of a dataset's samples, sample i depending on (seed, i) alone; `plan` unless it is not so."""
        return self.plan(draw)

    def oversample(self, model: Model, requested: int | None) -> tuple[int, str]:
        """(oversample, where it came from: request, card or default)."""
        return (requested, "request") if requested is not None else (CLASSIC_OVERSAMPLE, "default")

    def check(self, model: Model) -> None:
        """Refuse, before any work, a model this mode cannot sample."""
        if self.needs_discriminator and model.discriminator is None:
            raise SamplingError(f"mode: model {model.name!r} has no discriminator; use mode 'plain'")

    def prepare(self, model: Model, threshold: float | None, settings) -> Any:
        """What the plan needs besides the model (the Draw's aid), loaded once per request."""
        return None

    def ranking(self, model: Model, oversample: int, source: str, samples: Samples | None = None) -> str:
        """What chose the samples, in ASCII words a header can carry (X-Ranking)."""
        return "none"


MODES: dict[str, SamplingMode] = {}


def register(mode: SamplingMode) -> SamplingMode:
    """Make a mode known to every route, schema, menu and the evaluator (by its name)."""
    MODES[mode.name] = mode
    return mode


def get(name: str) -> SamplingMode:
    """The mode of a name, or SamplingError listing the known ones."""
    try:
        return MODES[name]
    except KeyError:
        raise SamplingError(f"mode: unknown mode {name!r}; known: {', '.join(MODES)}") from None


def described() -> str:
    """Every mode and what it does, for the API's documentation of `mode`."""
    return "; ".join(f"{mode.name}: {mode.help}" for mode in MODES.values())


def plan(model: Model, n: int, seed: int, mode: str | None = None, oversample: int | None = None,
         labels: np.ndarray | None = None, start: int = 0, truncation: float = 1.0, aid: Any = None,
         stream: bool = False) -> Plan:
    """The plan of n samples of a model in a mode (`stream`: as a dataset streams them)."""
    chosen = get(mode or DEFAULT)
    if not 0 < truncation <= PSI_MAX:
        raise SamplingError(f"truncation: ψ must be in (0, {PSI_MAX:g}], got {truncation}")
    chosen.check(model)
    draw = Draw(model, n, seed, chosen.oversample(model, oversample)[0], labels, start, truncation, aid)
    return chosen.plan_slots(draw) if stream else chosen.plan(draw)


def sample(model: Model, n: int, seed: int, mode: str | None = None, oversample: int | None = None,
           labels: np.ndarray | None = None, runner: Runner = direct, start: int = 0,
           truncation: float = 1.0, aid: Any = None) -> Samples:
    """n samples of a model in a mode, blocking (the evaluator, pictures, tests)."""
    return plans.run(plan(model, n, seed, mode, oversample, labels, start, truncation, aid), runner)


from service.sampling.modes import filtered, nice, plain, rejection  # noqa: E402  (the modes import this module)

DEFAULT = register(plain.Plain()).name  # what a request that names no mode gets
register(nice.Nice())
register(rejection.Rejection())
register(filtered.Filtered())
