"""mnist-dcgan: a convolutional MNIST GAN in the keras-dcgan spirit, the one `nice` mode was made for."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from training import data
from training.config import param

KIND = "image"
LABELS = None
DEFAULT_STEPS = 16_000
EPOCH_SIZE = 4_000

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
    batch_size: int = param(64, 1, 1024, "real (and fake) images per step (reference: 128)")
    optimizer: str = field(default="adam", metadata={"choices": ["adam", "sgd"],
                                                      "help": "adam, or the reference's SGD with Nesterov momentum"})
    lr: float = param(2e-4, 1e-6, 1.0, "learning rate, both networks (reference SGD: 5e-4)")
    beta1: float = param(0.5, 0.0, 0.999, "Adam β1 (or SGD momentum when optimizer is sgd)")
    lr_decay: float = param(0.5, 0.0, 1.0, "share of steps at the end over which lr decays linearly to 0")
    ema: float = param(0.999, 0.0, 0.9999, "decay of an EMA of G's weights; 0: off")
    label_smoothing: float = param(1.0, 0.5, 1.0, "target for real images in D's loss (one-sided)")
    augment: int = param(2, 0, 8, "D sees real and fake images shifted by up to this many pixels while training")
    latent: str = field(default="uniform", metadata={"choices": ["uniform", "normal"], "help": "latent distribution"})
    d_refine: int = param(1000, 0, 20_000, "steps training D alone against the final, served G, so `nice` ranks "
                                        "the samples users get")
    codes: int = param(20, 0, 64, "clusters of the training images (k-means, equal sizes) that G and D are "
                                  "conditioned on; z's first coordinate picks one; 0: a plain unconditional GAN")


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


class LatentCode(nn.Module):
    """The cluster a coded G draws, picked by the latent the service already samples (self-conditioning).

    The training images are split into `codes` equal clusters (k-means on pixels, no labels), and G and
    D are trained as a conditional GAN on them (Liu et al. 2020, "Diverse image generation via
    self-conditioned GANs"). z's first coordinate, mapped through its own CDF to U[0, 1), picks the
    cluster, so every cluster is drawn as often as it holds images: the data's mix of digits is kept,
    and G switches between clusters instead of morphing one digit into the next.
    """

    def __init__(self, cfg):
        super().__init__()
        self.codes, self.normal = cfg.codes, cfg.latent == "normal"
        self.width = cfg.latent_dim - 1 + cfg.codes if cfg.codes else cfg.latent_dim

    def index(self, z: torch.Tensor) -> torch.Tensor:
        u = 0.5 * (1 + torch.erf(z[:, 0] / 2**0.5)) if self.normal else (z[:, 0] + 1) / 2  # (n,) in [0, 1]
        return (u * self.codes).floor().clamp(0, self.codes - 1).long()  # (n,)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if not self.codes:
            return z
        one_hot = (self.index(z)[:, None] == torch.arange(self.codes)[None, :]).float()  # (n, codes)
        return torch.cat([one_hot, z[:, 1:]], 1)  # (n, width)


class CodedScore(nn.Module):
    """D's last layer: a realness logit from features h, plus for a coded family a projection per cluster.

    Trained with each image's cluster, ⟨embed(cluster), h⟩ as in the projection discriminator (Miyato &
    Koyama 2018). The served D gets no cluster, so it scores an image by the cluster that suits it best,
    softly: logsumexp over clusters, less log(codes) so that it equals the mean when all agree.
    """

    def __init__(self, width: int, codes: int):
        super().__init__()
        self.out = nn.Linear(width, 1)
        self.embed = nn.Embedding(codes, width) if codes else None
        if self.embed is not None:  # from zero: it starts as a plain D (N(0, 1) rows swamp the score at first)
            nn.init.zeros_(self.embed.weight)

    def forward(self, h: torch.Tensor, code: torch.Tensor | None = None) -> torch.Tensor:
        score = self.out(h).squeeze(-1)  # (n,)
        if self.embed is None:
            return score
        if code is not None:
            return score + (self.embed(code) * h).sum(1)
        return score + torch.logsumexp(h @ self.embed.weight.T, 1) - math.log(self.embed.num_embeddings)


def translate(x: torch.Tensor, pixels: int) -> torch.Tensor:
    """Each image shifted by a random whole number of pixels in [-pixels, pixels], background filled in.

    Differentiable augmentation (Zhao et al. 2020): applied to real and fake alike inside D while it
    trains, it keeps D from memorising 4,000 digits without teaching G to draw shifted ones.
    """
    n, _, h, w = x.shape
    shift = torch.randint(-pixels, pixels + 1, (n, 2)).float()  # torch's generator: restored on resume
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, 0, 2], theta[:, 1, 2] = 2 * shift[:, 0] / w, 2 * shift[:, 1] / h
    grid = nn.functional.affine_grid(theta, list(x.shape), align_corners=False)  # (n, h, w, 2)
    return nn.functional.grid_sample(x + 1, grid, mode="nearest", align_corners=False) - 1  # (n, c, h, w)


class Discriminator(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.augment = cfg.augment
        c = cfg.d_channels
        self.net = nn.Sequential(
            nn.Conv2d(1, c, 4, 2, 1), nn.LeakyReLU(0.2),  # (n, c, 14, 14)
            nn.Conv2d(c, 2 * c, 4, 2, 1), nn.LeakyReLU(0.2),  # (n, 2c, 7, 7)
            nn.Flatten(),  # (n, 2c·49)
        )
        self.score = CodedScore(2 * c * 7 * 7, cfg.codes)

    def forward(self, x: torch.Tensor, code: torch.Tensor | None = None) -> torch.Tensor:
        if self.training and self.augment:  # never in the exported (eval) D that ranks samples
            x = translate(x, self.augment)
        return self.score(self.net(x), code)  # (n,) logits


def optimizers(cfg: Config, G: nn.Module, D: nn.Module):
    """Adam, or the reference's SGD with Nesterov momentum."""
    if cfg.optimizer == "sgd":
        return (torch.optim.SGD(G.parameters(), lr=cfg.lr, momentum=cfg.beta1, nesterov=True),
                torch.optim.SGD(D.parameters(), lr=cfg.lr, momentum=cfg.beta1, nesterov=True))
    return (torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999)),
            torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999)))


def real_batches(cfg: Config, source: str, rng: np.random.Generator):
    """Endless random batches of 28×28 grey images (labels unused), with their cluster when coded."""
    images, _ = data.load_images(source, size=28, channels=1)
    clusters = data.balanced_clusters(images, cfg.codes) if cfg.codes else None
    for x, c in data.batches(images, clusters, cfg.batch_size, rng):
        yield torch.from_numpy(x), None if c is None else torch.from_numpy(c)


def card(cfg: Config) -> dict:
    """What the service needs to know to serve this family's samples."""
    return {"sample_shape": [1, 28, 28], "value_range": [-1.0, 1.0], "reference": REFERENCE, "changes": CHANGES}
