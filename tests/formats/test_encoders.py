"""Encoders (one per format): grids laid out like combine_images, uint8 arrays, npz extras, zip contents, plots."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from service import formats
from service.formats import pictures
from service.formats.npz import KEYS as NPZ_KEYS
from service.formats.pictures import EncodingError
from service.sampling import Samples


def encode(samples: Samples, fmt: str, grid=None) -> bytes:
    return formats.get(fmt, "samples").samples(samples, grid)


def samples(kind="image", n=5, channels=1, labels=True, scores=True) -> Samples:
    rng = np.random.default_rng(0)
    shape = {"image": (channels, 4, 3), "points": (2,), "curves": (15,)}[kind]
    return Samples(model="m", version=2, seed=9, mode="nice" if scores else "plain", kind=kind,
                   values=rng.uniform(-1, 1, (n, *shape)).astype(np.float32),
                   labels=np.arange(n, dtype=np.int64) % 2 if labels else None,
                   label_names=["lower", "upper"] if labels else None,
                   scores=np.linspace(1, 0, n).astype(np.float32) if scores else None,
                   value_range=(-1.0, 1.0), candidates=n * 3)


@pytest.mark.parametrize("n, shape", [(1, (1, 1)), (5, (3, 2)), (16, (4, 4)), (17, (5, 4)), (64, (8, 8))])
def test_grid_is_laid_out_like_combine_images(n, shape):
    assert pictures.grid_shape(n) == shape


def test_grid_places_images_row_by_row():
    images = np.arange(5, dtype=np.uint8)[:, None, None] * np.ones((5, 2, 3), np.uint8)  # (5, 2, 3)
    grid = pictures.combine(images, (2, 3))
    assert grid.shape == (4, 9)
    assert grid[0, 0] == 0 and grid[0, 3] == 1 and grid[0, 6] == 2 and grid[2, 0] == 3 and grid[2, 3] == 4
    assert grid[2, 6] == 0  # the empty cell
    with pytest.raises(EncodingError, match="grid"):
        pictures.combine(images, (2, 2))


def test_png_grid_has_the_requested_shape():
    png = encode(samples(n=6), "png", grid=(2, 3))
    assert Image.open(io.BytesIO(png)).size == (3 * 3, 2 * 4)


@pytest.mark.parametrize("channels, shape", [(1, (5, 4, 3)), (3, (5, 4, 3, 3))])
def test_npy_images_are_uint8_n_h_w_c(channels, shape):
    array = np.load(io.BytesIO(encode(samples(channels=channels), "npy")))
    assert array.dtype == np.uint8 and array.shape == shape


def test_npy_numbers_are_float32():
    array = np.load(io.BytesIO(encode(samples("curves"), "npy")))
    assert array.dtype == np.float32 and array.shape == (5, 15)


def test_npz_has_the_dataset_keys_x_y_label_names_scores():
    archive = np.load(io.BytesIO(encode(samples(), "npz")))
    assert sorted(archive.files) == sorted(NPZ_KEYS)
    assert archive["x"].shape == (5, 4, 3) and archive["x"].dtype == np.uint8
    assert archive["y"].tolist() == [0, 1, 0, 1, 0]
    assert list(archive["label_names"]) == ["lower", "upper"]
    np.testing.assert_allclose(archive["scores"], np.linspace(1, 0, 5))


def test_zip_has_a_png_per_sample_and_a_labels_scores_csv():
    archive = zipfile.ZipFile(io.BytesIO(encode(samples(), "zip")))
    names = archive.namelist()
    assert [n for n in names if n.endswith(".png")] == [f"{i:06d}.png" for i in range(5)]
    assert Image.open(archive.open("000003.png")).size == (3, 4)
    rows = archive.read("index.csv").decode().splitlines()
    assert rows[0] == "file,label,score" and rows[2].startswith("000001.png,upper,0.75")


def test_zip_of_numbers_has_a_csv():
    archive = zipfile.ZipFile(io.BytesIO(encode(samples("points", labels=False), "zip")))
    assert len(archive.read("samples.csv").decode().splitlines()) == 5


def test_json_images_are_base64_pngs_and_numbers_are_lists():
    body = json.loads(encode(samples(), "json"))
    assert body["labels"] == ["lower", "upper", "lower", "upper", "lower"] and body["candidates"] == 15
    assert len(body["samples"]) == 5 and body["samples"][0].startswith("iVBORw0KGgo")  # PNG magic
    numbers = json.loads(encode(samples("points", scores=False, labels=False), "json"))
    assert np.asarray(numbers["samples"]).shape == (5, 2) and "scores" not in numbers


@pytest.mark.parametrize("kind", ["points", "curves"])
def test_points_and_curves_are_plotted_as_png(kind):
    image = Image.open(io.BytesIO(encode(samples(kind), "png")))
    assert image.size == (480, 480) and image.mode == "RGB"


def test_to_uint8_maps_the_value_range():
    values = np.array([-1.0, 0.0, 1.0, 2.0], np.float32).reshape(1, 1, 1, 4)
    assert pictures.to_uint8(values).tolist() == [[[0, 128, 255, 255]]]
