"""The limits one caller's files are decoded under, and what has been spent of them."""
from __future__ import annotations

from dataclasses import dataclass, field

from service.settings import Settings

MAX_RATIO = 200  # compressed -> uncompressed, per zip (and npz) member; beyond this a member is treated as a bomb
TRANSLATE_BYTES_PER_PIXEL = 4  # /translate inflates at most a float32 of every pixel it may decode


class ArchiveError(ValueError):
    """Refused input; the message names the file (or member) and the problem or the limit."""


@dataclass
class Budget:
    """Limits for images (count, pixels each from the header, pixels in all), bytes inflated and classes.

    Everything is spent before the pixels or bytes it stands for are allocated. `names` says which setting
    each limit comes from, so every message names the setting a user can look up.
    """
    max_images: int
    max_image_pixels: int
    max_pixels: int
    max_inflated_bytes: int
    max_classes: int = 0
    names: dict[str, str] = field(default_factory=dict)
    images: int = 0
    pixels: int = 0
    inflated: int = 0

    @classmethod
    def for_uploads(cls, settings: Settings) -> Budget:
        """What one upload may hold; training reads its sources under the same limits."""
        return cls(settings.max_upload_files, settings.max_image_pixels, settings.max_upload_pixels,
                   settings.max_upload_inflated_bytes, settings.max_upload_classes,
                   {"max_images": "max_upload_files", "max_pixels": "max_upload_pixels",
                    "max_inflated_bytes": "max_upload_inflated_bytes", "max_classes": "max_upload_classes"})

    @classmethod
    def for_translate(cls, settings: Settings) -> Budget:
        """What one /translate request may hold: its inflated bytes derive from its pixels (a float32 each)."""
        return cls(settings.max_n, settings.max_image_pixels, settings.max_translate_pixels,
                   TRANSLATE_BYTES_PER_PIXEL * settings.max_translate_pixels, 0,
                   {"max_images": "max_n", "max_pixels": "max_translate_pixels",
                    "max_inflated_bytes": f"{TRANSLATE_BYTES_PER_PIXEL} bytes a pixel of max_translate_pixels"})

    def name(self, limit: str) -> str:
        return self.names.get(limit, limit)

    @property
    def max_entries(self) -> int:
        """Entries a zip may list: each image may come with a Finder `._` companion, plus a few notes."""
        return 2 * self.max_images + 64

    def check_count(self, count: int, where: str) -> None:
        """Refuse `count` more images before any is opened (nothing is spent: each is spent as it is read)."""
        if self.images + count > self.max_images:
            raise ArchiveError(f"{where}: {self.images + count} images is over the limit of {self.max_images} "
                               f"({self.name('max_images')})")

    def check_image(self, height: int, width: int, where: str) -> None:
        """Refuse an image larger than max_image_pixels, from its header (a decompression bomb costs nothing)."""
        if height * width > self.max_image_pixels:
            raise ArchiveError(f"{where}: {width}×{height} images are over the limit of {self.max_image_pixels} "
                               "pixels (max_image_pixels)")

    def spend(self, count: int, height: int, width: int, channels: int, where: str) -> None:
        """Account for `count` images of height×width×channels, read from a header before any is decoded."""
        self.check_image(height, width, where)
        self.check_count(count, where)
        if self.pixels + count * height * width * channels > self.max_pixels:
            raise ArchiveError(f"{where}: {self.pixels + count * height * width * channels} pixels in all is over "
                               f"the limit of {self.max_pixels} ({self.name('max_pixels')})")
        self.images += count
        self.pixels += count * height * width * channels

    def spend_bytes(self, count: int, where: str) -> None:
        """Account for `count` bytes about to be inflated (as an archive declares them, before they are)."""
        if self.inflated + count > self.max_inflated_bytes:
            raise ArchiveError(f"{where}: inflates to {self.inflated + count} bytes, over the limit of "
                               f"{self.max_inflated_bytes} ({self.name('max_inflated_bytes')})")
        self.inflated += count

    def check_classes(self, count: int, where: str) -> None:
        if count > self.max_classes:
            raise ArchiveError(f"{where}: {count} classes is over the limit of {self.max_classes} "
                               f"({self.name('max_classes')})")
