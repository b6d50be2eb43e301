"""rgb-dcgan: 3×32×32 colour images from a user's image folder (the CIFAR-10 one-class DCGAN write-up)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from training import data
from training.config import param
from training.families import parts
from training.families.base import SamplingFamily

REFERENCE = ("Dense 4·4·256 → 3 × convT 128 s2 (LeakyReLU 0.2) → conv 3 tanh / conv 64 → 128 s2 → 128 s2 → "
             "256 s2 → dropout 0.4 → 1; Adam(2e-4, 0.5); label smoothing 0.9")
CHANGES = ("channels sized for 2 CPU cores (G 128 → 64 → 64 → 32, D 32 → 64 → 64 → 128 by default); BN in G; "
           "the image size a parameter (a multiple of 8); lr decay over the last half; EMA (0.999) of G served")


@dataclass
class Config:
    latent_dim: int = param(100, 1, 512, "size of the normal latent vector z")
    image_size: int = param(32, 8, 128, "side of the square images, a multiple of 8; folders are resized to it")
    g_channels: int = param(128, 4, 1024, "channels of G's first (size/8) stage")
    d_channels: int = param(32, 1, 512, "channels of D's first convolution")
    batch_size: int = param(64, 1, 1024, "real (and fake) images per step")
    lr: float = parts.lr(2e-4)
    beta1: float = parts.beta1()
    lr_decay: float = parts.lr_decay(0.5)
    ema: float = parts.ema()
    label_smoothing: float = parts.label_smoothing(0.9)
    latent: str = parts.latent("normal")

    def __post_init__(self):
        if self.image_size % 8:
            raise ValueError(f"params.image_size must be a multiple of 8, got {self.image_size}")


class Generator(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        c, self.start = cfg.g_channels, cfg.image_size // 8
        self.c = c
        self.project = nn.Sequential(nn.Linear(cfg.latent_dim, c * self.start**2, bias=False),
                                     nn.BatchNorm1d(c * self.start**2), nn.LeakyReLU(0.2))
        widths = [c, c // 2, c // 2, c // 4]
        layers = []
        for a, b in zip(widths, widths[1:]):  # each doubles the side: size/8 → size
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.LeakyReLU(0.2)]
        self.up = nn.Sequential(*layers, nn.Conv2d(widths[-1], 3, 3, padding=1), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(z).view(-1, self.c, self.start, self.start)  # (n, c, size/8, size/8)
        return self.up(h)  # (n, 3, size, size)


class Discriminator(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        c, side = cfg.d_channels, cfg.image_size // 8
        self.net = nn.Sequential(
            nn.Conv2d(3, c, 3, padding=1), nn.LeakyReLU(0.2),  # (n, c, size, size)
            nn.Conv2d(c, 2 * c, 4, 2, 1), nn.LeakyReLU(0.2),  # (n, 2c, size/2, size/2)
            nn.Conv2d(2 * c, 2 * c, 4, 2, 1), nn.LeakyReLU(0.2),  # (n, 2c, size/4, size/4)
            nn.Conv2d(2 * c, 4 * c, 4, 2, 1), nn.LeakyReLU(0.2),  # (n, 4c, size/8, size/8)
            nn.Flatten(), nn.Dropout(0.4), nn.Linear(4 * c * side * side, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)  # (n,) logits


class RgbDcgan(SamplingFamily):
    name = "rgb-dcgan"
    KIND = "image"
    LABELS = None
    DEFAULT_STEPS = 5_000
    # No gate: the project has no quality measure for a user's RGB folders (pixel statistics, the generic measures).
    GATE = []
    Config, Generator, Discriminator = Config, Generator, Discriminator  # this file's, above

    def real_batches(self, cfg: Config, source: str, rng: np.random.Generator):
        """Endless random batches of RGB images from the user's folder (or array file), resized."""
        if source in ("default", "mnist"):
            raise ValueError("family rgb-dcgan has no offline default data; data must be an image folder "
                             "(one sub-folder per class) or an .npz of RGB images")
        images, _ = data.load_images(source, size=cfg.image_size, channels=3)
        for x, _ in data.batches(images, None, cfg.batch_size, rng):
            yield torch.from_numpy(x), None

    def card(self, cfg: Config) -> dict:
        """What the service needs to know to serve this family's samples."""
        return {"sample_shape": [3, cfg.image_size, cfg.image_size], "value_range": [-1.0, 1.0],
                "reference": REFERENCE, "changes": CHANGES}
