"""Digit images brought to 28×28 the way MNIST was made: shared by training (the UCI digits) and serving.

MNIST's digits were "size normalized to fit in a 20×20 pixel box while preserving their aspect ratio",
then "centered in a 28×28 image by computing the center of mass of the pixels" (LeCun et al.). `mnist_fit`
does the same to any grey digit (ink bright on a dark ground): crop to the ink, scale the longer side to
20, place the centre of mass at the middle. Training fits the 8×8 UCI digits with it, and the translate
endpoint fits square inputs of other sizes with it, so what is served is what was trained on.
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

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


# --- Request images: decoded with every limit checked before the pixels are allocated -------------------

PNG_MAGIC, NPY_MAGIC, ZIP_MAGIC = b"\x89PNG\r\n\x1a\n", b"\x93NUMPY", b"PK\x03\x04"
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "WEBP")  # what PIL may decode here; anything else is not an image
ARRAY_KEYS = ("x", "images", "image", "samples")  # an .npz's image array, by the first of these names it holds
MAX_RATIO = 200  # compressed -> uncompressed; beyond this a zip entry is treated as a bomb (as uploads do)


class InputError(SamplingError):
    """Input images that cannot be translated; the message names the file (or field) and the problem."""


@dataclass
class Budget:
    """The limits one request's images are decoded under, and what has been spent of them."""
    max_images: int
    max_image_pixels: int
    max_pixels: int
    images: int = 0
    pixels: int = 0

    def spend(self, count: int, h: int, w: int, where: str) -> None:
        """Account for count images of h×w before decoding them; InputError names the limit."""
        if h * w > self.max_image_pixels:
            raise InputError(f"{where}: {w}×{h} images are over the limit of {self.max_image_pixels} pixels "
                             "(max_image_pixels)")
        self.images += count
        self.pixels += count * h * w
        if self.images > self.max_images:
            raise InputError(f"{where}: {self.images} images is over the limit of {self.max_images} (max_n)")
        if self.pixels > self.max_pixels:
            raise InputError(f"{where}: {self.pixels} pixels in all is over the limit of {self.max_pixels} "
                             "(max_translate_pixels)")


def decode(raw: bytes, where: str, budget: Budget) -> list[np.ndarray]:
    """One file's images as grey arrays (h, w) in [0, 1]: a PNG (or JPEG, BMP, WebP), .npy, .npz or zip of images."""
    if raw.startswith(NPY_MAGIC):
        return _split(_npy(raw, where, budget), where)
    if raw.startswith(ZIP_MAGIC):
        try:
            archive = zipfile.ZipFile(io.BytesIO(raw))
        except zipfile.BadZipFile:
            raise InputError(f"{where}: not a readable zip") from None
        with archive:
            entries = [i for i in archive.infolist() if not i.is_dir() and not _hidden(i.filename)]
            if entries and all(i.filename.endswith(".npy") for i in entries):
                return _split(_npz(archive, entries, where, budget), where)
            return [img for info in sorted(entries, key=lambda i: i.filename)
                    for img in decode_image(_entry(archive, info, budget), f"{where}/{info.filename}", budget)]
    return decode_image(raw, where, budget)


def decode_image(raw: bytes, where: str, budget: Budget) -> list[np.ndarray]:
    """One image file as [(h, w) grey in [0, 1]]; its header's size is checked before its pixels are decoded."""
    try:
        with Image.open(io.BytesIO(raw), formats=IMAGE_FORMATS) as img:
            w, h = img.size
            budget.spend(1, h, w, where)
            img.load()
            grey = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    except InputError:
        raise
    except Image.DecompressionBombError:
        raise InputError(f"{where}: its header claims more pixels than the limit (a decompression bomb?)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"{where}: not an image, .npy, .npz or zip of images ({type(exc).__name__})") from None
    return [grey]


def conform(images: list[np.ndarray], shape: list[int]) -> np.ndarray:
    """Grey images (h, w) in [0, 1] -> (n, 1, 28, 28) in [-1, 1] for a domain of that shape.

    An image of the domain's size is taken as it is; another square size is fitted as MNIST was
    (mnist_fit: the digit keeps its aspect); anything else is refused, naming the shape.
    """
    channels, height, width = shape
    if channels != 1:
        raise InputError(f"images: the domain takes {shape}; only grey domains are served")
    out = np.empty((len(images), 1, height, width), np.float32)
    for i, img in enumerate(images):
        h, w = img.shape
        if (h, w) == (height, width):
            out[i, 0] = img
        elif h == w and (height, width) == (SIZE, SIZE):
            out[i, 0] = mnist_fit(img)
        else:
            raise InputError(f"images: image {i} is {w}×{h}; the domain takes {width}×{height} (other square "
                             "sizes are fitted as MNIST was; other shapes would be distorted)")
    return out * 2 - 1


def _hidden(name: str) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in name.split("/"))


def _entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: Budget) -> bytes:
    """A zip entry's bytes, refused before reading if its claimed size or ratio is out of bounds."""
    if info.flag_bits & 0x1:
        raise InputError(f"{info.filename}: encrypted entries are not accepted")
    if info.compress_size and info.file_size / info.compress_size > MAX_RATIO:
        raise InputError(f"{info.filename}: compression ratio over {MAX_RATIO}:1 (a zip bomb?)")
    if info.file_size > budget.max_pixels * 8 + 4096:
        raise InputError(f"{info.filename}: unpacks to {info.file_size} bytes, over the pixel limit")
    with archive.open(info) as f:
        data = f.read(info.file_size + 1)
    if len(data) > info.file_size:
        raise InputError(f"{info.filename}: holds more than its header says (a zip bomb?)")
    return data


def _npy(raw: bytes, where: str, budget: Budget) -> np.ndarray:
    """An .npy's array, its header (shape, dtype) checked against the budget before the data is read."""
    buffer = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(buffer)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(buffer, max_header_size=10_000)
    except (ValueError, OSError, SyntaxError) as exc:
        raise InputError(f"{where}: not a readable .npy ({exc})") from None
    if dtype.hasobject or dtype.kind not in "biuf":
        raise InputError(f"{where}: images must be numbers, got dtype {dtype}")
    height, width = _image_axes(shape, where)
    budget.spend(int(np.prod(shape)) // max(1, height * width) if len(shape) > 2 else 1, height, width, where)
    if len(raw) - buffer.tell() < int(np.prod(shape)) * dtype.itemsize:
        raise InputError(f"{where}: the .npy header says {list(shape)} {dtype}, the file holds less")
    return np.load(io.BytesIO(raw), allow_pickle=False)


def _npz(archive: zipfile.ZipFile, entries: list[zipfile.ZipInfo], where: str, budget: Budget) -> np.ndarray:
    names = {i.filename[:-4]: i for i in entries}
    key = next((k for k in ARRAY_KEYS if k in names), None) or (next(iter(names)) if len(names) == 1 else None)
    if key is None:
        raise InputError(f"{where}: an .npz needs an image array named one of {list(ARRAY_KEYS)} (or only one "
                         f"array); has {sorted(names)}")
    return _npy(_entry(archive, names[key], budget), f"{where}:{key}", budget)


def _image_axes(shape: tuple, where: str) -> tuple[int, int]:
    """(h, w) of an array of one image (h, w) or many: (n, h, w), (n, 1, h, w), (n, h, w, 1)."""
    if len(shape) in (2, 3):
        return shape[-2], shape[-1]
    if len(shape) == 4 and shape[1] == 1:
        return shape[2], shape[3]
    if len(shape) == 4 and shape[3] == 1:
        return shape[1], shape[2]
    raise InputError(f"{where}: images must be (h, w), (n, h, w), (n, 1, h, w) or (n, h, w, 1) grey arrays, got "
                     f"shape {list(shape)}")


def _split(array: np.ndarray, where: str) -> list[np.ndarray]:
    """An array of grey images, its values in 0..255 (integers), [0, 1] or [-1, 1] (floats), as [(h, w) in [0, 1]]."""
    height, width = _image_axes(array.shape, where)
    images = array.reshape(-1, height, width)
    if images.dtype.kind == "b":
        images = images.astype(np.float32)
    elif images.dtype.kind in "iu":
        if images.size and (images.min() < 0 or images.max() > 255):
            raise InputError(f"{where}: integer pixels must lie in 0..255, got {images.min()}..{images.max()}")
        images = images.astype(np.float32) / 255.0
    else:
        images = images.astype(np.float32)
        if not np.isfinite(images).all():
            raise InputError(f"{where}: pixels must be finite numbers")
        low, high = (images.min(), images.max()) if images.size else (0.0, 1.0)
        if low >= 0 and high <= 1:
            pass
        elif low >= -1 and high <= 1:
            images = (images + 1) / 2
        elif low >= 0 and high <= 255:
            images = images / 255.0
        else:
            raise InputError(f"{where}: pixels must lie in [0, 1], [-1, 1] or 0..255, got {low:g}..{high:g}")
    return list(images)
