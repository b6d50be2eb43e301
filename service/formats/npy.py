"""npy: the samples as one array: uint8 images (n, h, w[, c]) or float32 numbers."""
from __future__ import annotations

import io

import numpy as np

from service.formats import Encoder
from service.formats.pictures import pixels
from service.sampling.samples import Samples


class Npy(Encoder):
    name = "npy"
    media_type = "application/octet-stream"
    help = "one array: uint8 images (n, h, w[, c]) or float32 numbers; translate: the outputs"

    def samples(self, samples: Samples, grid=None, picture=None) -> bytes:
        return _save(array(samples))

    def translation(self, result) -> bytes:
        return _save(pixels(result))

    def cheap(self, samples: Samples) -> bool:
        return samples.values.nbytes <= 2**20


def array(samples: Samples) -> np.ndarray:
    """Images as uint8 (n, h, w[, c]), numbers as float32: the x of every array format."""
    return pixels(samples) if samples.images else samples.values.astype(np.float32)


def _save(values: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, values)
    return buffer.getvalue()
