"""curves-cgan: the curves a·x² + (a − 1), conditioned on label 1 = "upper" (a > 1.5) or 0 = "lower"."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from training import data
from training.config import param

KIND = "curves"
LABELS = ["lower", "upper"]
DEFAULT_STEPS = 10_000
POINTS = 15

REFERENCE = "the label appended to both inputs: z 5 + label → 128 ReLU → 15 / 15 + label → 128 ReLU → 1; Adam 1e-4"
CHANGES = ("latent 2-D instead of 5; the label enters both nets as a one-hot pair rather than one number; "
           "Adam lr 1e-3 (β1 0.5) with linear decay over the last 60 % of steps; EMA (0.999) of G served")


@dataclass
class Config:
    latent_dim: int = param(2, 1, 256, "size of the normal latent vector z (reference: 5)")
    hidden: int = param(128, 1, 2048, "hidden units of G and D")
    batch_size: int = param(64, 1, 4096, "real (and fake) curves per discriminator step")
    lr: float = param(1e-3, 1e-6, 1.0, "Adam learning rate, both networks (reference: 1e-4)")
    beta1: float = param(0.5, 0.0, 0.999, "Adam β1")
    lr_decay: float = param(0.6, 0.0, 1.0, "share of steps at the end over which lr decays linearly to 0")
    ema: float = param(0.999, 0.0, 0.9999, "decay of an EMA of G's weights; 0: off")
    label_smoothing: float = param(1.0, 0.5, 1.0, "target for real curves in D's loss (one-sided)")
    latent: str = field(default="normal", metadata={"choices": ["normal", "uniform"], "help": "latent distribution"})


def _one_hot(label: torch.Tensor) -> torch.Tensor:
    return nn.functional.one_hot(label, len(LABELS)).float()  # (n, 2)


class Generator(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(cfg.latent_dim + len(LABELS), cfg.hidden), nn.ReLU(),
                                 nn.Linear(cfg.hidden, POINTS))

    def forward(self, z: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z, _one_hot(label)], 1))  # (n, 15)


class Discriminator(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(POINTS + len(LABELS), cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, 1))

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, _one_hot(label)], 1)).squeeze(-1)  # (n,) logits


def real_batches(cfg: Config, source: str, rng: np.random.Generator):
    """Endless fresh curves with their side of a = 1.5 as the label."""
    if source != "default":
        raise ValueError(f"family curves-cgan draws its own data; data must be 'default', not {source!r}")
    while True:
        y, a = data.curves(cfg.batch_size, rng, POINTS)
        yield torch.from_numpy(y), torch.from_numpy((a > 1.5).astype(np.int64))


def card(cfg: Config) -> dict:
    """What the service needs to know to serve and plot this family's samples."""
    return {"sample_shape": [POINTS], "value_range": [-0.2, 3.2], "x": np.linspace(-1, 1, POINTS).tolist(),
            "label_meaning": {"lower": "1 ≤ a ≤ 1.5", "upper": "1.5 < a ≤ 2"},
            "reference": REFERENCE, "changes": CHANGES, "data_description": "synthetic, fresh every step"}
