"""Parts several families share: common hyper-parameters, the latent code, the coded score, augmentation,
the curves' measures and picture.

A family file imports from here, never from another family's file.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from service.sampling.latents import code_edges
from training import data
from training.config import param
from training.families.base import Memory


# Hyper-parameters most families take; each family picks its defaults. lr, beta1, lr_decay and ema are
# every family's (the optimiser config, base.OptimizerConfig).
def lr(default: float, note: str = "") -> float:
    return param(default, 1e-6, 1.0, f"learning rate, both networks{note}")


def beta1(default: float = 0.5) -> float:
    return param(default, 0.0, 0.999, "Adam β1 (or SGD momentum where the optimizer is sgd)")


def lr_decay(default: float) -> float:
    return param(default, 0.0, 1.0, "share of steps at the end over which lr decays linearly to 0")


def ema(default: float = 0.999) -> float:
    return param(default, 0.0, 0.9999, "decay of an exponential moving average of G's weights; 0: off")


def label_smoothing(default: float) -> float:
    return param(default, 0.5, 1.0, "target for real samples in D's loss (one-sided)")


def latent(default: str, choices: tuple[str, ...] = ("normal", "uniform")) -> str:
    return field(default=default, metadata={"choices": list(choices), "help": "latent distribution"})


def augment(default: int = 2) -> int:
    return param(default, 0, 8, "D sees real and fake images shifted by up to this many pixels while training")


DIFFAUGMENT_POLICIES = ("none", "translation", "translation,cutout", "color,translation,cutout")


def diffaugment(default: str = "none") -> str:
    return field(default=default, metadata={
        "choices": list(DIFFAUGMENT_POLICIES),
        "help": "DiffAugment (Zhao et al. 2020): the same differentiable augmentations on real and fake images "
                "before D while it trains (translation by up to 1/8 of the side, cutout of a half-side square, "
                "colour: brightness, saturation, contrast); none: off"})


def d_refine(default: int) -> int:
    return param(default, 0, 20_000, "steps training D alone against the final, served G, so `nice` ranks the "
                                     "samples users get")


def codes(default: int) -> int:
    return param(default, 0, 64, "clusters of the training images (k-means, equal sizes) that G and D are "
                                 "conditioned on; z's first coordinate picks one; 0: a plain unconditional GAN")


CURVE_POINTS = 15  # a curve's values, at linspace(-1, 1, 15)


@dataclass
class CurvesConfig:
    """The curve families' hyper-parameters (curves and curves-cgan)."""
    latent_dim: int = param(2, 1, 256, "size of the normal latent vector z (reference: 5)")
    hidden: int = param(128, 1, 2048, "hidden units of G and D")
    batch_size: int = param(64, 1, 4096, "real (and fake) curves per discriminator step")
    lr: float = lr(1e-3, " (reference: 1e-4)")
    beta1: float = beta1()
    lr_decay: float = lr_decay(0.6)
    ema: float = ema()
    label_smoothing: float = label_smoothing(1.0)
    latent: str = latent("normal")


def fit_a(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares a for y ≈ a·x² + (a − 1) = a·(x² + 1) − 1 per curve, and the residuals (n, 15)."""
    x = np.linspace(-1, 1, values.shape[1])
    basis = x * x + 1  # (15,)
    y = values.astype(np.float64) + 1  # (n, 15)
    a = y @ basis / (basis @ basis)  # (n,)
    return a, y - a[:, None] * basis


def curve_measures(values: np.ndarray, labels: np.ndarray | None = None) -> dict:
    """The curve families' measures: fit residual, fitted a against U[1, 2], and (conditional) the requested
    side of 1.5."""
    a, residual = fit_a(values)
    ordered = np.sort(a)
    n = len(a)
    cdf = np.clip(ordered - 1, 0, 1)  # U[1, 2]
    ks = max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n))
    out = {
        "rms_residual": float(np.sqrt(np.mean(residual**2))),
        "a_in_range": float(np.mean((a >= 1) & (a <= 2))),
        "a_mean": float(a.mean()),
        "a_std": float(a.std()),  # U[1, 2]: 0.289
        "ks_uniform": float(ks),
    }
    if labels is not None:  # label 1 = "upper" (a > 1.5), 0 = "lower"
        out["requested_side"] = float(np.mean((a > 1.5) == (labels == 1)))
    return out


def curve_picture(boundary: bool) -> dict:
    """The card's picture of a curve family: the a = 1 and a = 2 bounds of the real curves, and for the
    conditional family the a = 1.5 boundary between its labels (thin)."""
    x = np.linspace(-1, 1, CURVE_POINTS)
    bounds = [(a, 3) for a in (1.0, 2.0)] + ([(1.5, 1)] if boundary else [])
    lines = [{"points": np.stack([x, a * x * x + (a - 1)], 1).round(6).tolist(), "width": width} for a, width in bounds]
    return {"x_range": [-1.1, 1.1], "y_range": [-0.2, 3.2], "x": x.round(6).tolist(), "lines": lines}


class LatentCode(nn.Module):
    """The cluster a coded G draws, picked by the latent the service already samples (self-conditioning).

    The training images are split into `codes` equal clusters (k-means on pixels, no labels), and G and
    D are trained as a conditional GAN on them (Liu et al. 2020, "Diverse image generation via
    self-conditioned GANs"). z's first coordinate picks the cluster by thresholds at its quantiles
    (service.sampling.latents.code_edges, the same ones the service bins by), so every cluster is drawn
    as often as it holds images: the data's mix is kept, and G switches between clusters instead of
    morphing one digit into the next.
    """

    def __init__(self, cfg):
        super().__init__()
        self.codes = cfg.codes
        self.width = cfg.latent_dim - 1 + cfg.codes if cfg.codes else cfg.latent_dim
        edges = code_edges(cfg.codes, cfg.latent) if cfg.codes else []
        self.register_buffer("edges", torch.tensor(edges, dtype=torch.float32), persistent=False)

    def index(self, z: torch.Tensor) -> torch.Tensor:
        return (z[:, :1] >= self.edges[None, :]).sum(1)  # (n,): how many edges lie at or below z's first value

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


def shift(x: torch.Tensor, pixels: int) -> torch.Tensor:
    """Each image shifted by a random whole number of pixels in [-pixels, pixels], background filled in.

    Differentiable augmentation (Zhao et al. 2020): applied to real and fake alike inside D while it
    trains, it keeps D from memorising 4,000 digits without teaching G to draw shifted ones.
    """
    n, _, h, w = x.shape
    offsets = torch.randint(-pixels, pixels + 1, (n, 2)).float()  # torch's generator: restored on resume
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, 0, 2], theta[:, 1, 2] = 2 * offsets[:, 0] / w, 2 * offsets[:, 1] / h
    grid = nn.functional.affine_grid(theta, list(x.shape), align_corners=False)  # (n, h, w, 2)
    return nn.functional.grid_sample(x + 1, grid, mode="nearest", align_corners=False) - 1  # (n, c, h, w)


def diff_augment(x: torch.Tensor, policy: str) -> torch.Tensor:
    """DiffAugment (Zhao et al. 2020, their reference code's three transforms): each image (n, c, h, w) in
    [-1, 1] changed at random, differentiably, so G is trained through the same augmented D as real images.

    The draws come from torch's global generator, which a checkpoint restores, so a resumed run is the same run.
    """
    if policy in ("", "none"):
        return x
    for name in policy.split(","):
        x = AUGMENTATIONS[name](x)
    return x


def _color(x: torch.Tensor) -> torch.Tensor:
    n = x.shape[0]
    x = x + (torch.rand(n, 1, 1, 1) - 0.5)  # brightness
    if x.shape[1] > 1:  # saturation: a grey image has none
        mean = x.mean(1, keepdim=True)
        x = (x - mean) * (torch.rand(n, 1, 1, 1) * 2) + mean
    mean = x.mean((1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(n, 1, 1, 1) + 0.5) + mean  # contrast


def _translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shifted by up to ratio of the side each way; what comes in from outside is the background, -1."""
    n, _, h, w = x.shape
    dy, dx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-dy, dy + 1, (n, 1, 1))
    tx = torch.randint(-dx, dx + 1, (n, 1, 1))
    gy, gx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    rows = (gy[None] + ty + 1).clamp(0, h + 1)  # (n, h, w) into the padded image
    cols = (gx[None] + tx + 1).clamp(0, w + 1)
    padded = nn.functional.pad(x + 1, (1, 1, 1, 1))  # (n, c, h + 2, w + 2), border 0 (-1 once shifted back)
    index = torch.arange(n)[:, None, None]
    return padded.permute(0, 2, 3, 1)[index, rows, cols].permute(0, 3, 1, 2) - 1


def _cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """A square of half the side at a random place set to 0, as the reference code does."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1))
    ox = torch.randint(0, w + (1 - cw % 2), (n, 1, 1))
    top, left = oy - ch // 2, ox - cw // 2  # the square may hang over the edge, as in the reference
    gy, gx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    inside = (gy[None] >= top) & (gy[None] < top + ch) & (gx[None] >= left) & (gx[None] < left + cw)  # (n, h, w)
    return x * (~inside)[:, None].to(x.dtype)


AUGMENTATIONS = {"color": _color, "translation": _translation, "cutout": _cutout}


def coded_digit_batches(cfg, source: str, rng: np.random.Generator):
    """Endless random batches of 28×28 grey images (labels unused), with their cluster when coded."""
    images, _ = data.training_images(source, size=28, channels=1)
    clusters = data.balanced_clusters(images, cfg.codes) if cfg.codes else None
    for x, c in data.batches(images, clusters, cfg.batch_size, rng):
        yield torch.from_numpy(x), None if c is None else torch.from_numpy(c)


def image_stages(size: int) -> int:
    """Doublings from G's first feature map to the image: 3 for sides that are multiples of 8 (32 → 4×4 start),
    2 for the other multiples of 4 (28 → 7×7)."""
    if size % 4:
        raise ValueError(f"params.image_size: must be a multiple of 4 (28, 32, 64, 128 ...), got {size}")
    return 3 if size % 8 == 0 else 2


class ConvGenerator(nn.Module):
    """z (and a label's one-hot, when classes > 0) → Dense to c·s·s (BN LeakyReLU 0.2) → transposed 4×4 stride-2
    convolutions (BN LeakyReLU), halving the channels → 3×3 convolution to the image's channels, tanh."""

    def __init__(self, cfg, classes: int = 0):
        super().__init__()
        c, stages = cfg.g_channels, image_stages(cfg.image_size)
        self.c, self.start, self.classes = c, cfg.image_size >> stages, classes
        self.project = nn.Sequential(nn.Linear(cfg.latent_dim + classes, c * self.start**2, bias=False),
                                     nn.BatchNorm1d(c * self.start**2), nn.LeakyReLU(0.2))
        widths = [c, c // 2, c // 2, c // 4][:stages + 1]
        layers = []
        for a, b in zip(widths, widths[1:]):  # each doubles the side
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.LeakyReLU(0.2)]
        self.up = nn.Sequential(*layers, nn.Conv2d(widths[-1], cfg.channels, 3, padding=1), nn.Tanh())

    def forward(self, z: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        if self.classes:
            z = torch.cat([z, nn.functional.one_hot(label, self.classes).float()], 1)  # (n, latent_dim + classes)
        h = self.project(z).view(-1, self.c, self.start, self.start)  # (n, c, start, start)
        return self.up(h)  # (n, channels, size, size)


class ConvDiscriminator(nn.Module):
    """3×3 convolution, then 4×4 stride-2 convolutions (LeakyReLU 0.2) down to G's first side, dropout, a logit;
    with classes > 0 plus a projection term ⟨embed(label), features⟩ (Miyato & Koyama 2018). While training,
    real and fake pass DiffAugment's policy first (cfg.diffaugment)."""

    def __init__(self, cfg, classes: int = 0):
        super().__init__()
        c, stages = cfg.d_channels, image_stages(cfg.image_size)
        side = cfg.image_size >> stages
        widths = [c, 2 * c, 2 * c, 4 * c][:stages + 1]
        layers = [nn.Conv2d(cfg.channels, c, 3, padding=1), nn.LeakyReLU(0.2)]  # (n, c, size, size)
        for a, b in zip(widths, widths[1:]):  # each halves the side
            layers += [nn.Conv2d(a, b, 4, 2, 1), nn.LeakyReLU(0.2)]
        width = widths[-1] * side * side
        self.net = nn.Sequential(*layers, nn.Flatten(), nn.Dropout(0.4), nn.Linear(width, 1))
        self.embed = nn.Embedding(classes, width) if classes else None
        if self.embed is not None:  # from zero, as CodedScore's: N(0, 1) rows of this width swamp the score at first
            nn.init.zeros_(self.embed.weight)
        self.diffaugment = cfg.diffaugment

    def forward(self, x: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        if self.training:  # never in the exported (eval) D that ranks samples
            x = diff_augment(x, self.diffaugment)
        if self.embed is None:
            return self.net(x).squeeze(-1)  # (n,) logits
        h = self.net[:-1](x)  # (n, width): the features before the last layer
        return self.net[-1](h).squeeze(-1) + (self.embed(label) * h).sum(1)


def conv_memory(classes: str = "0") -> Memory:
    """Upper bounds of ConvGenerator's and ConvDiscriminator's weights and of a step's activations (G runs twice,
    D three times: real, fake, G's fake), for `classes` labels (an expression); S is G's first side, image_size / 8 or / 4."""
    side = "(image_size // (8 if image_size % 8 == 0 else 4))"
    g_weights = f"(latent_dim + {classes} + 2) * g_channels * {side}**2 + 14 * g_channels**2 + 16 * g_channels"
    d_weights = f"9 * channels * d_channels + 224 * d_channels**2 + (1 + {classes}) * 4 * d_channels * {side}**2"
    g_step = f"(78 if image_size % 8 == 0 else 30) * g_channels * {side}**2 + 2 * channels * image_size**2"
    augmented = "(12 if diffaugment != 'none' else 1) * channels"  # DiffAugment's copies of the images
    d_step = f"(4 * d_channels + {augmented}) * image_size**2 + 4 * d_channels * {side}**2"
    return Memory(weights=f"{g_weights} + {d_weights} + 8 * d_channels",
                  activations=f"batch_size * (2 * ({g_step}) + 3 * ({d_step}))",
                  image="channels * image_size**2")


def image_batches(cfg, source: str, rng: np.random.Generator, labelled: bool):
    """Endless random batches of the data's images at the family's size and channels (with labels if labelled)."""
    images, labels = data.training_images(source, size=cfg.image_size, channels=cfg.channels)
    if labelled and labels is None:
        raise ValueError(f"data {source!r} has no labels; a conditional family needs them (npz y, class folders)")
    for x, y in data.batches(images, labels if labelled else None, cfg.batch_size, rng):
        yield torch.from_numpy(x), None if y is None else torch.from_numpy(y)


def check_image_config(cfg) -> None:
    """ValueError naming the param when an image family's size or channels do not fit."""
    image_stages(cfg.image_size)
    if cfg.channels not in (1, 3):
        raise ValueError(f"params.channels: must be 1 (grey) or 3 (RGB), got {cfg.channels}")
