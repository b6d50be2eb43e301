"""The family protocol: what a family file must declare, and the default of everything it may leave out.

A family is one file: its Config, Generator and Discriminator at the top, then one class that subclasses
SamplingFamily (a GAN of latents z: points, curves, images) or TranslationFamily (image to image, served
through /translate) and names them, registered by one line in training/families/__init__.py. The abstract
members below are required: a family class without one fails at registration, naming what it lacks.
Every other member has its default here and is overridden by defining it in the family's class. The
trainer, the exporter and the evaluator ask the family; nothing looks members up by name.

Every family's Config has the one optimiser config: lr, beta1, lr_decay and ema (parts.lr, parts.beta1, ...,
each family with its own defaults), read by OptimizerConfig and nowhere else.
"""
from __future__ import annotations

import dataclasses
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from training import evaluate as evaluation
from training.evaluate import Measures

BETA2 = 0.999  # Adam's β2, every family's
SAMPLING_KINDS = ("points", "curves", "image")  # a translation family's KIND is "translation"
OPTIMIZER_PARAMS = ("lr", "beta1", "lr_decay", "ema")
LATENT_PARAMS = ("latent_dim", "latent", "label_smoothing")  # what a sampling family's default step reads


@dataclass(frozen=True)
class OptimizerConfig:
    """How both networks are optimised, read from a family's Config: the one place lr, β, EMA and decay are read."""
    lr: float
    betas: tuple[float, float]
    ema: float  # decay of an exponential moving average of G's weights, the G served; 0: off
    lr_decay: float  # share of the steps at the end over which lr decays linearly to 0

    @classmethod
    def of(cls, cfg) -> "OptimizerConfig":
        return cls(lr=cfg.lr, betas=(cfg.beta1, BETA2), ema=cfg.ema, lr_decay=cfg.lr_decay)


@dataclass
class Graph:
    """One ONNX file to export: a module, example inputs (also the batch onnxruntime is checked on), the names."""
    file: str
    module: nn.Module
    inputs: tuple[torch.Tensor, ...]
    input_names: list[str]
    output: str


class Scorer(nn.Module):
    """A network wrapped as the exporter has always wrapped D: its ONNX weights are named "D.<parameter>"
    (training/warm.py reads them back by that prefix)."""

    def __init__(self, D: nn.Module):
        super().__init__()
        self.D = D

    def forward(self, *inputs):
        return self.D(*inputs)


@dataclass(frozen=True)
class Memory:
    """What a job of a family holds, as arithmetic over its Config's params (names, numbers, + - * / // % **,
    comparisons, `x if c else y`, `or`): an upper bound of G's and D's weights together, of the activations (floats)
    every module outputs in one training step (a sampling family's G runs twice, its D three times), batch
    included, and of the floats one image takes at the family's size (its training data and its evaluation hold
    images). The catalog carries them,
    so the API estimates a job's memory without torch (service/jobs/memory.py; the bytes each costs:
    training/memory.py)."""
    weights: str
    activations: str
    image: str = "0"  # a family that draws its own data holds no images


def sample_latent(cfg, n: int, generator: torch.Generator) -> torch.Tensor:
    """Latents for training, from the family's latent distribution (cfg.latent, cfg.latent_dim)."""
    if cfg.latent == "uniform":
        return torch.rand(n, cfg.latent_dim, generator=generator) * 2 - 1  # (n, latent_dim)
    return torch.randn(n, cfg.latent_dim, generator=generator)


class Family(ABC):
    """What every family declares, and the hooks both protocols share."""

    @property
    @abstractmethod
    def name(self) -> str:
        """The family's name in FAMILIES, job requests and cards, e.g. "mnist-dcgan"."""

    @property
    @abstractmethod
    def KIND(self) -> str:
        """How its models are served: "points", "curves", "image" (sampling) or "translation"."""

    @property
    @abstractmethod
    def LABELS(self) -> list[str] | None:
        """The label names a conditional family's G and D take (label i is LABELS[i]); None: unconditional."""

    @property
    @abstractmethod
    def DEFAULT_STEPS(self) -> int:
        """Training steps when a job names none."""

    @property
    @abstractmethod
    def GATE(self) -> list[tuple[str, str, float]]:
        """(metric, "<=" or ">=", limit) bars a new version's metrics must pass to become the default; [] passes."""

    @property
    @abstractmethod
    def Config(self) -> type:
        """A dataclass of param() fields whose defaults work; it has the optimiser's lr, beta1, lr_decay, ema."""

    @property
    @abstractmethod
    def Generator(self) -> type[nn.Module]:
        """G, built from a Config."""

    @property
    @abstractmethod
    def Discriminator(self) -> type[nn.Module]:
        """D, built from a Config."""

    @abstractmethod
    def real_batches(self, cfg, source, rng: np.random.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        """Endless training batches from a data source: (samples, labels or None); a translation family's (a, b)."""

    # Optional, with defaults.
    EPOCH_SIZE: int | None = None  # training samples in an epoch, for progress reports; None: no epochs
    SYNTHETIC = False  # draws fresh data of its own every step (data "default"): nothing to fingerprint
    DEFAULT_DATA = True  # trains on data "default"; False: a job must name its data (the API refuses "default")

    @property
    def description(self) -> str:
        """One line on what the family learns: its file's docstring (cards and the catalog show it)."""
        return (sys.modules[type(self).__module__].__doc__ or "").strip()

    @property
    def conditional(self) -> bool:
        """Whether G and D take labels: a family with LABELS, or one whose labels come from its data."""
        return bool(self.LABELS)

    def labels(self, cfg) -> list[str] | None:
        """The label names of a run's G and D (the card's labels): LABELS unless the family takes them from data."""
        return list(self.LABELS) if self.LABELS else None

    def configure(self, cfg, source):
        """The Config completed from the data before G and D are built (e.g. a class count); default: as it is."""
        return cfg

    def sources(self, source):
        """The data the run reads, as the card's lineage fingerprints it (a translation family's per domain)."""
        return source

    def optimizers(self, cfg, G: nn.Module, D: nn.Module) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        """(G's, D's) optimiser: Adam with the family's OptimizerConfig."""
        opt = OptimizerConfig.of(cfg)
        return (torch.optim.Adam(G.parameters(), lr=opt.lr, betas=opt.betas),
                torch.optim.Adam(D.parameters(), lr=opt.lr, betas=opt.betas))

    def memory(self) -> Memory:
        """How the family's weights and activations grow with its params. Default: the weights of G and D at the
        Config's defaults, counted, and no activations; a family whose sizes follow its params says how."""
        cfg = self.configure(self.Config(), "default")
        counted = sum(p.numel() for net in (self.Generator(cfg), self.Discriminator(cfg)) for p in net.parameters())
        return Memory(weights=str(counted), activations="0")

    def d_refine(self, cfg) -> int:
        """Steps training D alone against the served G after training (trainer.refine_discriminator); 0: none."""
        return 0

    def standing_stats(self, G: nn.Module, cfg, seed: int) -> nn.Module:
        """The served G with its normalisation statistics re-estimated for its own weights; default: as it is."""
        return G

    @abstractmethod
    def train_step(self, cfg, G, D, opt_g, opt_d, batch, gen: torch.Generator) -> dict:
        """One step on one batch; returns n, loss_d, loss_g, acc_real, acc_fake and optionally `extra` (more losses)."""

    @abstractmethod
    def snapshot(self, G: nn.Module, cfg, source, seed: int) -> np.ndarray:
        """(16, ...) samples for a progress picture, the same inputs at every snapshot of a run."""

    @abstractmethod
    def card_fields(self, cfg, source) -> dict:
        """The card's keys this family writes (latent, shapes, value range, picture, reference, changes, ...)."""

    @abstractmethod
    def graphs(self, cfg, G: nn.Module, D: nn.Module) -> list[Graph]:
        """The ONNX files a version holds, with the names of the contract the service reads them by."""

    @abstractmethod
    def evaluate(self, model, n: int, seed: int, modes) -> dict:
        """The card's metrics, measured on the exported model (a service Model) as it is served."""

    def picture(self, cfg) -> dict | None:
        """How a plot of its samples is drawn (the card's `picture`): what job snapshots are drawn over."""
        return None

    def gate(self, card) -> list[tuple[str, str, float]]:
        """The bars a new version (its card) must pass to become the default: GATE by default."""
        return list(self.GATE)

    @property
    @abstractmethod
    def measures(self) -> Measures | None:
        """How samples are measured per sampling mode (training/evaluate.py); None: measured otherwise."""


class SamplingFamily(Family):
    """A GAN of latents: G takes z (n, latent_dim) [+ label (n,)] and gives samples; D takes samples [+ label]
    and gives a logit (n,). Its Config also has latent_dim, latent ("normal" or "uniform") and label_smoothing.

    Required beyond Family's: card(cfg). The default step is the classic one: D on real (smoothed targets)
    against fake, then G with the non-saturating loss; its losses and extras are hooks below.
    """

    @abstractmethod
    def card(self, cfg) -> dict:
        """sample_shape, value_range and the family's own keys (a points or curves family: its picture)."""

    def picture(self, cfg) -> dict | None:
        """How a plot of its samples is drawn (the card's `picture`): what job snapshots are drawn over."""
        return self.card(cfg).get("picture")

    @property
    def measures(self) -> Measures:
        """The measures of any model of this kind; a family that knows better names its own."""
        return evaluation.GENERIC[self.KIND]

    def codes(self, cfg) -> int:
        """Clusters a coded G picks by z's first coordinate (parts.LatentCode); 0: none."""
        return 0

    def generator_batch(self, cfg, n: int) -> int:
        """Samples in G's half of a step, given D's batch of n."""
        return n

    def discriminator_loss(self, d_real: torch.Tensor, d_fake: torch.Tensor, real_target: float) -> torch.Tensor:
        """D's loss on its logits for real and fake samples, real ones aimed at real_target (< 1: smoothed)."""
        return (F.binary_cross_entropy_with_logits(d_real, torch.full_like(d_real, real_target))
                + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))

    def generator_loss(self, d_fake: torch.Tensor) -> torch.Tensor:
        """G's loss on D's logits for its samples: the non-saturating loss (flipped labels)."""
        return F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))

    def aux_loss(self, cfg, D, images: torch.Tensor, labels, real: bool) -> torch.Tensor:
        """An auxiliary loss added to D's (real images) and to G's (its fakes); default none."""
        return images.new_zeros(())

    def g_penalty(self, cfg, G, z: torch.Tensor, labels, fake: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """A regulariser of G alone, added to its loss; default none."""
        return fake.new_zeros(())

    def generate(self, G: nn.Module, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """G's samples for z, and for a conditional family their labels."""
        return G(z, labels) if self.conditional else G(z)

    def random_labels(self, cfg, n: int, gen: torch.Generator) -> torch.Tensor | None:
        """Labels drawn uniformly for G's samples; None for an unconditional family."""
        names = self.labels(cfg)
        return torch.randint(len(names), (n,), generator=gen) if names else None

    def train_step(self, cfg, G, D, opt_g, opt_d, batch, gen: torch.Generator) -> dict:
        """D on real and fake, then G, each with its own batch of latents."""
        real, labels = batch  # labels: the data's, or for a coded family each image's cluster
        coded = self.codes(cfg) > 0  # an unconditional G with a cluster code (see parts.LatentCode)
        n = real.shape[0]
        # Discriminator: real (smoothed targets) against detached fakes.
        z = sample_latent(cfg, n, gen)
        fake = self.generate(G, z, labels)
        fake_labels = G.code.index(z) if coded else labels  # a coded G's cluster comes from its latent
        d_real = D(real, labels) if labels is not None else D(real)
        d_fake = D(fake.detach(), fake_labels) if labels is not None else D(fake.detach())
        loss_d = self.discriminator_loss(d_real, d_fake, cfg.label_smoothing)
        loss_d = loss_d + self.aux_loss(cfg, D, real, labels, real=True)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        # Generator: on its own batch.
        m = self.generator_batch(cfg, n)
        z = sample_latent(cfg, m, gen)
        g_labels = self.random_labels(cfg, m, gen)
        fake = self.generate(G, z, g_labels)
        g_labels = G.code.index(z) if coded else g_labels
        g_out = D(fake, g_labels) if g_labels is not None else D(fake)
        loss_g = self.generator_loss(g_out)
        loss_g = loss_g + self.aux_loss(cfg, D, fake, g_labels, real=False)
        loss_g = loss_g + self.g_penalty(cfg, G, z, g_labels, fake, gen)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        return {"n": n, "loss_d": loss_d.item(), "loss_g": loss_g.item(),
                "acc_real": float((d_real > 0).float().mean()), "acc_fake": float((d_fake < 0).float().mean())}

    @torch.no_grad()
    def snapshot(self, G: nn.Module, cfg, source, seed: int) -> np.ndarray:
        """16 samples of fixed latents (labels 0, 1, ... in turn)."""
        z = sample_latent(cfg, 16, torch.Generator().manual_seed(seed + 1))
        names = self.labels(cfg)
        labels = torch.arange(16) % len(names) if names else None
        was_training = G.training
        G.eval()
        out = self.generate(G, z, labels).numpy()
        G.train(was_training)
        return out

    @torch.no_grad()
    def standing_stats(self, G: nn.Module, cfg, seed: int, batches: int = 16, n: int = 256) -> nn.Module:
        """Re-estimate G's batch-norm statistics for its own (EMA) weights; a no-op without batch norm.

        The EMA copy's running statistics are those of the raw G's recent, different weights, and even
        the raw G's are a lagging average; averaging over fresh batches of the served weights themselves
        fixes both ("standing statistics", as in BigGAN). Its own seeded generator: the training streams
        are untouched, so a resumed run stays the same run.
        """
        norms = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not norms:
            return G
        gen = torch.Generator().manual_seed(seed + 2)
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the batches below
        G.train()
        for _ in range(batches):
            z = sample_latent(cfg, n, gen)
            self.generate(G, z, self.random_labels(cfg, n, gen))
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        return G.eval()

    def card_fields(self, cfg, source) -> dict:
        codes = self.codes(cfg)
        latent = {"dim": cfg.latent_dim, "distribution": cfg.latent, **({"codes": codes} if codes else {})}
        return {"latent": latent, **self.card(cfg)}

    def graphs(self, cfg, G: nn.Module, D: nn.Module) -> list[Graph]:
        """generator.onnx: z [+ label] -> sample; discriminator.onnx: sample [+ label] -> score (n,), a logit."""
        z = sample_latent(cfg, 4, torch.Generator().manual_seed(0))
        label_names = self.labels(cfg)
        labels = torch.arange(4) % len(label_names) if label_names else None
        with torch.no_grad():
            sample = self.generate(G, z, labels)
        extra, names = ((labels,), ["label"]) if labels is not None else ((), [])
        # eval() on the wrapper too: the ONNX exporter restores the wrapper's mode afterwards, and a
        # wrapper left in training mode would switch D's dropout back on for the check after it.
        return [Graph("generator.onnx", G, (z, *extra), ["z", *names], "sample"),
                Graph("discriminator.onnx", Scorer(D).eval(), (sample, *extra), ["sample", *names], "score")]

    def evaluate(self, model, n: int, seed: int, modes) -> dict:
        """Per sampling mode; an image model against its own data's held-out split (evaluate.measures_of)."""
        return evaluation.per_mode(model, evaluation.measures_of(model.card, n), n, seed, modes)

    def gate(self, card) -> list[tuple[str, str, float]]:
        """GATE; for an image family, bars on its own data's measures unless it ran on the data GATE is written
        for (evaluate.gate_of)."""
        return evaluation.gate_of(card, self)


class TranslationFamily(Family):
    """Image to image between two domains a and b, served through /translate: G holds both directions and D
    both domains' critics. Required beyond Family's: networks, card(cfg, source), train_step, snapshot, evaluate.
    """
    KIND = "translation"
    LABELS = None  # labels are never used
    measures = None  # measured per direction, by evaluate()

    @abstractmethod
    def networks(self, cfg, G: nn.Module, D: nn.Module) -> dict[str, nn.Module]:
        """Each ONNX file's network by the file's stem, as the card's domains name them."""

    @abstractmethod
    def card(self, cfg, source) -> dict:
        """The card's domains (name, shape, generator and discriminator files) from the data trained on, and more."""

    def card_fields(self, cfg, source) -> dict:
        return {"latent": None, **self.card(cfg, source)}

    def graphs(self, cfg, G: nn.Module, D: nn.Module) -> list[Graph]:
        """Each domain's generator (image -> translated) and discriminator (image -> score (n,))."""
        networks = self.networks(cfg, G, D)
        gen = torch.Generator().manual_seed(0)
        out = []
        for domain in self.card(cfg, "default")["domains"].values():  # a, then b
            image = torch.rand(4, *domain["shape"], generator=gen) * 2 - 1  # (4, c, h, w) in [-1, 1]
            for file, output in ((domain["generator"], "translated"), (domain["discriminator"], "score")):
                module = Scorer(networks[file.removesuffix(".onnx")]).eval()
                out.append(Graph(file, module, (image,), ["image"], output))
        return out


def register(*classes: type[Family]) -> dict[str, Family]:
    """One instance of each family class by its name; TypeError names what a family lacks or gets wrong."""
    families: dict[str, Family] = {}
    for cls in classes:
        missing = sorted(cls.__abstractmethods__)
        if missing:
            raise TypeError(f"family {cls.__name__} ({cls.__module__}) lacks required members {missing}; "
                            "see training/families/base.py")
        family = cls()
        check(family)
        if family.name in families:
            raise TypeError(f"family {cls.__name__}: the name {family.name!r} is taken")
        families[family.name] = family
    return families


def check(family: Family) -> None:
    """TypeError unless a family's declarations fit the protocol (its kind, gate and Config's fields)."""
    label = f"family {family.name!r}"
    if isinstance(family, SamplingFamily) and family.KIND not in SAMPLING_KINDS:
        raise TypeError(f"{label}: KIND must be one of {SAMPLING_KINDS}, got {family.KIND!r}")
    if not dataclasses.is_dataclass(family.Config):
        raise TypeError(f"{label}: Config must be a dataclass")
    fields = {f.name for f in dataclasses.fields(family.Config)}
    needed = OPTIMIZER_PARAMS + (LATENT_PARAMS if isinstance(family, SamplingFamily) else ())
    lacking = [name for name in needed if name not in fields]
    if lacking:
        raise TypeError(f"{label}: Config lacks {lacking} (every family's: {list(OPTIMIZER_PARAMS)}; "
                        f"a sampling family's: {list(LATENT_PARAMS)})")
    for bar in family.GATE:
        if len(bar) != 3 or bar[1] not in ("<=", ">="):
            raise TypeError(f"{label}: GATE bars are (metric, '<=' or '>=', limit), got {bar!r}")
