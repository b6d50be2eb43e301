"""quadratic: a GAN that learns points (x, x²) for x ~ U[-0.5, 0.5] (the 1-D Keras GAN write-up)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from training.config import param
from training.evaluate import Measures
from training.families import parts
from training.families.base import Memory, SamplingFamily

BINS = 20  # x bins of the coverage measure

# Changes from the reference (z 5, G 15 units, D 25 units, 10,000 steps, constant lr), measured with
# training.evaluate: a 2-D latent (the data is a 1-D curve, so a 5-D latent smears G's output off it),
# 64 hidden units in each net, a linear lr decay over the last 70 % of 30,000 steps and an EMA of G.
# Mean |y − x²| went from 0.037 to 0.0025, its 95th percentile from 0.14 to 0.006, x bins 8/20 to 20/20.


@dataclass
class Config:
    latent_dim: int = param(2, 1, 256, "size of the normal latent vector z (reference: 5)")
    g_hidden: int = param(64, 1, 1024, "generator hidden units (reference: 15)")
    d_hidden: int = param(64, 1, 1024, "discriminator hidden units (reference: 25)")
    batch_size: int = param(64, 1, 4096, "real (and fake) points per discriminator step")
    g_batch_size: int = param(128, 1, 8192, "points per generator step")
    lr: float = parts.lr(1e-3)
    beta1: float = parts.beta1(0.9)  # Adam's own default: this family has always trained with it
    lr_decay: float = parts.lr_decay(0.7)
    ema: float = parts.ema()
    label_smoothing: float = parts.label_smoothing(1.0)
    latent: str = parts.latent("normal", ("normal",))


class Generator(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(cfg.latent_dim, cfg.g_hidden), nn.ReLU(), nn.Linear(cfg.g_hidden, 2))
        nn.init.kaiming_uniform_(self.net[0].weight, nonlinearity="relu")  # He init, as in the write-up

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)  # (n, 2)


class Discriminator(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, cfg.d_hidden), nn.ReLU(), nn.Linear(cfg.d_hidden, 1))
        nn.init.kaiming_uniform_(self.net[0].weight, nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)  # (n,) logits; the write-up's sigmoid lives in the loss


def points(values: np.ndarray, labels: np.ndarray | None = None) -> dict:
    """This family's measures: distance from y = x², and how evenly x covers [-0.5, 0.5]."""
    x, y = values[:, 0].astype(np.float64), values[:, 1].astype(np.float64)
    residual = np.abs(y - x * x)
    counts, _ = np.histogram(x, bins=BINS, range=(-0.5, 0.5))
    return {
        "mean_abs_residual": float(residual.mean()),
        "p95_abs_residual": float(np.percentile(residual, 95)),
        "x_bins_covered": int((counts >= 0.01 * len(x)).sum()),
        "x_bins": BINS,
        "x_outside_range": float(np.mean((x < -0.5) | (x > 0.5))),
    }


class Quadratic(SamplingFamily):
    name = "quadratic"
    KIND = "points"
    LABELS = None
    DEFAULT_STEPS = 30_000
    # The quality gate a new version must pass to become a model's default (training/export.py).
    GATE = [("plain.mean_abs_residual", "<=", 0.01), ("plain.x_bins_covered", ">=", 16)]
    SYNTHETIC = True
    Config, Generator, Discriminator = Config, Generator, Discriminator  # this file's, above
    measures = Measures(points)

    def memory(self) -> Memory:
        # Upper bounds (tests/training/test_memory.py counts them against the real networks).
        return Memory(weights="latent_dim * g_hidden + 3 * g_hidden + 4 * d_hidden + 3",
                      activations="(batch_size + g_batch_size) * (2 * g_hidden + 6 * d_hidden + 10)")

    def generator_batch(self, cfg: Config, n: int) -> int:
        return cfg.g_batch_size

    def real_batches(self, cfg: Config, source: str, rng: np.random.Generator):
        """Endless fresh points on y = x², x ~ U[-0.5, 0.5]."""
        if source != "default":
            raise ValueError(f"family quadratic draws its own data; data must be 'default', not {source!r}")
        while True:
            x = rng.uniform(-0.5, 0.5, size=cfg.batch_size)
            yield torch.from_numpy(np.stack([x, x * x], axis=1).astype(np.float32)), None

    def card(self, cfg: Config) -> dict:
        """What the service needs to know to serve and plot this family's samples, the parabola behind them."""
        x = np.linspace(-0.5, 0.5, 101)
        parabola = {"points": np.stack([x, x * x], 1).round(6).tolist(), "width": 3}
        return {"sample_shape": [2], "value_range": [-0.5, 0.5], "columns": ["x", "y"],
                "picture": {"x_range": [-0.6, 0.6], "y_range": [-0.05, 0.3], "x": None, "lines": [parabola]}}
