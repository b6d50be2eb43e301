"""image-cgan: label-conditioned images of any size from 28 to 128 px, grey or colour, the labels from the data
(class folders, or an npz's y): rgb-dcgan's networks with the label joined to z and a projection term in D."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training import data
from training.config import param
from training.families import parts
from training.families.base import Memory, SamplingFamily

REFERENCE = ("the conditional GAN write-ups (mnist-cgan's): one-hot label joined to z in G; the label joined to D's "
             "input")
CHANGES = ("rgb-dcgan's networks (size and channels parameters; BN LeakyReLU G, strided LeakyReLU D); in D a "
           "projection term ⟨embed(label), features⟩ (Miyato & Koyama 2018) instead of label planes, which cost a "
           "plane per class at every size; the class count read from the data; DiffAugment an option (off by "
           "default: docs/experiments/diffaugment.md)")


@dataclass
class Config:
    latent_dim: int = param(100, 1, 512, "size of the normal latent vector z")
    image_size: int = param(32, 8, 128, "side of the square images, a multiple of 4 (28, 32, 64, 128); the data is "
                                        "resized to it")
    channels: int = param(3, 1, 3, "1 (grey) or 3 (RGB); the data is converted to it")
    classes: int = param(0, 0, 1000, "labels G and D take; 0: as many as the data has")
    g_channels: int = param(128, 4, 1024, "channels of G's first stage")
    d_channels: int = param(32, 1, 512, "channels of D's first convolution")
    batch_size: int = param(64, 2, 1024, "real (and fake) images per step; at least 2, "
                                                    "as G's batch norm needs")
    lr: float = parts.lr(2e-4)
    beta1: float = parts.beta1()
    lr_decay: float = parts.lr_decay(0.5)
    ema: float = parts.ema()
    label_smoothing: float = parts.label_smoothing(1.0)
    latent: str = parts.latent("normal")
    diffaugment: str = parts.diffaugment()

    def __post_init__(self):
        parts.check_image_config(self)


class Generator(parts.ConvGenerator):
    def __init__(self, cfg: Config):
        super().__init__(cfg, classes=cfg.classes)


class Discriminator(parts.ConvDiscriminator):
    def __init__(self, cfg: Config):
        super().__init__(cfg, classes=cfg.classes)


class ImageCgan(SamplingFamily):
    name = "image-cgan"
    KIND = "image"
    LABELS = None  # the data's: labels(cfg)
    DEFAULT_STEPS = 5_000
    GATE = []  # gated on the measures of the data it ran on (evaluate.gate_of)
    Config, Generator, Discriminator = Config, Generator, Discriminator  # this file's, above

    def memory(self) -> Memory:
        # classes 0 takes the data's count: counted as the most an upload may have (max_upload_classes)
        return parts.conv_memory("(classes or 1000)")

    @property
    def conditional(self) -> bool:
        return True

    def labels(self, cfg: Config) -> list[str]:
        return [str(i) for i in range(cfg.classes)]

    def configure(self, cfg: Config, source) -> Config:
        """The class count from the data's labels when params.classes is 0."""
        if cfg.classes:
            return cfg
        _, labels = data.training_images(source, size=cfg.image_size, channels=cfg.channels)
        if labels is None:
            raise ValueError(f"family image-cgan needs labels; data {source!r} has none (npz y, class folders)")
        cfg.classes = int(labels.max()) + 1
        return cfg

    def real_batches(self, cfg: Config, source: str, rng: np.random.Generator):
        """Endless random batches of the data's labelled images, resized and converted."""
        batches = parts.image_batches(cfg, source, rng, labelled=True)
        first = next(batches)
        if int(first[1].max()) >= cfg.classes:
            raise ValueError(f"params.classes: {cfg.classes} is too few, data {source!r} has label "
                             f"{int(first[1].max())}")
        yield first
        yield from batches

    def card(self, cfg: Config) -> dict:
        """What the service needs to know to serve this family's samples."""
        return {"sample_shape": [cfg.channels, cfg.image_size, cfg.image_size], "value_range": [-1.0, 1.0],
                "reference": REFERENCE, "changes": CHANGES}
