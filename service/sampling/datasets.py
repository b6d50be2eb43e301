"""Bulk labelled samples for augmentation pipelines, written as a stream in bounded chunks.

A dataset of n samples is sampled CHUNK at a time: sample i takes the latent (seed, i) as in
/samples (in `nice`, `filtered` and `rejection`, slot i's candidates are (seed, i·oversample …)),
and the archive is written as it goes, so memory stays flat however large n is. The same request
gives the same bytes. `start` offsets every index, so samples start..start+n-1 of a dataset are
exactly those of the whole: a download can resume, and workers can split a dataset by ranges.
Explicit latents and walks (steering.Steering) stream the same way: latent i is the request's row
or step i.

The archive is written by the format's encoder (service/formats/: npz, zip, tar), chunk by chunk.
"""
from __future__ import annotations

from typing import AsyncIterator, Iterator

import anyio
import numpy as np

from service import formats
from service.repository import Model
from service.sampling import modes, plans, steering
from service.sampling.batching import Overloaded
from service.sampling.samples import SamplingError, resolve_labels
from service.sampling.steering import Steering

CHUNK = 256  # samples per step: each step is one bounded generator (and discriminator) pass
CHUNK_CANDIDATES = 2048  # a ranked mode's step draws at most about this many: streams take turns quickly


def chunks(model: Model, n: int, seed: int | None, mode: str, oversample: int, labels: np.ndarray | None,
           steer: Steering, offset: int = 0, aid=None) -> formats.Chunks:
    """(index of the chunk's first sample within the response, Samples) for each chunk. A chunk of a mode that
    draws candidates holds fewer samples (the bytes do not depend on the chunking: sample i is (seed, i)'s)."""
    step = CHUNK if oversample <= 1 or not modes.get(mode).draws_candidates else max(8, CHUNK_CANDIDATES // oversample)
    for start in range(0, n, step):
        size = min(step, n - start)
        part = None if labels is None else labels[start:start + size]
        yield start, plans.run(steering.plan(model, size, seed, mode, oversample, part, steer, offset + start,
                                             stream=True, aid=aid))


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
           fmt: str, steer: Steering = Steering(), start: int = 0, aid=None) -> Iterator[bytes]:
    """The archive's bytes, chunk by chunk, in a dataset format (npz, zip, tar, ...). `labels` are those of
    samples start..start+n-1."""
    encoder = formats.get(fmt, "datasets")
    info = formats.Stream(n=n, sample_shape=list(model.card.sample_shape), images=model.card.images, labels=labels,
                          label_names=model.labels, offset=start)
    return encoder.stream(chunks(model, n, seed, mode, oversample, labels, steer, start, aid), info)


class Streams:
    """The dataset streams of one API process: at most `streams` at once (503 beyond), their chunks computed
    `workers` at a time on threads of their own, apart from the pool that health, models and jobs routes use.
    The limiter serves waiting streams in turn, so with more streams than threads each still moves."""

    def __init__(self, streams: int, workers: int):
        self.streams, self.active = streams, 0
        self.limiter = anyio.CapacityLimiter(workers)

    def admit(self) -> None:
        """Count a stream in now, or Overloaded when the limit is reached; release() counts it out."""
        if self.active >= self.streams:
            raise Overloaded(f"{self.active} datasets are streaming, the limit (max_dataset_streams); retry shortly",
                             retry_after=5)
        self.active += 1

    def release(self) -> None:
        self.active -= 1

    async def chunks(self, chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
        """The archive's chunks, each computed on a dataset thread."""
        while (chunk := await anyio.to_thread.run_sync(next, chunks, None, limiter=self.limiter)) is not None:
            yield chunk
