"""WebDataset tar shards from /v1/datasets, read sample by sample as the bytes arrive.

Each sample is NNNNNN.png (+ NNNNNN.cls), named by its index in the whole dataset; a sample is
yielded once both of its entries are whole, so a reader knows exactly which index to resume from
when a connection drops. Decoding PNGs needs Pillow (the `torch` extra brings it).
"""
from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np


@dataclass
class Item:
    index: int  # in the whole dataset
    image: np.ndarray  # uint8 (h, w) or (h, w, c)
    label: int | None


class _Chunks(io.RawIOBase):
    """A file over an iterator of byte chunks."""

    def __init__(self, chunks: Iterable[bytes]):
        self.chunks, self.left = iter(chunks), b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self.left:
            self.left = next(self.chunks, None)
            if self.left is None:
                return 0
        k = min(len(buffer), len(self.left))
        buffer[:k], self.left = self.left[:k], self.left[k:]
        return k


def read(chunks: Iterable[bytes], labelled: bool) -> Iterator[Item]:
    """Items of a tar stream in order; `labelled`: wait for each sample's .cls before yielding it."""
    from PIL import Image

    pending: dict[int, dict] = {}
    with tarfile.open(fileobj=io.BufferedReader(_Chunks(chunks), 1 << 16), mode="r|") as archive:
        for member in archive:
            key, _, ext = member.name.partition(".")
            data = archive.extractfile(member).read()
            entry = pending.setdefault(int(key), {})
            entry[ext] = data
            if "png" in entry and ("cls" in entry or not labelled):
                del pending[int(key)]
                image = np.asarray(Image.open(io.BytesIO(entry["png"])))
                yield Item(int(key), image, int(entry["cls"]) if "cls" in entry else None)
