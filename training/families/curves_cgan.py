"""curves-cgan: the curves a·x² + (a − 1), conditioned on label 1 = "upper" (a > 1.5) or 0 = "lower"."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from training import data
from training.evaluate import Measures
from training.families import parts
from training.families.base import Memory, SamplingFamily

LABELS = ["lower", "upper"]
POINTS = parts.CURVE_POINTS

REFERENCE = "the label appended to both inputs: z 5 + label → 128 ReLU → 15 / 15 + label → 128 ReLU → 1; Adam 1e-4"
CHANGES = ("latent 2-D instead of 5; the label enters both nets as a one-hot pair rather than one number; "
           "Adam lr 1e-3 (β1 0.5) with linear decay over the last 60 % of steps; EMA (0.999) of G served")


Config = parts.CurvesConfig  # the same hyper-parameters for both curve families


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


class CurvesCGAN(SamplingFamily):
    name = "curves-cgan"
    KIND = "curves"
    LABELS = LABELS
    DEFAULT_STEPS = 10_000
    # The quality gate a new version must pass to become a model's default (training/export.py).
    GATE = [("plain.requested_side", ">=", 0.95), ("plain.rms_residual", "<=", 0.03)]
    SYNTHETIC = True
    Config, Generator, Discriminator = Config, Generator, Discriminator  # this file's, above
    measures = Measures(parts.curve_measures)

    def memory(self) -> Memory:
        # Upper bounds (tests/training/test_memory.py counts them against the real networks).
        return Memory(weights="(latent_dim + 40) * hidden + 16",
                      activations="batch_size * (10 * hidden + 40)")

    def real_batches(self, cfg: Config, source: str, rng: np.random.Generator):
        """Endless fresh curves with their side of a = 1.5 as the label."""
        if source != "default":
            raise ValueError(f"family curves-cgan draws its own data; data must be 'default', not {source!r}")
        while True:
            y, a = data.curves(cfg.batch_size, rng, POINTS)
            yield torch.from_numpy(y), torch.from_numpy((a > 1.5).astype(np.int64))

    def card(self, cfg: Config) -> dict:
        """What the service needs to know to serve and plot this family's samples, the bounds behind them."""
        return {"sample_shape": [POINTS], "value_range": [-0.2, 3.2], "x": np.linspace(-1, 1, POINTS).tolist(),
                "label_meaning": {"lower": "1 ≤ a ≤ 1.5", "upper": "1.5 < a ≤ 2"},
                "reference": REFERENCE, "changes": CHANGES, "data_description": "synthetic, fresh every step",
                "picture": parts.curve_picture(boundary=True)}
