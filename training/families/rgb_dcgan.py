"""rgb-dcgan: colour (or grey) images of any size from 28 to 128 px from a user's data (the CIFAR-10 one-class
DCGAN write-up)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.config import param
from training.families import parts
from training.families.base import Memory, SamplingFamily

REFERENCE = ("Dense 4·4·256 → 3 × convT 128 s2 (LeakyReLU 0.2) → conv 3 tanh / conv 64 → 128 s2 → 128 s2 → "
             "256 s2 → dropout 0.4 → 1; Adam(2e-4, 0.5); label smoothing 0.9")
CHANGES = ("channels sized for 2 CPU cores (G 128 → 64 → 64 → 32, D 32 → 64 → 64 → 128 by default); BN in G; "
           "the image size a parameter (a multiple of 8: three doublings from size/8; other multiples of 4, e.g. "
           "28: two from size/4) and the channels (1 or 3); DiffAugment as an option; lr decay over the last half; "
           "EMA (0.999) of G served")


@dataclass
class Config:
    latent_dim: int = param(100, 1, 512, "size of the normal latent vector z")
    image_size: int = param(32, 8, 128, "side of the square images, a multiple of 4 (28, 32, 64, 128); the data is "
                                        "resized to it")
    channels: int = param(3, 1, 3, "1 (grey) or 3 (RGB); the data is converted to it")
    g_channels: int = param(128, 4, 1024, "channels of G's first stage")
    d_channels: int = param(32, 1, 512, "channels of D's first convolution")
    batch_size: int = param(64, 2, 1024, "real (and fake) images per step; at least 2, "
                                                    "as G's batch norm needs")
    lr: float = parts.lr(2e-4)
    beta1: float = parts.beta1()
    lr_decay: float = parts.lr_decay(0.5)
    ema: float = parts.ema()
    label_smoothing: float = parts.label_smoothing(0.9)
    latent: str = parts.latent("normal")
    diffaugment: str = parts.diffaugment()

    def __post_init__(self):
        parts.check_image_config(self)


class Generator(parts.ConvGenerator):
    def __init__(self, cfg: Config):
        super().__init__(cfg)


class Discriminator(parts.ConvDiscriminator):
    def __init__(self, cfg: Config):
        super().__init__(cfg)


class RgbDcgan(SamplingFamily):
    name = "rgb-dcgan"
    KIND = "image"
    LABELS = None
    DEFAULT_STEPS = 5_000
    GATE = []  # no data of its own: gated on the measures of whatever data it ran on (evaluate.gate_of)
    DEFAULT_DATA = False
    Config, Generator, Discriminator = Config, Generator, Discriminator  # this file's, above

    def memory(self) -> Memory:
        return parts.conv_memory()

    def real_batches(self, cfg: Config, source: str, rng: np.random.Generator):
        """Endless random batches of the data's images (labels unused), resized and converted."""
        if source == "default":
            raise ValueError("family rgb-dcgan has no offline default data; data must be an image folder "
                             "(one sub-folder per class), an .npz or IDX file, an upload, or mnist / uci")
        return parts.image_batches(cfg, source, rng, labelled=False)

    def card(self, cfg: Config) -> dict:
        """What the service needs to know to serve this family's samples."""
        return {"sample_shape": [cfg.channels, cfg.image_size, cfg.image_size], "value_range": [-1.0, 1.0],
                "reference": REFERENCE, "changes": CHANGES}
