"""mnist-dcgan: a convolutional MNIST GAN in the keras-dcgan spirit, the one `nice` mode was made for."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from training import evaluate
from training.config import param
from training.families import parts
from training.families.base import Memory, SamplingFamily
from training.families.parts import CodedScore, LatentCode, shift

REFERENCE = ("z 100 (uniform −1..1) → Dense 1024 tanh → 128·7·7 BN tanh → up ×2 → conv 5×5 64 tanh → up ×2 → "
             "conv 5×5 1 tanh / conv 5×5 64 tanh → pool → conv 5×5 128 tanh → pool → Dense 1024 tanh → 1 sigmoid; "
             "SGD 5e-4 Nesterov 0.9; batch 128 (96 MFLOP per generated image)")
CHANGES = ("G: Dense → 128·7·7 BN ReLU → 4×4 stride-2 transposed convolutions to 64·14·14 (BN ReLU) and to "
           "1·28·28 tanh, instead of Dense 1024 → 128·7·7 → up → conv 5×5 64 → up → conv 5×5 1 (the 5×5 "
           "convolution at 14×14 held most of the 96 MFLOP; G now costs 14.8 MFLOP); ReLU instead of tanh; D: two 4×4 stride-2 convolutions (32, 64) with LeakyReLU 0.2 instead of conv + pool + "
           "tanh and Dense 1024, and real and fake shifted by up to 2 pixels while D trains (differentiable "
           "augmentation: 4,000 digits are few); self-conditioned (Liu et al. 2020): the digits split into 20 "
           "equal pixel k-means clusters (no labels), G takes the cluster one-hot (picked by z's first coordinate, "
           "so each is drawn equally often), D adds a projection term per cluster and scores an unlabelled "
           "image by logsumexp over clusters (at 8,000 steps, together with D's channels halved to "
           "32 and 64: Fréchet ratio 35 → 9.6, digits 5.1-17.0 % → 6.6-15.8 %); 16,000 steps (ratio 5.9); Adam(2e-4, β1 0.5) instead of SGD Nesterov (SGD at 5e-4 "
           "had not formed digits by the step budget; optimizer=sgd keeps it); batch 64; lr decays linearly over "
           "the last half; the served G is an EMA (0.999) of G's weights with batch-norm statistics re-estimated "
           "for them; the served D is trained 1,000 more steps alone against that G (nice: recall 0.68 → 0.76 "
           "at the same precision and confidence)")


@dataclass
class Config:
    latent_dim: int = param(100, 1, 512, "size of the uniform latent vector z")
    g_channels: int = param(128, 1, 512, "channels at G's 7×7 stage; halved at 14×14")
    d_channels: int = param(32, 1, 512, "channels of D's first convolution; doubled in the second")
    batch_size: int = param(64, 2, 1024, "real (and fake) images per step (reference: 128); at least 2, "
                                                    "as G's batch norm needs")
    optimizer: str = field(default="adam", metadata={"choices": ["adam", "sgd"],
                                                      "help": "adam, or the reference's SGD with Nesterov momentum"})
    lr: float = parts.lr(2e-4, " (reference SGD: 5e-4)")
    beta1: float = parts.beta1()
    lr_decay: float = parts.lr_decay(0.5)
    ema: float = parts.ema()
    label_smoothing: float = parts.label_smoothing(1.0)
    augment: int = parts.augment()
    diffaugment: str = parts.diffaugment()
    latent: str = parts.latent("uniform")
    d_refine: int = parts.d_refine(1000)
    codes: int = parts.codes(20)


class Generator(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        c = cfg.g_channels
        self.code = LatentCode(cfg)
        self.project = nn.Sequential(nn.Linear(self.code.width, c * 7 * 7, bias=False), nn.BatchNorm1d(c * 7 * 7),
                                     nn.ReLU())
        self.up = nn.Sequential(
            nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU(),  # (n, c/2, 14, 14)
            # Not upsample + 5×5 conv to 1 channel as the reference: measured, that one layer made this G
            # only 2× faster than the reference in onnxruntime (and 5× slower to train) for a small gain.
            nn.ConvTranspose2d(c // 2, 1, 4, 2, 1), nn.Tanh(),  # (n, 1, 28, 28)
        )
        self.c = c

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.up(self.project(self.code(z)).view(-1, self.c, 7, 7))  # (n, 1, 28, 28)


class Discriminator(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.augment, self.diffaugment = cfg.augment, cfg.diffaugment
        c = cfg.d_channels
        self.net = nn.Sequential(
            nn.Conv2d(1, c, 4, 2, 1), nn.LeakyReLU(0.2),  # (n, c, 14, 14)
            nn.Conv2d(c, 2 * c, 4, 2, 1), nn.LeakyReLU(0.2),  # (n, 2c, 7, 7)
            nn.Flatten(),  # (n, 2c·49)
        )
        self.score = CodedScore(2 * c * 7 * 7, cfg.codes)

    def forward(self, x: torch.Tensor, code: torch.Tensor | None = None) -> torch.Tensor:
        if self.training:  # never in the exported (eval) D that ranks samples
            x = parts.diff_augment(shift(x, self.augment) if self.augment else x, self.diffaugment)
        return self.score(self.net(x), code)  # (n,) logits


class MnistDcgan(SamplingFamily):
    name = "mnist-dcgan"
    KIND = "image"
    LABELS = None
    DEFAULT_STEPS = 16_000
    # The quality gate a new version must pass to become a model's default (training/export.py).
    GATE = [("plain.frechet_ratio", "<=", 15.0), ("plain.classes_covered", ">=", 10)]
    EPOCH_SIZE = 4_000
    Config, Generator, Discriminator = Config, Generator, Discriminator  # this file's, above
    measures = evaluate.DIGITS

    def memory(self) -> Memory:
        # Upper bounds (tests/training/test_memory.py counts them against the real networks).
        return Memory(weights="(latent_dim + codes + 2) * 49 * g_channels + 8 * g_channels**2 + "
                              "12 * g_channels + 32 * d_channels**2 + (120 + 98 * codes) * d_channels + 2",
                      activations="batch_size * (2 * (450 * g_channels + 1600) + 3 * (800 * d_channels + 4000))",
                      image="784")

    def codes(self, cfg: Config) -> int:
        return cfg.codes

    def d_refine(self, cfg: Config) -> int:
        return cfg.d_refine

    def optimizers(self, cfg: Config, G: nn.Module, D: nn.Module):
        """Adam, or the reference's SGD with Nesterov momentum (β1 its momentum)."""
        if cfg.optimizer == "sgd":
            return (torch.optim.SGD(G.parameters(), lr=cfg.lr, momentum=cfg.beta1, nesterov=True),
                    torch.optim.SGD(D.parameters(), lr=cfg.lr, momentum=cfg.beta1, nesterov=True))
        return super().optimizers(cfg, G, D)

    def real_batches(self, cfg: Config, source: str, rng):
        return parts.coded_digit_batches(cfg, source, rng)

    def card(self, cfg: Config) -> dict:
        """What the service needs to know to serve this family's samples."""
        return {"sample_shape": [1, 28, 28], "value_range": [-1.0, 1.0], "reference": REFERENCE, "changes": CHANGES}
