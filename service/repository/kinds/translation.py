"""translation: two domains, each with a generator into the other (`image` -> `translated`) and a critic of
its own images (`image` -> `score`), as the card's `domains` name them; served by /translate."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from service.repository.card import Card, CardError, expect, fits
from service.repository.kinds import Model, ModelKind
from service.repository.sessions import PROVIDERS, Network


class Translation(ModelKind):
    name = "translation"
    makes = ("translation",)
    routes = ("translate",)
    hint = "it has no latents to sample (POST /v1/models/{name}/translate translates images)"

    def load(self, name: str, version: int, path: Path, card: Card, threads: int, cores: int | None,
             providers: tuple[str, ...] = PROVIDERS) -> Model:
        networks = {}
        for file in card.domains.files():
            if not (path / file).is_file():
                raise CardError(f"card.domains: names {file}, which the version's folder does not hold")
            networks[file] = Network(str(path / file), threads, cores, providers)
        check(card, networks)
        probe(card, networks)
        return Model(name=name, version=version, path=path, card=card, generator=None, discriminator=None,
                     networks=networks)


def check(card: Card, sessions: dict) -> None:
    """CardError unless each network takes and gives images of its domain's shape (and D one score)."""
    for key in ("a", "b"):
        source, target = getattr(card.domains, key), getattr(card.domains, "b" if key == "a" else "a")
        for role, session, output in (("generator", sessions[source.generator], "translated"),
                                      ("discriminator", sessions[source.discriminator], "score")):
            field = f"domains.{key}.{role}"
            inputs, outputs = session.get_inputs(), session.get_outputs()
            expect([i.name for i in inputs] == ["image"], field,
                   f"{getattr(source, role)} takes {[i.name for i in inputs]}, not one input `image`")
            expect(fits(inputs[0].shape[1:], source.shape), f"domains.{key}.shape",
                   f"the card says {source.shape}, {getattr(source, role)} takes {list(inputs[0].shape[1:])}")
            expect(outputs[0].name == output, field, f"{getattr(source, role)} gives `{outputs[0].name}`, "
                   f"not `{output}`")
            if role == "generator":
                expect(fits(outputs[0].shape[1:], target.shape), f"domains.{'b' if key == 'a' else 'a'}.shape",
                       f"the card says {target.shape}, {source.generator} gives {list(outputs[0].shape[1:])}")


def probe(card: Card, networks: dict) -> None:
    """Run each generator on two blank images of its domain, and the other domain's D on what it gives."""
    low, high = card.value_range
    for key, other in (("a", "b"), ("b", "a")):
        source, target = getattr(card.domains, key), getattr(card.domains, other)
        try:
            out = networks[source.generator].run(None, {"image": np.full((2, *source.shape), low, np.float32)})[0]
            score = networks[target.discriminator].run(None, {"image": out})[0]
        except Exception as exc:
            raise CardError(f"card.domains.{key}: its networks refuse images of shape {source.shape} "
                            f"({type(exc).__name__})") from None
        if list(out.shape) != [2, *target.shape]:
            raise CardError(f"card.domains.{other}.shape: the card says {target.shape}, {source.generator} gives "
                            f"{list(out.shape[1:])}")
        if out.min() < low - 1e-3 or out.max() > high + 1e-3:
            raise CardError(f"card.value_range: the card says [{low}, {high}], {source.generator} gives "
                            f"[{out.min():.3g}, {out.max():.3g}]")
        if score.shape != (2,):
            raise CardError(f"card.domains.{other}.discriminator: gives scores of shape {list(score.shape[1:])} per "
                            "image, not one")
