"""Bulk labelled samples for augmentation pipelines, written as a stream in bounded chunks.

A dataset of n samples is sampled CHUNK at a time: sample i takes the latent (seed, i) as in
/samples (in `nice`, slot i's candidates are (seed, i·oversample …)), and the archive is written
as it goes, so memory stays flat however large n is. The same request gives the same bytes. Explicit
latents and walks (steering.Steering) stream the same way: latent i is the request's row or step i.
"""
from __future__ import annotations

import io
import zipfile
from typing import AsyncIterator, Awaitable, Callable, Iterator

import anyio
import numpy as np

from service.repository import Model
from service.sampling import encoding, plans, steering
from service.sampling.batching import Overloaded
from service.sampling.samples import SamplingError
from service.sampling.steering import Steering

CHUNK = 256  # samples per step: each step is one bounded generator (and discriminator) pass


class _Pipe(io.RawIOBase):
    """A write-only stream whose bytes the response drains after each chunk (zipfile streams into it)."""

    def __init__(self):
        self.buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.buffer += data
        return len(data)

    def drain(self) -> bytes:
        out, self.buffer = bytes(self.buffer), bytearray()
        return out


def _entry(archive: zipfile.ZipFile, name: str, compress: bool = False):
    return archive.open(encoding.zip_info(name, compress), "w", force_zip64=True)


def _chunks(model: Model, n: int, seed: int | None, mode: str, oversample: int, labels: np.ndarray | None,
            steer: Steering):
    for start in range(0, n, CHUNK):
        size = min(CHUNK, n - start)
        part = None if labels is None else labels[start:start + size]
        yield start, plans.run(steering.plan(model, size, seed, mode, oversample, part, steer, start))


def check(model: Model, fmt: str, mode: str = "plain") -> None:
    """Refuse what cannot be streamed before the response starts."""
    if mode != "plain" and model.discriminator is None:
        raise SamplingError(f"mode: model {model.name!r} has no discriminator; use mode 'plain'")
    if fmt == "zip" and model.card.kind != "image":
        raise SamplingError(f"format: 'zip' holds images; model {model.name!r} makes {model.card.kind}: use 'npz'")


def stream(model: Model, n: int, seed: int | None, mode: str, oversample: int, labels: np.ndarray | None,
           fmt: str, steer: Steering = Steering()) -> Iterator[bytes]:
    """The archive's bytes, chunk by chunk: npz (x, y, label_names, scores) or zip (class folders)."""
    pipe = _Pipe()
    chunks = _chunks(model, n, seed, mode, oversample, labels, steer)
    with zipfile.ZipFile(pipe, "w", allowZip64=True) as archive:
        if fmt == "npz":
            yield from _npz(archive, pipe, model, n, labels, chunks)
        else:
            yield from _zip(archive, pipe, chunks)
    yield pipe.drain()


def _npz(archive, pipe, model, n, labels, chunks) -> Iterator[bytes]:
    image = model.card.kind == "image"
    sample_shape = tuple(model.card.sample_shape)
    if image:  # served as uint8 (n, h, w[, c]), as the samples endpoint's npy
        c, h, w = sample_shape
        shape, dtype = ((n, h, w) if c == 1 else (n, h, w, c)), np.uint8
    else:
        shape, dtype = (n, *sample_shape), np.float32
    scores = []
    with _entry(archive, "x.npy") as f:
        np.lib.format.write_array_header_2_0(f, {"descr": np.dtype(dtype).str, "fortran_order": False,
                                                 "shape": shape})
        for _, part in chunks:
            values = encoding.to_uint8(part.values) if image else part.values.astype(np.float32)
            f.write(np.ascontiguousarray(values).tobytes())
            if part.scores is not None:
                scores.append(part.scores)
            yield pipe.drain()
    extra = {}
    if labels is not None:
        extra["y"] = labels.astype(np.int64)
        extra["label_names"] = np.asarray(model.labels)
    if scores:
        extra["scores"] = np.concatenate(scores).astype(np.float32)
    for name, array in extra.items():
        with _entry(archive, f"{name}.npy") as f:
            np.lib.format.write_array(f, array, allow_pickle=False)
    yield pipe.drain()


def _zip(archive, pipe, chunks) -> Iterator[bytes]:
    """PNGs in one folder per label (the layout POST /v1/data accepts back) and an index.csv."""
    rows = [encoding.INDEX_HEADER]
    for start, part in chunks:
        folders = part.label_names_per_sample() or ["samples"] * len(part.values)
        rows += encoding.write_pngs(archive, part, [f"{folder}/{start + j:07d}.png" for j, folder in enumerate(folders)])
        yield pipe.drain()
    with _entry(archive, "index.csv", compress=True) as f:
        f.write(("\n".join(rows) + "\n").encode())


class Streams:
    """The dataset streams of one API process: at most `streams` at once (503 beyond), their chunks computed
    `workers` at a time on threads of their own, apart from the pool that health, models and jobs routes
    use; a stream stops at its next chunk once its client is gone."""

    def __init__(self, streams: int, workers: int):
        self.streams, self.active = streams, 0
        self.limiter = anyio.CapacityLimiter(workers)

    def follow(self, chunks: Iterator[bytes], gone: Callable[[], Awaitable[bool]]) -> AsyncIterator[bytes]:
        """Admit a stream now (Overloaded when full), and return its bytes as the client takes them."""
        if self.active >= self.streams:
            raise Overloaded(f"{self.active} datasets are streaming, the limit (max_dataset_streams); retry shortly",
                             retry_after=5)
        self.active += 1
        return self._follow(chunks, gone)

    async def _follow(self, chunks: Iterator[bytes], gone: Callable[[], Awaitable[bool]]) -> AsyncIterator[bytes]:
        try:
            while not await gone():
                chunk = await anyio.to_thread.run_sync(next, chunks, None, limiter=self.limiter)
                if chunk is None:
                    return
                yield chunk
        finally:
            self.active -= 1
            chunks.close()
