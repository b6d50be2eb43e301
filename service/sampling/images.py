"""Digit images brought to 28×28 the way MNIST was made: shared by training (the UCI digits) and serving.

MNIST's digits were "size normalized to fit in a 20×20 pixel box while preserving their aspect ratio",
then "centered in a 28×28 image by computing the center of mass of the pixels" (LeCun et al.). `mnist_fit`
does the same to any grey digit (ink bright on a dark ground): crop to the ink, scale the longer side to
20, place the centre of mass at the middle. Training fits the 8×8 UCI digits with it, and the translate
endpoint fits square inputs of other sizes with it, so what is served is what was trained on.
"""
from __future__ import annotations

import io
from typing import BinaryIO, Iterable, Iterator

import numpy as np
from PIL import Image

from service import io as archives
from service.sampling.samples import SamplingError

SIZE = 28
BOX = 20
INK = 0.02  # pixels above this (in [0, 1]) count as ink for the bounding box: above 8-bit noise, below UCI's 1/16


def mnist_fit(image: np.ndarray) -> np.ndarray:
    """One grey image (h, w) in [0, 1] -> (28, 28) float32 in [0, 1], fitted and centred as MNIST was."""
    image = np.asarray(image, dtype=np.float32)
    rows, cols = np.nonzero(image > INK)
    if len(rows) == 0:  # no ink: an empty digit stays empty
        return np.zeros((SIZE, SIZE), np.float32)
    crop = image[rows.min():rows.max() + 1, cols.min():cols.max() + 1]  # (h, w) the ink's box
    h, w = crop.shape
    scale = BOX / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    fitted = np.asarray(Image.fromarray(crop, mode="F").resize((nw, nh), Image.BILINEAR), dtype=np.float32)
    fitted = np.clip(fitted, 0.0, 1.0)  # (nh, nw)
    mass = fitted.sum()
    cy = (fitted.sum(1) * np.arange(nh)).sum() / mass if mass > 0 else (nh - 1) / 2
    cx = (fitted.sum(0) * np.arange(nw)).sum() / mass if mass > 0 else (nw - 1) / 2
    centre = (SIZE - 1) / 2
    top = int(np.clip(round(centre - cy), 0, SIZE - nh))
    left = int(np.clip(round(centre - cx), 0, SIZE - nw))
    out = np.zeros((SIZE, SIZE), np.float32)
    out[top:top + nh, left:left + nw] = fitted
    return out


def mnist_fit_all(images: np.ndarray) -> np.ndarray:
    """Grey images (n, h, w) in [0, 1] -> (n, 28, 28) float32 in [0, 1]."""
    return np.stack([mnist_fit(img) for img in images]) if len(images) else np.zeros((0, SIZE, SIZE), np.float32)


# --- Request images: read by the one archive reader (service/io), under one budget per request -------------


class InputError(SamplingError):
    """Input images that cannot be translated; the message names the file (or field) and the problem."""


def decode(stream: BinaryIO, where: str, budget: archives.Budget) -> Iterator[np.ndarray]:
    """One file's images, one at a time, as grey (h, w) float32 in [0, 1]: an image (PNG, JPEG, BMP, GIF, WebP,
    TIFF), an .npy, an .npz or a zip of images (in name order). Refusals are InputErrors naming the file."""
    try:
        kind = archives.kind_of(stream)
        if kind == "npy":
            yield from _grey(archives.npy(stream, where, budget))
        elif kind == "zip":
            with archives.open_zip(stream, where, budget) as archive:
                listing = archives.entries(archive, where)
                if listing.is_npz():
                    yield from _grey(archives.npz(archive, listing, where, budget, labels=False).images)
                    return
                budget.check_count(len(listing.entries), where)
                budget.spend_bytes(sum(e.size for e in listing.entries), where)
                for entry in sorted(listing.entries, key=lambda e: e.path):
                    data = io.BytesIO(archives.read(archive, entry, where))
                    yield _image(data, f"{where}/{entry.path}", budget)
        else:
            yield _image(stream, where, budget)
    except archives.ArchiveError as exc:
        raise InputError(str(exc)) from None


def conform(images: Iterable[np.ndarray], shape: list[int]) -> np.ndarray:
    """Grey images (h, w) in [0, 1] -> (n, 1, 28, 28) in [-1, 1] for a domain of that shape, one at a time (so a
    request's decoded images are never all held at once).

    An image of the domain's size is taken as it is; another square size is fitted as MNIST was
    (mnist_fit: the digit keeps its aspect); anything else is refused, naming the shape.
    """
    channels, height, width = shape
    if channels != 1:
        raise InputError(f"images: the domain takes {shape}; only grey domains are served")
    out = []
    for i, img in enumerate(images):
        h, w = img.shape
        if (h, w) == (height, width):
            out.append(np.array(img, np.float32))
        elif h == w and (height, width) == (SIZE, SIZE):
            out.append(mnist_fit(img))
        else:
            raise InputError(f"images: image {i} is {w}×{h}; the domain takes {width}×{height} (other square "
                             "sizes are fitted as MNIST was; other shapes would be distorted)")
    if not out:
        return np.zeros((0, 1, height, width), np.float32)
    return np.stack(out)[:, None] * 2 - 1


def _image(stream: BinaryIO, where: str, budget: archives.Budget) -> np.ndarray:
    """One image file as grey (h, w) float32 in [0, 1], its size spent (one channel: it is made grey) first."""
    with archives.open_image(stream, where, budget, channels=1) as img:
        return np.asarray(archives.decode(img, where).convert("L"), dtype=np.float32) / 255.0


def _grey(images: archives.Images) -> Iterator[np.ndarray]:
    """An array's images one at a time as grey (h, w) in [0, 1]; colour made grey as Pillow does."""
    for chunk in images.unit():  # (k, h, w, c)
        grey = chunk[..., 0] if chunk.shape[-1] == 1 else chunk @ archives.arrays.GREY
        yield from grey
