"""curves: 15-point "paintings" a·x² + (a − 1) on linspace(−1, 1), a ~ U[1, 2] (the artist-curves write-up)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from training import data
from training.evaluate import Measures
from training.families import parts
from training.families.base import Memory, SamplingFamily

POINTS = parts.CURVE_POINTS

REFERENCE = "z 5 (normal) → 128 ReLU → 15 / 15 → 128 ReLU → 1; Adam 1e-4 both; batch 64; 10,000 steps"
# Changes from the reference, measured with training.evaluate (see the card's metrics): every real curve
# is one number a, so a 5-D latent smears G's output off the one-parameter family; a 2-D latent, lr 1e-3
# with a linear decay over the last 60 % of the steps and an EMA of G bring the fit residual and the
# KS distance of the fitted a under the bars.
CHANGES = ("latent 2-D instead of 5; Adam lr 1e-3 (β1 0.5) with linear decay to 0 over the last 60 % of "
           "steps; EMA (0.999) of G's weights served")


Config = parts.CurvesConfig  # the same hyper-parameters for both curve families


class Generator(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(cfg.latent_dim, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, POINTS))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)  # (n, 15)


class Discriminator(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(POINTS, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)  # (n,) logits


class Curves(SamplingFamily):
    name = "curves"
    KIND = "curves"
    LABELS = None
    DEFAULT_STEPS = 10_000
    # The quality gate a new version must pass to become a model's default (training/export.py).
    GATE = [("plain.rms_residual", "<=", 0.03), ("plain.ks_uniform", "<=", 0.15)]
    SYNTHETIC = True
    Config, Generator, Discriminator = Config, Generator, Discriminator  # this file's, above
    measures = Measures(parts.curve_measures)

    def memory(self) -> Memory:
        # Upper bounds (tests/training/test_memory.py counts them against the real networks).
        return Memory(weights="(latent_dim + 40) * hidden + 16",
                      activations="batch_size * (10 * hidden + 40)")

    def real_batches(self, cfg: Config, source: str, rng: np.random.Generator):
        """Endless fresh curves, a new a for every curve of every step."""
        if source != "default":
            raise ValueError(f"family curves draws its own data; data must be 'default', not {source!r}")
        while True:
            y, _ = data.curves(cfg.batch_size, rng, POINTS)
            yield torch.from_numpy(y), None

    def card(self, cfg: Config) -> dict:
        """What the service needs to know to serve and plot this family's samples, the bounds behind them."""
        return {"sample_shape": [POINTS], "value_range": [-0.2, 3.2], "x": np.linspace(-1, 1, POINTS).tolist(),
                "reference": REFERENCE, "changes": CHANGES, "data_description": "synthetic, fresh every step",
                "picture": parts.curve_picture(boundary=False)}
