"""mnist-mlp: a fully connected MNIST GAN with LeakyReLU and one-sided label smoothing (the FCGAN write-up)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from training import evaluate
from training.config import param
from training.families import parts
from training.families.base import Memory, SamplingFamily
from training.families.parts import CodedScore, LatentCode, shift

REFERENCE = ("z 100 (normal) → 256 → 512 → 1024 (LeakyReLU 0.2) → 784 tanh / 784 → 1024 → 512 → 256 → 1; "
             "Adam(2e-4, β1 0.5); batch 16; one-sided label smoothing 0.9")
CHANGES = ("G 100 → 256 → 512 → 784 and D 784 → 512 → 256 → 1 (the 1024-unit layers dropped: 2.9 M → 1.1 M "
           "weights, and a faster step on 2 cores); self-conditioned (Liu et al. 2020): the 4,000 digits split "
           "into 20 equal pixel k-means clusters (no labels), G takes the cluster one-hot (picked by z's first "
           "coordinate, so each is drawn equally often) and D adds a projection term per cluster, scoring an "
           "unlabelled image by logsumexp over clusters (at 6,000 steps: digits at 5.9-17.4 % without it, "
           "5.2-14.9 % with it); 40,000 steps instead of 6,000 (Fréchet ratio 40 → 18.6 at 20,000 → 9.8); batch 64; lr "
           "decays linearly to 0 over the last half of the steps; real and fake shifted by up to 2 pixels while "
           "D trains; EMA (0.999) of G's weights served")


@dataclass
class Config:
    latent_dim: int = param(100, 1, 512, "size of the normal latent vector z")
    g_hidden: int = param(256, 1, 4096, "G's first hidden layer; each next one twice as wide")
    d_hidden: int = param(256, 1, 4096, "D's last hidden layer; the one before is twice as wide")
    batch_size: int = param(64, 2, 1024, "real (and fake) images per step (reference: 16); at least 2, "
                                                    "as G's batch norm needs")
    lr: float = parts.lr(2e-4)
    beta1: float = parts.beta1()
    lr_decay: float = parts.lr_decay(0.5)
    ema: float = parts.ema()
    dropout: float = param(0.3, 0.0, 0.9, "dropout after each of D's hidden layers")
    augment: int = parts.augment()
    diffaugment: str = parts.diffaugment()
    label_smoothing: float = parts.label_smoothing(0.9)
    latent: str = parts.latent("normal")
    d_refine: int = parts.d_refine(0)
    codes: int = parts.codes(20)


class Generator(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        h = cfg.g_hidden
        self.code = LatentCode(cfg)
        self.net = nn.Sequential(
            # Batch norm after the hidden layers (as PyTorch-GAN's gan.py): without it G collapsed to
            # one to four digits against this D within a few thousand steps on 4,000 digits.
            nn.Linear(self.code.width, h), nn.LeakyReLU(0.2),
            nn.Linear(h, 2 * h), nn.BatchNorm1d(2 * h), nn.LeakyReLU(0.2),
            nn.Linear(2 * h, 4 * h), nn.BatchNorm1d(4 * h), nn.LeakyReLU(0.2),
            nn.Linear(4 * h, 28 * 28), nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.code(z)).view(-1, 1, 28, 28)  # (n, 1, 28, 28)


class Discriminator(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.augment, self.diffaugment = cfg.augment, cfg.diffaugment
        h = cfg.d_hidden
        self.net = nn.Sequential(
            nn.Flatten(),  # (n, 784)
            # Dropout, as the write-up's D: it keeps D from winning outright.
            nn.Linear(28 * 28, 2 * h), nn.LeakyReLU(0.2), nn.Dropout(cfg.dropout),
            nn.Linear(2 * h, h), nn.LeakyReLU(0.2), nn.Dropout(cfg.dropout),
        )
        self.score = CodedScore(h, cfg.codes)

    def forward(self, x: torch.Tensor, code: torch.Tensor | None = None) -> torch.Tensor:
        if self.training:  # never in the exported (eval) D that ranks samples
            x = parts.diff_augment(shift(x, self.augment) if self.augment else x, self.diffaugment)
        return self.score(self.net(x), code)  # (n,) logits


class MnistMlp(SamplingFamily):
    name = "mnist-mlp"
    KIND = "image"
    LABELS = None
    DEFAULT_STEPS = 40_000
    # The quality gate a new version must pass to become a model's default (training/export.py).
    GATE = [("plain.frechet_ratio", "<=", 15.0), ("plain.classes_covered", ">=", 10)]
    EPOCH_SIZE = 4_000  # the offline training digits
    Config, Generator, Discriminator = Config, Generator, Discriminator  # this file's, above
    measures = evaluate.DIGITS

    def memory(self) -> Memory:
        # Upper bounds (tests/training/test_memory.py counts them against the real networks).
        return Memory(weights="(latent_dim + codes + 3160) * g_hidden + 10 * g_hidden**2 + "
                              "(1580 + codes) * d_hidden + 2 * d_hidden**2 + 1000",
                      activations="batch_size * (2 * (20 * g_hidden + 1600 + codes) + 3 * (10 * d_hidden + 3200))",
                      image="784")

    def codes(self, cfg: Config) -> int:
        return cfg.codes

    def d_refine(self, cfg: Config) -> int:
        return cfg.d_refine

    def real_batches(self, cfg: Config, source: str, rng):
        return parts.coded_digit_batches(cfg, source, rng)

    def card(self, cfg: Config) -> dict:
        """What the service needs to know to serve this family's samples."""
        return {"sample_shape": [1, 28, 28], "value_range": [-1.0, 1.0], "reference": REFERENCE, "changes": CHANGES}
