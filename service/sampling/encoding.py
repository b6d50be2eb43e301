"""Samples -> JSON / PNG / grid / npy / npz / zip bytes."""
from __future__ import annotations

import base64
import io
import json
import math
import zipfile

import numpy as np
from PIL import Image, ImageDraw

from service.sampling.samples import Samples

FORMATS = ("json", "png", "gif", "webp", "npy", "npz", "zip")
ANIMATIONS = ("gif", "webp")  # one frame per sample, in order: a walk, or a flip-book of samples
FRAME_MS = 120
MEDIA_TYPES = {"json": "application/json", "png": "image/png", "gif": "image/gif", "webp": "image/webp",
               "npy": "application/octet-stream", "npz": "application/octet-stream", "zip": "application/zip"}


class EncodingError(ValueError):
    """A format the samples cannot be written in; the message names the field."""


def to_uint8(values: np.ndarray) -> np.ndarray:
    """Generator images (n, c, h, w) in [-1, 1] -> uint8 (n, h, w) or (n, h, w, c)."""
    pixels = np.clip(np.rint((values + 1.0) * 127.5), 0, 255).astype(np.uint8)
    pixels = pixels.transpose(0, 2, 3, 1)  # (n, h, w, c)
    return pixels[..., 0] if pixels.shape[-1] == 1 else pixels


def grid_shape(n: int) -> tuple[int, int]:
    """(rows, cols) as the classic combine_images lays them out: cols ⌊√n⌋, rows ⌈n / cols⌉."""
    cols = max(1, int(math.sqrt(n)))
    return math.ceil(n / cols), cols


def combine(images: np.ndarray, shape: tuple[int, int] | None = None) -> np.ndarray:
    """uint8 images (n, h, w[, c]) tiled into one (rows·h, cols·w[, c]) image, row by row."""
    n, h, w = images.shape[:3]
    rows, cols = shape or grid_shape(n)
    if rows * cols < n:
        raise EncodingError(f"grid: {rows}×{cols} holds {rows * cols} images, fewer than n={n}")
    out = np.zeros((rows * h, cols * w, *images.shape[3:]), dtype=np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        out[r * h:(r + 1) * h, c * w:(c + 1) * w] = img
    return out


def check(kind: str, fmt: str) -> None:
    """Refuse a format the model's kind cannot be written in, before any sampling."""
    if fmt in ANIMATIONS and kind != "image":
        raise EncodingError(f"format: {fmt!r} animates images; this model makes {kind} (use png or json)")


def animation(images: np.ndarray, fmt: str) -> bytes:
    """uint8 images (n, h, w[, c]) as an animated GIF or lossless WebP that loops, FRAME_MS a frame."""
    frames = [Image.fromarray(img) for img in images]
    buffer = io.BytesIO()
    options = {"lossless": True, "method": 4} if fmt == "webp" else {"optimize": False}
    frames[0].save(buffer, format=fmt.upper(), save_all=True, append_images=frames[1:], duration=FRAME_MS,
                   loop=0, **options)
    return buffer.getvalue()


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


PALETTE = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14)]


def plot(samples: Samples, size: int = 480, title: str | None = None) -> np.ndarray:
    """Points or curves drawn as an RGB picture with the real curve (or bounds) in grey."""
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    if samples.kind == "points":
        xs, ys = samples.values[:, 0], samples.values[:, 1]
        truth_x = np.linspace(-0.5, 0.5, 101)
        truth = [(truth_x, truth_x**2)]
        x_lim, y_lim = (-0.6, 0.6), (-0.05, 0.3)
    else:  # curves: a·x² + (a−1) for a in [1, 2] bounds the real ones
        grid_x = np.linspace(-1, 1, samples.values.shape[1])
        truth = [(grid_x, a * grid_x**2 + (a - 1)) for a in (1.0, 2.0)]
        x_lim, y_lim = (-1.1, 1.1), (-0.2, 3.2)

    def to_px(x, y):
        px = (np.asarray(x) - x_lim[0]) / (x_lim[1] - x_lim[0]) * (size - 1)
        py = (1 - (np.asarray(y) - y_lim[0]) / (y_lim[1] - y_lim[0])) * (size - 1)
        return list(zip(px.tolist(), py.tolist()))

    for tx, ty in truth:
        draw.line(to_px(tx, ty), fill=(160, 160, 160), width=3)
    if samples.kind == "curves" and samples.labels is not None:  # conditional: the a = 1.5 boundary
        draw.line(to_px(grid_x, 1.5 * grid_x**2 + 0.5), fill=(200, 200, 200), width=1)
    if samples.kind == "points":
        for x, y in to_px(xs, ys):
            draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=(31, 119, 180))
    else:
        grid_x = np.linspace(-1, 1, samples.values.shape[1])
        labels = samples.labels if samples.labels is not None else np.zeros(len(samples.values), np.int64)
        for curve, label in zip(samples.values[:64], labels[:64]):
            draw.line(to_px(grid_x, curve), fill=PALETTE[int(label) % len(PALETTE)], width=1)
    if title:
        draw.text((8, 6), title, fill=(0, 0, 0))
    if samples.labels is not None and samples.label_names:  # a legend: label name in its colour
        for i, name in enumerate(samples.label_names[:len(PALETTE)]):
            draw.text((8, 22 + 14 * i), name, fill=PALETTE[i])
    return np.asarray(image)


def is_cheap(samples: Samples, fmt: str) -> bool:
    """Whether encoding is a copy of at most a megabyte (no PNG, no zip): cheaper than a thread hop."""
    return samples.values.nbytes <= 2**20 and (fmt in ("npy", "npz") or (fmt == "json" and samples.kind != "image"))


def encode(samples: Samples, fmt: str, grid: tuple[int, int] | None = None) -> bytes:
    """The bytes of one response body in the requested format."""
    if fmt == "json":
        return json.dumps(_json(samples), separators=(",", ":")).encode()
    if fmt == "npy":
        buffer = io.BytesIO()
        np.save(buffer, _array(samples))
        return buffer.getvalue()
    if fmt == "npz":
        return npz_bytes(npz_arrays(samples))
    if fmt == "png":
        if samples.kind == "image":
            return png(combine(to_uint8(samples.values), grid))
        return png(plot(samples))
    if fmt in ANIMATIONS:
        check(samples.kind, fmt)
        return animation(to_uint8(samples.values), fmt)
    if fmt == "zip":
        return _zip(samples)
    raise EncodingError(f"format: unknown format {fmt!r}; known: {', '.join(FORMATS)}")


NPZ_KEYS = ("x", "y", "label_names", "scores")  # the same on /samples, /datasets and uploads (POST /v1/data)


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz written entry by entry with fixed times (np.savez stamps the clock): the same request gives the
    same bytes a second later too."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for key, array in arrays.items():
            entry = io.BytesIO()
            np.save(entry, array, allow_pickle=False)
            archive.writestr(zip_info(f"{key}.npy"), entry.getvalue())
    return buffer.getvalue()


def npz_arrays(samples: Samples) -> dict[str, np.ndarray]:
    """The npz keys of samples: x (uint8 images or float32 numbers), y (label indices), label_names, scores."""
    arrays = {"x": _array(samples)}
    if samples.labels is not None:
        arrays["y"] = samples.labels.astype(np.int64)
        arrays["label_names"] = np.asarray(samples.label_names, dtype=str)
    if samples.scores is not None:
        arrays["scores"] = samples.scores.astype(np.float32)
    if samples.acceptance is not None:
        arrays["acceptance_rate"] = np.float64(samples.acceptance)
    return arrays


def _array(samples: Samples) -> np.ndarray:
    return to_uint8(samples.values) if samples.kind == "image" else samples.values.astype(np.float32)


def _json(samples: Samples) -> dict:
    if samples.kind == "image":
        body = [base64.b64encode(png(img)).decode() for img in to_uint8(samples.values)]
    else:
        body = np.round(samples.values.astype(np.float64), 6).tolist()
    out = {"model": samples.model, "version": samples.version, "seed": samples.seed, "mode": samples.mode,
           "samples": body}
    if samples.labels is not None:
        out["labels"] = samples.label_names_per_sample()
    if samples.scores is not None:
        out["scores"] = np.round(samples.scores.astype(np.float64), 6).tolist()
    if samples.mode != "plain":
        out["candidates"] = samples.candidates
    if samples.acceptance is not None:
        out["acceptance_rate"] = round(samples.acceptance, 6)
    if samples.truncation != 1:
        out["truncation"] = samples.truncation
    return out


ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed entry timestamps: the same request gives the same bytes


def zip_info(name: str, compress: bool = False) -> zipfile.ZipInfo:
    """A zip entry stamped ZIP_TIME (the current time would make every response differ)."""
    info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    return info


INDEX_HEADER = "file,label,score"


def index_rows(files: list[str], samples: Samples) -> list[str]:
    """index.csv rows beside a zip's samples: file (or row), label name, discriminator score."""
    names = samples.label_names_per_sample()
    return [f"{file},{names[i] if names else ''},{'' if samples.scores is None else f'{samples.scores[i]:.6f}'}"
            for i, file in enumerate(files)]


def write_pngs(archive: zipfile.ZipFile, samples: Samples, files: list[str]) -> list[str]:
    """One PNG entry per image sample, named by files; returns their index.csv rows."""
    for file, img in zip(files, to_uint8(samples.values)):
        with archive.open(zip_info(file), "w") as entry:
            entry.write(png(img))
    return index_rows(files, samples)


def _zip(samples: Samples) -> bytes:
    """One PNG per sample (images) or one CSV (numbers), plus index.csv with labels and scores."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        if samples.kind == "image":
            rows = write_pngs(archive, samples, [f"{i:06d}.png" for i in range(len(samples.values))])
        else:
            lines = [",".join(f"{v:.6f}" for v in row) for row in samples.values.reshape(len(samples.values), -1)]
            archive.writestr(zip_info("samples.csv"), "\n".join(lines) + "\n")
            rows = index_rows([str(i) for i in range(len(samples.values))], samples)
        archive.writestr(zip_info("index.csv"), "\n".join([INDEX_HEADER, *rows]) + "\n")
    return buffer.getvalue()


GAP = 4  # pixels between the input|output pairs of a translation's png grid
GAP_GREY = 96


def pairs(inputs: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """uint8 images (n, h, w) twice -> (n, h, 2w + GAP): each input beside its output, a grey gap after the pair."""
    n, h, w = inputs.shape
    out = np.full((n, h, 2 * w + GAP), GAP_GREY, np.uint8)
    out[:, :, :w], out[:, :, w:2 * w] = inputs, outputs
    return out


def encode_translation(result, fmt: str) -> bytes:
    """The bytes of a translation (service.sampling.translation.Translation) in the requested format."""
    outputs = to_uint8(result.values)
    if fmt == "json":
        body = {"model": result.model, "version": result.version, "direction": result.direction,
                "from": result.source, "to": result.target, "images": [base64.b64encode(png(img)).decode()
                                                                       for img in outputs],
                "scores": np.round(result.scores.astype(np.float64), 6).tolist()}
        return json.dumps(body, separators=(",", ":")).encode()
    if fmt == "png":
        return png(combine(pairs(to_uint8(result.inputs), outputs)))
    if fmt in ANIMATIONS:
        return animation(outputs, fmt)
    buffer = io.BytesIO()
    if fmt == "npy":
        np.save(buffer, outputs)
    elif fmt == "npz":
        buffer.write(npz_bytes({"images": outputs, "inputs": to_uint8(result.inputs),
                                "scores": result.scores.astype(np.float32), "direction": np.asarray(result.direction)}))
    elif fmt == "zip":
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            files = [f"{i:06d}.png" for i in range(len(outputs))]
            for file, img in zip(files, outputs):
                archive.writestr(zip_info(file), png(img))
            rows = [f"{file},{score:.6f}" for file, score in zip(files, result.scores)]
            archive.writestr(zip_info("index.csv"), "\n".join(["file,score", *rows]) + "\n")
    else:
        raise EncodingError(f"format: unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    return buffer.getvalue()
