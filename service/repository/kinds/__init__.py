"""Model kinds: how a version's card and ONNX files become a served Model, one object per kind (as Triton
has a backend per model). The card's `kind` names what the model makes (points, curves, image, translation);
each such output belongs to one ModelKind, which loads the networks, checks them against the card, probes
them once, and says which routes serve it. A new kind is one file and one `register(...)` line below
(docs/extending.md)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from service.repository.card import Card
from service.repository.sessions import PROVIDERS, Network, Threads


@dataclass
class Model:
    """One loaded version: its card and its shared onnxruntime sessions (run() is thread-safe)."""
    name: str
    version: int
    path: Path
    card: Card
    generator: Network | None  # None for a translation model: see networks
    discriminator: Network | None
    networks: dict[str, Network] = field(default_factory=dict)  # a translation model's, by file name

    def threads(self) -> dict[str, Threads]:
        """Each network's threads, as chosen at load."""
        named = {"generator": self.generator, "discriminator": self.discriminator, **self.networks}
        return {name: network.threads for name, network in named.items() if network is not None}

    @property
    def labels(self) -> list[str] | None:
        return self.card.labels

    @property
    def latent_dim(self) -> int:
        return self.card.latent.dim

    @property
    def kind(self) -> "ModelKind":
        return kind_of(self.card)

    def serves(self, route: str) -> None:
        """WrongKind unless the route serves this model's kind."""
        self.kind.refuse(self, route)


class WrongKind(ValueError):
    """A route asked of a model whose kind it does not serve (a translation model sampled, say)."""


class ModelKind:
    """One way of serving versions. Subclasses set the class attributes and write load()."""
    name: str
    makes: tuple[str, ...]  # the card kinds (outputs) this kind serves
    routes: tuple[str, ...]  # the routes that serve its models: samples, datasets, translate
    hint: str  # what to call instead, for a route it does not serve ({name}: the model's name)

    def load(self, name: str, version: int, path: Path, card: Card, threads: int, cores: int | None,
             providers: tuple[str, ...] = PROVIDERS) -> Model:
        raise NotImplementedError

    def refuse(self, model: Model, route: str) -> None:
        if route not in self.routes:
            raise WrongKind(f"model: {model.name!r} makes {model.card.kind}; {self.hint.format(name=model.name)}")


KINDS: dict[str, ModelKind] = {}


def register(kind: ModelKind) -> ModelKind:
    KINDS[kind.name] = kind
    return kind


def kind_of(card: Card) -> ModelKind:
    """The kind that serves a card's output."""
    return next(kind for kind in KINDS.values() if card.kind in kind.makes)


def routes_of(card: Card) -> tuple[str, ...]:
    return kind_of(card).routes


from service.repository.kinds import sampling, translation  # noqa: E402  (they import this module)

register(sampling.Sampling())
register(translation.Translation())
