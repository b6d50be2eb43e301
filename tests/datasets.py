"""Data that is not MNIST, made here (no downloads): labelled colour patterns and grey shapes, seeded.

patterns(n): 32×32 RGB, six classes: horizontal, vertical and diagonal stripes, checkerboards, linear and radial
gradients, each image in two colours of its own at a random period and phase. shapes(n): 28×28 grey, four
classes: discs, squares, rings and crosses at random places and sizes on a dark ground (nothing like a digit
stroke). Both as uint8 (n, h, w[, 3]) with labels (n,), as a user's npz holds them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

PATTERNS = ("horizontal", "vertical", "diagonal", "checkerboard", "gradient", "radial")
SHAPES = ("disc", "square", "ring", "cross")


def patterns(n: int, seed: int = 0, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(n, size, size, 3) uint8 colour patterns and their labels (n,), classes in turn."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size  # (size, size) in [0, 1)
    images, labels = np.empty((n, size, size, 3), np.uint8), np.arange(n) % len(PATTERNS)
    for i, label in enumerate(labels):
        period, phase = rng.uniform(0.15, 0.35), rng.uniform(0, 1)
        wave = lambda t: (np.sin(2 * np.pi * (t / period + phase)) > 0).astype(float)  # noqa: E731
        kind = PATTERNS[label]
        if kind == "horizontal":
            mix = wave(yy)
        elif kind == "vertical":
            mix = wave(xx)
        elif kind == "diagonal":
            mix = wave((xx + yy) / np.sqrt(2))
        elif kind == "checkerboard":
            mix = np.logical_xor(wave(xx), wave(yy)).astype(float)
        elif kind == "gradient":
            angle = rng.uniform(0, 2 * np.pi)
            t = (xx - 0.5) * np.cos(angle) + (yy - 0.5) * np.sin(angle)
            mix = (t - t.min()) / (t.max() - t.min())
        else:
            cy, cx = rng.uniform(0.3, 0.7, 2)
            mix = np.clip(np.hypot(yy - cy, xx - cx) / 0.7, 0, 1)
        a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        images[i] = np.clip(a * (1 - mix[..., None]) + b * mix[..., None], 0, 255).astype(np.uint8)
    return images, labels.astype(np.int64)


def shapes(n: int, seed: int = 0, size: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """(n, size, size) uint8 grey shapes on a dark ground and their labels (n,), classes in turn."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    images, labels = np.empty((n, size, size), np.uint8), np.arange(n) % len(SHAPES)
    for i, label in enumerate(labels):
        r = rng.uniform(0.18, 0.32) * size
        cy, cx = rng.uniform(r + 1, size - r - 1, 2)
        dy, dx = np.abs(yy - cy), np.abs(xx - cx)
        kind = SHAPES[label]
        if kind == "disc":
            mask = np.hypot(dy, dx) <= r
        elif kind == "square":
            mask = np.maximum(dy, dx) <= r * 0.85
        elif kind == "ring":
            mask = np.abs(np.hypot(dy, dx) - r * 0.8) <= r * 0.25
        else:
            mask = ((dy <= r * 0.25) & (dx <= r)) | ((dx <= r * 0.25) & (dy <= r))
        ground, ink = rng.uniform(10, 60), rng.uniform(150, 255)
        images[i] = np.where(mask, ink, ground).astype(np.uint8)
    return images, labels.astype(np.int64)


def save_npz(path: Path, images: np.ndarray, labels: np.ndarray | None) -> Path:
    """An npz as a user uploads one: x (and y)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **({"x": images} if labels is None else {"x": images, "y": labels}))
    return path
