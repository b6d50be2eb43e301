"""npz: x (uint8 images or float32 numbers), y (label indices), label_names, scores: the keys of /samples,
/datasets and uploads alike; a dataset's npz is written as it streams, so memory stays flat."""
from __future__ import annotations

import zipfile

import numpy as np

from service.formats import Chunks, Encoder, Stream
from service.formats.archives import Pipe, entry, npz_bytes
from service.formats.npy import array
from service.formats.pictures import pixels, to_uint8
from service.sampling.samples import Samples

KEYS = ("x", "y", "label_names", "scores")  # the same on /samples, /datasets and uploads (POST /v1/data)


class Npz(Encoder):
    name = "npz"
    media_type = "application/octet-stream"
    help = ("x, y (label indices), label_names, scores (ranked modes), acceptance_rate (rejection, filtered); "
            "translate: images, inputs, scores, direction")

    def samples(self, samples: Samples, grid=None, picture=None) -> bytes:
        return npz_bytes(arrays(samples))

    def translation(self, result) -> bytes:
        return npz_bytes({"images": pixels(result), "inputs": to_uint8(result.inputs, result.value_range),
                          "scores": result.scores.astype(np.float32), "direction": np.asarray(result.direction)})

    def stream(self, chunks: Chunks, stream: Stream):
        pipe = Pipe()
        with zipfile.ZipFile(pipe, "w", allowZip64=True) as archive:
            yield from _x_then_the_rest(archive, pipe, chunks, stream)
        yield pipe.drain()

    def cheap(self, samples: Samples) -> bool:
        return samples.values.nbytes <= 2**20


def arrays(samples: Samples) -> dict[str, np.ndarray]:
    """The npz keys of samples: x, y, label_names, scores, acceptance_rate (each where it applies)."""
    out = {"x": array(samples)}
    if samples.labels is not None:
        out["y"] = samples.labels.astype(np.int64)
        out["label_names"] = np.asarray(samples.label_names, dtype=str)
    if samples.scores is not None:
        out["scores"] = samples.scores.astype(np.float32)
    if samples.acceptance is not None:
        out["acceptance_rate"] = np.float64(samples.acceptance)
    return out


def _x_then_the_rest(archive, pipe: Pipe, chunks: Chunks, stream: Stream):
    """x.npy written chunk by chunk under a header that knows the whole shape, then y, names, scores."""
    if stream.images:  # served as uint8 (n, h, w[, c]), as /samples' npy
        c, h, w = stream.sample_shape
        shape, dtype = ((stream.n, h, w) if c == 1 else (stream.n, h, w, c)), np.uint8
    else:
        shape, dtype = (stream.n, *stream.sample_shape), np.float32
    scores, accepted, drawn = [], 0.0, 0
    with entry(archive, "x.npy") as f:
        np.lib.format.write_array_header_2_0(f, {"descr": np.dtype(dtype).str, "fortran_order": False,
                                                 "shape": shape})
        for _, part in chunks:
            f.write(np.ascontiguousarray(array(part)).tobytes())
            if part.scores is not None:
                scores.append(part.scores)
            if part.acceptance is not None:
                accepted, drawn = accepted + part.acceptance * part.candidates, drawn + part.candidates
            yield pipe.drain()
    extra = {}
    if stream.labels is not None:
        extra["y"] = stream.labels.astype(np.int64)
        extra["label_names"] = np.asarray(stream.label_names)
    if scores:
        extra["scores"] = np.concatenate(scores).astype(np.float32)
    if drawn:  # rejection, filtered: the share of candidates accepted, over the whole dataset
        extra["acceptance_rate"] = np.float64(accepted / drawn)
    for name, values in extra.items():
        with entry(archive, f"{name}.npy") as f:
            np.lib.format.write_array(f, values, allow_pickle=False)
    yield pipe.drain()
