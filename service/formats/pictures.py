"""Pictures every encoder shares: generator images as uint8, grids, PNG and animations, plots of numbers."""
from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw

from service.sampling.samples import Samples


class EncodingError(ValueError):
    """A format the samples cannot be written in; the message names the field."""


FRAME_MS = 120  # an animation's frame: a walk plays along its path


def to_uint8(values: np.ndarray, value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """Generator images (n, c, h, w) in their value range ([-1, 1]: tanh; [0, 1]: an imported sigmoid G; ...) ->
    uint8 (n, h, w) or (n, h, w, c)."""
    low, high = value_range
    scale = 255.0 / (high - low)
    pixels = np.clip(np.rint((values - low) * scale if low else values * scale), 0, 255).astype(np.uint8)
    pixels = pixels.transpose(0, 2, 3, 1)  # (n, h, w, c)
    return pixels[..., 0] if pixels.shape[-1] == 1 else pixels


def pixels(result) -> np.ndarray:
    """The images of Samples (or a Translation) as uint8, read in their own value range."""
    return to_uint8(result.values, result.value_range)


def grid_shape(n: int) -> tuple[int, int]:
    """(rows, cols) as the classic combine_images lays them out: cols ⌊√n⌋, rows ⌈n / cols⌉."""
    cols = max(1, int(math.sqrt(n)))
    return math.ceil(n / cols), cols


def combine(images: np.ndarray, shape: tuple[int, int] | None = None) -> np.ndarray:
    """uint8 images (n, h, w[, c]) tiled into one (rows·h, cols·w[, c]) image, row by row."""
    n, h, w = images.shape[:3]
    rows, cols = shape or grid_shape(n)
    if rows * cols < n:
        raise EncodingError(f"grid: {rows}×{cols} holds {rows * cols} images, fewer than n={n}")
    out = np.zeros((rows * h, cols * w, *images.shape[3:]), dtype=np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        out[r * h:(r + 1) * h, c * w:(c + 1) * w] = img
    return out


GAP = 4  # pixels between the input|output pairs of a translation's png grid
GAP_GREY = 96


def pairs(inputs: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """uint8 images (n, h, w[, c]) twice -> (n, h, 2w + GAP[, c]): each input beside its output, a grey gap after."""
    n, h, w = inputs.shape[:3]
    out = np.full((n, h, 2 * w + GAP, *inputs.shape[3:]), GAP_GREY, np.uint8)
    out[:, :, :w], out[:, :, w:2 * w] = inputs, outputs
    return out


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def animation(images: np.ndarray, fmt: str, **options) -> bytes:
    """uint8 images (n, h, w[, c]) as an animation in Pillow's format `fmt` that loops, FRAME_MS a frame."""
    frames = [Image.fromarray(img) for img in images]
    buffer = io.BytesIO()
    frames[0].save(buffer, format=fmt.upper(), save_all=True, append_images=frames[1:], duration=FRAME_MS,
                   loop=0, **options)
    return buffer.getvalue()


PALETTE = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14)]
REFERENCE_GREY = 160  # the reference lines behind samples, unless a line names its own grey


def plot(samples: Samples, size: int = 480, title: str | None = None, picture: dict | None = None) -> np.ndarray:
    """Points (x, y) or curves (values at picture's x) as an RGB picture, over the card's reference lines in grey.

    `picture` is the card's: axes, the x of a curve's values, and the family's truth as grey polylines.
    Without one, the axes fit the data and nothing is drawn behind it.
    """
    picture = picture or {}
    values = samples.values.reshape(len(samples.values), -1).astype(np.float64)
    points = samples.kind == "points"  # (x, y) per sample, else a curve per sample
    xs = np.asarray(picture.get("x") or np.linspace(-1, 1, values.shape[1]), np.float64)
    x_lim = picture.get("x_range") or _span(values[:, 0] if points else xs)
    y_lim = picture.get("y_range") or _span(values[:, 1] if points else values)
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)

    def to_px(x, y):
        px = (np.asarray(x) - x_lim[0]) / (x_lim[1] - x_lim[0]) * (size - 1)
        py = (1 - (np.asarray(y) - y_lim[0]) / (y_lim[1] - y_lim[0])) * (size - 1)
        return list(zip(px.tolist(), py.tolist()))

    for line in picture.get("lines", []):
        xy = np.asarray(line["points"], np.float64)
        grey = int(line.get("grey", REFERENCE_GREY))
        draw.line(to_px(xy[:, 0], xy[:, 1]), fill=(grey, grey, grey), width=int(line.get("width", 3)))
    labels = samples.labels if samples.labels is not None else np.zeros(len(values), np.int64)
    if points:
        for (x, y), label in zip(to_px(values[:, 0], values[:, 1]), labels):
            draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=PALETTE[int(label) % len(PALETTE)])
    else:
        for curve, label in zip(values[:64], labels[:64]):
            draw.line(to_px(xs, curve), fill=PALETTE[int(label) % len(PALETTE)], width=1)
    if title:
        draw.text((8, 6), title, fill=(0, 0, 0))
    if samples.labels is not None and samples.label_names:  # a legend: label name in its colour
        for i, name in enumerate(samples.label_names[:len(PALETTE)]):
            draw.text((8, 22 + 14 * i), name, fill=PALETTE[i])
    return np.asarray(image)


def _span(values: np.ndarray) -> tuple[float, float]:
    """Axis limits around data, a tenth wider on each side (and never empty)."""
    low, high = (float(values.min()), float(values.max())) if values.size else (-1.0, 1.0)
    pad = (high - low) / 10 or 1.0
    return low - pad, high + pad


def picture_of(samples: Samples, grid: tuple[int, int] | None = None, picture: dict | None = None) -> np.ndarray:
    """The one picture of a response: a grid of images, or a plot of points or curves."""
    if samples.images:
        return combine(pixels(samples), grid)
    return plot(samples, picture=picture)
