"""Bulk labelled samples for augmentation pipelines, written as a stream in bounded chunks.

A dataset of n samples is sampled CHUNK at a time: sample i takes the latent (seed, i) as in
/samples (in `nice`, `filtered` and `rejection`, slot i's candidates are (seed, i·oversample …)),
and the archive is written as it goes, so memory stays flat however large n is. The same request
gives the same bytes. `start` offsets every index, so samples start..start+n-1 of a dataset are
exactly those of the whole: a download can resume, and workers can split a dataset by ranges.
Explicit latents and walks (steering.Steering) stream the same way: latent i is the request's row
or step i.

Formats: npz (x, y, label_names, scores: the keys of /samples and of uploads), zip (a folder of PNGs
per label, the layout POST /v1/data takes back), tar (WebDataset: 000123.png + 000123.cls, each
sample complete as soon as its bytes arrive, so a reader can use it while it streams).
"""
from __future__ import annotations

import io
import tarfile
import zipfile
from typing import AsyncIterator, Awaitable, Callable, Iterator

import anyio
import numpy as np

from service.repository import Model
from service.sampling import encoding, plans, steering
from service.sampling.batching import Overloaded
from service.sampling.samples import SamplingError, resolve_labels
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
            steer: Steering, offset: int = 0):
    """(index of the chunk's first sample within the response, Samples) for each chunk."""
    for start in range(0, n, CHUNK):
        size = min(CHUNK, n - start)
        part = None if labels is None else labels[start:start + size]
        yield start, plans.run(steering.plan(model, size, seed, mode, oversample, part, steer, offset + start,
                                             stream=True))


def check(model: Model, fmt: str, mode: str = "plain") -> None:
    """Refuse what cannot be streamed before the response starts."""
    if fmt in ("zip", "tar") and model.card.kind != "image":
        raise SamplingError(f"format: {fmt!r} holds images; model {model.name!r} makes {model.card.kind}: use 'npz'")
    if mode in ("nice", "rejection") and model.discriminator is None:
        raise SamplingError(f"mode: model {model.name!r} has no discriminator; use mode 'plain'")


ORDERS = ("grouped", "interleaved")


def labels_of(model: Model, labels, order: str | None, start: int, n: int) -> np.ndarray | None:
    """The labels of samples start..start+n-1 of a dataset, (n,) int64, or None for an unconditional model.

    Counts ({label: count}) come grouped (all of the first label, then the next) or interleaved: each
    label's samples spread evenly over the whole (its j-th at (j + ½) / count, ties in label order), so
    equal counts go round-robin and every window of 10·k samples holds 10 of each of k labels. Without
    labels a conditional model cycles through its labels (interleaved). A list is its own order.
    """
    if order is not None and order not in ORDERS:
        raise SamplingError(f"order: unknown order {order!r}; known: {', '.join(ORDERS)}")
    if labels is None:
        if model.labels is None:
            return None
        if order == "grouped":
            raise SamplingError("order: 'grouped' needs label counts ({label: count}); without labels a "
                                "conditional model cycles through its labels")
        return (np.arange(start, start + n, dtype=np.int64) % len(model.labels))
    if isinstance(labels, list) and order is not None:
        raise SamplingError("order: a list of labels is its own order; give {label: count} to group or interleave")
    full = resolve_labels(model, labels, None)
    if start + n > len(full):
        raise SamplingError(f"start: the labels hold {len(full)} samples; start + n = {start + n} is past the end")
    if order == "interleaved":
        full = np.sort(full, kind="stable")  # (total,) by label
        _, first, counts = np.unique(full, return_index=True, return_counts=True)
        rank = np.arange(len(full)) - np.repeat(first, counts)  # j: each sample's place within its label
        key = (rank + 0.5) / np.repeat(counts, counts)
        full = full[np.lexsort((full, key))]  # by key, ties by label
    return full[start:start + n]


def stream(model: Model, n: int, seed: int | None, mode: str, oversample: int, labels: np.ndarray | None,
           fmt: str, steer: Steering = Steering(), start: int = 0) -> Iterator[bytes]:
    """The archive's bytes, chunk by chunk: npz (x, y, label_names, scores), zip (class folders) or
    tar (WebDataset). `labels` are those of samples start..start+n-1."""
    pipe = _Pipe()
    chunks = _chunks(model, n, seed, mode, oversample, labels, steer, start)
    if fmt == "tar":
        yield from _tar(pipe, chunks, start)
        return
    with zipfile.ZipFile(pipe, "w", allowZip64=True) as archive:
        if fmt == "npz":
            yield from _npz(archive, pipe, model, n, labels, chunks)
        else:
            yield from _zip(archive, pipe, chunks, start)
    yield pipe.drain()


def _tar(pipe, chunks, offset: int) -> Iterator[bytes]:
    """WebDataset shards: per sample NNNNNN.png and, when labelled, NNNNNN.cls (the label index as text),
    named by the sample's index in the whole dataset; fixed metadata, so the same request gives the same
    bytes. Each chunk's samples are flushed whole as it is written."""
    with tarfile.open(fileobj=pipe, mode="w|", format=tarfile.USTAR_FORMAT) as archive:
        for start, part in chunks:
            pixels = encoding.to_uint8(part.values)
            for j, img in enumerate(pixels):
                key = f"{offset + start + j:06d}"
                _add(archive, f"{key}.png", encoding.png(img))
                if part.labels is not None:
                    _add(archive, f"{key}.cls", str(int(part.labels[j])).encode())
            yield pipe.drain()
    yield pipe.drain()


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    archive.addfile(info, io.BytesIO(data))


def _npz(archive, pipe, model, n, labels, chunks) -> Iterator[bytes]:
    image = model.card.kind == "image"
    sample_shape = tuple(model.card.sample_shape)
    if image:  # served as uint8 (n, h, w[, c]), as the samples endpoint's npy
        c, h, w = sample_shape
        shape, dtype = ((n, h, w) if c == 1 else (n, h, w, c)), np.uint8
    else:
        shape, dtype = (n, *sample_shape), np.float32
    scores, accepted, drawn = [], 0.0, 0
    with _entry(archive, "x.npy") as f:
        np.lib.format.write_array_header_2_0(f, {"descr": np.dtype(dtype).str, "fortran_order": False,
                                                 "shape": shape})
        for _, part in chunks:
            values = encoding.to_uint8(part.values) if image else part.values.astype(np.float32)
            f.write(np.ascontiguousarray(values).tobytes())
            if part.scores is not None:
                scores.append(part.scores)
            if part.acceptance is not None:
                accepted, drawn = accepted + part.acceptance * part.candidates, drawn + part.candidates
            yield pipe.drain()
    extra = {}
    if labels is not None:
        extra["y"] = labels.astype(np.int64)
        extra["label_names"] = np.asarray(model.labels)
    if scores:
        extra["scores"] = np.concatenate(scores).astype(np.float32)
    if drawn:  # rejection, filtered: the share of candidates accepted, over the whole dataset
        extra["acceptance_rate"] = np.float64(accepted / drawn)
    for name, array in extra.items():
        with _entry(archive, f"{name}.npy") as f:
            np.lib.format.write_array(f, array, allow_pickle=False)
    yield pipe.drain()


def _zip(archive, pipe, chunks, offset: int) -> Iterator[bytes]:
    """PNGs in one folder per label (the layout POST /v1/data accepts back) and an index.csv."""
    rows = [encoding.INDEX_HEADER]
    for start, part in chunks:
        folders = part.label_names_per_sample() or ["samples"] * len(part.values)
        rows += encoding.write_pngs(archive, part, [f"{folder}/{offset + start + j:07d}.png"
                                                    for j, folder in enumerate(folders)])
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
