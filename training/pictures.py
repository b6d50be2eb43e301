"""`ganserve pictures`: the README's pictures, rendered from the shipped models as the service serves them.

Image models: one PNG with the plain samples beside the nice ones (a conditional model gets one row
per label). Points and curves: the plain and nice plots side by side, the real curve or bounds in grey.
numpy, onnxruntime and pillow only.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from service import sampling
from service.formats.pictures import combine, pairs, plot, png, to_uint8
from service.sampling.modes import MODES
from service.repository import Repository

log = logging.getLogger(__name__)
SEED = 7
GAP = 12  # pixels between the plain and the nice panel
CAPTION = 18


def render(model, seed: int = SEED, scale: int = 2) -> np.ndarray:
    """One RGB picture of a model: plain on the left, nice on the right, captioned (a translation model: pairs)."""
    return RENDERERS[model.card.kind](model, seed, scale)


def render_images(model, seed: int = SEED, scale: int = 2) -> np.ndarray:
    """Plain and nice grids of 8×8 samples, or of one row per label."""
    if model.labels:
        per = len(model.labels)
        labels = np.repeat(np.arange(per, dtype=np.int64), per)  # row r: label r
        shape = (per, per)
    else:
        labels, shape = None, (8, 8)
    n = shape[0] * shape[1]
    panels = []
    for mode in ("plain", "nice"):
        s = sampling.sample(model, n, seed, mode=mode, labels=labels)
        if labels is not None:  # nice returns each slot's own label, best first; rows stay rows
            order = np.lexsort((np.arange(n), s.labels))
            s.values = s.values[order]
        grid = combine(to_uint8(s.values), shape)
        grid = np.kron(grid, np.ones((scale, scale) + (1,) * (grid.ndim - 2), np.uint8))
        panels.append(grid if grid.ndim == 3 else np.stack([grid] * 3, -1))  # (h, w, 3)
    return _plain_and_nice(model, panels)


def render_plots(model, seed: int = SEED, scale: int = 2) -> np.ndarray:
    """Plain and nice plots of 64 points or curves."""
    labels = sampling.resolve_labels(model, None, 64)
    picture = model.card.picture.model_dump() if model.card.picture else None
    panels = [plot(sampling.sample(model, 64, seed, mode=mode, labels=labels), picture=picture)
              for mode in ("plain", "nice")]
    return _plain_and_nice(model, panels)


def _plain_and_nice(model, panels) -> np.ndarray:
    k = MODES["nice"].oversample(model, None)[0]
    return _side_by_side(panels, ["plain", f"nice (best 1 of {k} by D)"], f"{model.name} v{model.version}")


def render_translation(model, seed: int = SEED, scale: int = 2, n: int = 20) -> np.ndarray:
    """Input | output pairs of held-out digits in each direction (A: MNIST's held-out, B: UCI's), side by side."""
    from service.sampling.translation import translate_now
    from training.data import mnist_split, uci_split

    rng = np.random.default_rng(seed)
    panels, captions = [], []
    for direction, held in (("a_to_b", mnist_split()), ("b_to_a", uci_split())):
        x = held["test_x"][rng.choice(len(held["test_x"]), n, replace=False)]
        result = translate_now(model, x, direction)
        grid = combine(pairs(to_uint8(result.inputs), to_uint8(result.values)),
                                (n // 4, 4))
        grid = np.kron(grid, np.ones((scale, scale), np.uint8))
        panels.append(np.stack([grid] * 3, -1))
        captions.append(f"{result.source} -> {result.target} (input | output)")
    return _side_by_side(panels, captions, f"{model.name} v{model.version}")


RENDERERS = {"image": render_images, "points": render_plots, "curves": render_plots,
             "translation": render_translation}  # by the card's kind


def _side_by_side(panels, captions, title) -> np.ndarray:
    h = max(p.shape[0] for p in panels)
    w = sum(p.shape[1] for p in panels) + GAP * (len(panels) - 1)
    canvas = Image.new("RGB", (w, h + CAPTION), "white")
    draw = ImageDraw.Draw(canvas)
    x = 0
    for panel, caption in zip(panels, captions):
        canvas.paste(Image.fromarray(panel), (x, CAPTION))
        draw.text((x + 4, 3), f"{title}: {caption}", fill=(0, 0, 0))
        x += panel.shape[1] + GAP
    return np.asarray(canvas)


def write_all(repositories: list[Path], out: Path, seed: int = SEED) -> list[Path]:
    """A PNG per served model into `out` (docs/images/<name>.png); returns the paths written."""
    repository = Repository(repositories)
    repository.refresh()
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in repository.names():
        model = repository.get(name)
        path = out / f"{name}.png"
        path.write_bytes(png(render(model, seed)))
        log.info("wrote %s", path)
        written.append(path)
    return written
