"""gif, webp: images animated one sample a frame, looping (a walk plays along its path)."""
from __future__ import annotations

from service.formats import Encoder
from service.formats.pictures import animation, pixels
from service.sampling.samples import Samples


class Animation(Encoder):
    images_only = ("samples",)

    def __init__(self, name: str, media_type: str, **options):
        """`options`: Pillow's save options of the format (webp: lossless)."""
        self.name, self.media_type, self.options = name, media_type, options
        self.help = "images animated one sample a frame (a walk plays along its path)"

    def samples(self, samples: Samples, grid=None, picture=None) -> bytes:
        return animation(pixels(samples), self.name, **self.options)

    def translation(self, result) -> bytes:
        return animation(pixels(result), self.name, **self.options)
