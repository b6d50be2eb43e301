"""png: one picture: a grid of images (rows × cols), a plot of points or curves, or a translation's pairs."""
from __future__ import annotations

from service.formats import Encoder
from service.formats.pictures import combine, pairs, picture_of, pixels, png, to_uint8
from service.sampling.samples import Samples


class Png(Encoder):
    name = "png"
    media_type = "image/png"
    tiles = True
    help = "one picture: a grid of images (see grid), a plot of points or curves; translate: input|output pairs"

    def samples(self, samples: Samples, grid=None, picture=None) -> bytes:
        return png(picture_of(samples, grid, picture))

    def translation(self, result) -> bytes:
        return png(combine(pairs(to_uint8(result.inputs, result.value_range), pixels(result))))
