"""Image files: the size in the header spent on the budget before a pixel is decoded."""
from __future__ import annotations

from typing import BinaryIO

from PIL import Image

from service.io.budget import ArchiveError, Budget

IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")  # decoders that refuse truncated files
SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def open_image(stream: BinaryIO, where: str, budget: Budget | None, channels: int | None = None,
               kept: tuple[int, int] | None = None) -> Image.Image:
    """An image file with its header read and checked, and what the caller keeps of it spent: `kept` (w, h)
    pixels (its own size unless given) of `channels` (its own bands unless given). Nothing is decoded yet.
    `budget` None: an image already spent, opened again."""
    try:
        img = Image.open(stream, formats=IMAGE_FORMATS)
    except Image.DecompressionBombError:
        raise ArchiveError(f"{where}: its header claims more pixels than the limit (max_image_pixels; a "
                           "decompression bomb?)") from None
    except Exception as exc:  # Pillow's plugins raise many types on hostile headers; each is the sender's fault
        raise ArchiveError(f"{where}: not a readable image (PNG, JPEG, BMP, GIF, WebP or TIFF; "
                           f"{type(exc).__name__})") from None
    if budget is not None:
        width, height = img.size
        budget.check_image(height, width, where)
        width, height = kept or (width, height)
        budget.spend(1, height, width, channels or len(img.getbands()), where)
    return img


def decode(img: Image.Image, where: str) -> Image.Image:
    """The image's pixels decoded (after open_image has spent them)."""
    try:
        img.load()
    except Exception as exc:  # truncated or damaged data: OSError, SyntaxError, ValueError, struct.error, ...
        raise ArchiveError(f"{where}: not a readable image (PNG, JPEG, BMP, GIF, WebP or TIFF; "
                           f"{type(exc).__name__})") from None
    return img


def grey_mode(img: Image.Image) -> bool:
    """Whether an image is grey (stored with one channel) rather than colour."""
    return img.mode in ("1", "L", "LA", "I", "I;16", "F")
