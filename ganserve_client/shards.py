"""WebDataset tar shards from /v1/datasets, read sample by sample as the bytes arrive.

Each sample is NNNNNN.png (+ NNNNNN.cls), named by its index in the whole dataset; a sample is
yielded once both of its entries are whole, so a reader knows exactly which index to resume from
when a connection drops. Decoding PNGs needs Pillow (the `torch` extra brings it).
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import AsyncIterable, AsyncIterator, Iterable, Iterator

import numpy as np


@dataclass
class Item:
    index: int  # in the whole dataset
    image: np.ndarray  # uint8 (h, w) or (h, w, c)
    label: int | None


class Truncated(Exception):
    """The stream ended before the samples its answer announced (x-count): resume from the next index."""


BLOCK = 512  # tar's unit: a header, or a member's data padded to a multiple of it


class Unpacker:
    """A push parser of a (ustar) tar stream: feed it bytes as they arrive, take the whole samples out.

    One parser for the sync and the async client: neither needs a file object, and a sample is yielded as
    soon as its last entry is whole. Members other than regular files (pax headers) are skipped.
    """

    def __init__(self, labelled: bool):
        self.labelled, self.buffer, self.member, self.pending = labelled, bytearray(), None, {}
        self.ended = False

    def feed(self, chunk: bytes) -> list[Item]:
        self.buffer += chunk
        items = []
        while not self.ended:
            if self.member is None:  # a header
                if len(self.buffer) < BLOCK:
                    break
                header = bytes(self.buffer[:BLOCK])
                del self.buffer[:BLOCK]
                if not header.strip(b"\0"):  # the end-of-archive marker
                    self.ended = True
                    break
                name = header[:100].split(b"\0", 1)[0].decode()
                size = int(header[124:136].split(b"\0", 1)[0].strip() or b"0", 8)
                self.member = (name, size, header[156:157] in (b"0", b"\0"))
            name, size, regular = self.member
            padded = -(-size // BLOCK) * BLOCK
            if len(self.buffer) < padded:
                break
            data = bytes(self.buffer[:size])
            del self.buffer[:padded]
            self.member = None
            if regular:
                item = self._add(name, data)
                if item is not None:
                    items.append(item)
        return items

    def _add(self, name: str, data: bytes) -> Item | None:
        from PIL import Image

        key, _, ext = name.partition(".")
        entry = self.pending.setdefault(int(key), {})
        entry[ext] = data
        if "png" not in entry or ("cls" not in entry and self.labelled):
            return None
        del self.pending[int(key)]
        image = np.asarray(Image.open(io.BytesIO(entry["png"])))
        return Item(int(key), image, int(entry["cls"]) if "cls" in entry else None)


def read(chunks: Iterable[bytes], labelled: bool) -> Iterator[Item]:
    """Items of a tar stream in order; `labelled`: wait for each sample's .cls before yielding it."""
    unpacker = Unpacker(labelled)
    for chunk in chunks:
        yield from unpacker.feed(chunk)


async def aread(chunks: AsyncIterable[bytes], labelled: bool) -> AsyncIterator[Item]:
    """read(), for an async stream of byte chunks."""
    unpacker = Unpacker(labelled)
    async for chunk in chunks:
        for item in unpacker.feed(chunk):
            yield item
