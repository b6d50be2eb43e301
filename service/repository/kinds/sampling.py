"""sampling: a generator of latents (z [+ label] -> sample) and, optionally, its discriminator (sample [+ label]
-> score): points, curves and images, served by /samples and /datasets."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from service.repository.card import Card, CardError, expect, fits
from service.repository.kinds import Model, ModelKind
from service.repository.sessions import PROVIDERS, Network


class Sampling(ModelKind):
    name = "sampling"
    makes = ("points", "curves", "image")
    routes = ("samples", "datasets")
    hint = "it translates nothing (POST /v1/models/{name}/samples samples it)"

    def load(self, name: str, version: int, path: Path, card: Card, threads: int, cores: int | None,
             providers: tuple[str, ...] = PROVIDERS) -> Model:
        generator = Network(str(path / "generator.onnx"), threads, cores, providers)
        d_path = path / "discriminator.onnx"
        discriminator = Network(str(d_path), threads, cores, providers) if d_path.exists() else None
        check(card, generator, discriminator)
        probe(card, generator, discriminator)
        return Model(name=name, version=version, path=path, card=card, generator=generator,
                     discriminator=discriminator)


def check(card: Card, generator, discriminator=None) -> None:
    """CardError unless the ONNX sessions take and give what the card says."""
    conditional = card.labels is not None
    g_inputs = {i.name: i for i in generator.get_inputs()}
    expect(set(g_inputs) == ({"z", "label"} if conditional else {"z"}), "labels",
           f"the generator's inputs are {sorted(g_inputs)}, but the card "
           f"{'lists labels' if conditional else 'lists no labels'}")
    width = g_inputs["z"].shape[-1]
    expect(not isinstance(width, int) or width == card.latent.dim, "latent.dim",
           f"the card says {card.latent.dim}, the generator takes z of width {width}")
    out = generator.get_outputs()[0].shape[1:]
    expect(fits(out, card.sample_shape), "sample_shape",
           f"the card says {card.sample_shape}, the generator gives {list(out)}")
    if discriminator is not None:
        d_inputs = {i.name: i for i in discriminator.get_inputs()}
        expect(set(d_inputs) == ({"sample", "label"} if conditional else {"sample"}), "labels",
               f"the discriminator's inputs are {sorted(d_inputs)}, but the card "
               f"{'lists labels' if conditional else 'lists no labels'}")
        expect(fits(d_inputs["sample"].shape[1:], card.sample_shape), "sample_shape",
               f"the card says {card.sample_shape}, the discriminator takes {list(d_inputs['sample'].shape[1:])}")


def probe(card: Card, generator, discriminator) -> None:
    """Run the networks on two latents, with the first and the last label, as the service will.

    Catches what the graph's declared shapes cannot: a card listing more labels than G embeds, a
    sample shape or value range the outputs contradict, a D that does not score one logit each.
    """
    z = np.zeros((2, card.latent.dim), np.float32)
    feed = {"z": z}
    if card.labels is not None:
        feed["label"] = np.array([0, len(card.labels) - 1], np.int64)
    try:
        out = generator.run(None, feed)[0]
    except Exception as exc:
        field = "labels" if card.labels is not None else "latent"
        raise CardError(f"card.{field}: the generator refuses the card's inputs ({type(exc).__name__})") from None
    if list(out.shape) != [2, *card.sample_shape]:
        raise CardError(f"card.sample_shape: the card says {card.sample_shape}, the generator gives "
                        f"{list(out.shape[1:])}")
    low, high = card.value_range
    if card.images and (out.min() < low - 1e-3 or out.max() > high + 1e-3):
        raise CardError(f"card.value_range: the card says [{low}, {high}], the generator gives "
                        f"[{out.min():.3g}, {out.max():.3g}]")
    if discriminator is not None:
        d_feed = {"sample": out} if card.labels is None else {"sample": out, "label": feed["label"]}
        score = discriminator.run(None, d_feed)[0]
        if score.shape != (2,):
            raise CardError(f"card: the discriminator gives scores of shape {list(score.shape[1:])} per sample, "
                            "not one logit")
